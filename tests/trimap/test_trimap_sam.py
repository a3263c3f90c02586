"""Tests for trimap.SamPrompter.

SAM is built with random weights through ``sam_model_registry`` so the real
predictor code path runs; its image encoder is slow on CPU, so the whole module
shares one prompter and one image (one encoder call per session). A real
checkpoint is used when one is configured (REFINE_MATTE_SAM_CHECKPOINT or the
config directory).
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")

import trimap  # noqa: E402
from trimap import sam as sam_mod  # noqa: E402

H, W = 48, 64


def make_image():
    y, x = np.mgrid[0:H, 0:W]
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 2] = 200
    disk = (y - 24) ** 2 + (x - 30) ** 2 <= 14**2
    img[disk] = (230, 60, 40)
    return img


#: the tests that use the prompter: building SAM vit_b with random weights and encoding the
#: image takes ~50 s on 2 cores, so they run with --slow (CI), not in a plain run
needs_prompter = pytest.mark.slow


@pytest.fixture(scope="module")
def prompter():
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, threads))
    model = sam_model_registry["vit_b"](checkpoint=None)
    p = trimap.SamPrompter(model)
    p.set_image(make_image())  # the session's single encoder run
    yield p
    torch.set_num_threads(threads)


@needs_prompter
def test_prompts_give_trimaps_and_reuse_the_cached_embedding(prompter):
    img = make_image()
    calls = prompter.encoder_calls
    outs = [
        prompter.trimap(img, points=[(30, 24)], labels=[1]),
        prompter.trimap(img.copy(), points=[(30, 24), (5, 5)], labels=[1, 0]),  # same content, new array
        prompter.trimap(img, box=(10, 8, 50, 40)),
        prompter.trimap(img, points=[(30, 24)], box=[(10, 8, 50, 40), (0, 0, 20, 20)]),
    ]
    for tri in outs:
        assert tri.shape == (H, W) and tri.dtype == np.uint8
        assert set(np.unique(tri)) <= {0, 128, 255}
    assert prompter.encoder_calls == calls  # every click only ran the decoder


@needs_prompter
def test_best_of_multimask_is_chosen_by_score(prompter):
    img = make_image()
    pts, lbs = np.array([[30, 24]], np.float32), np.array([1])
    masks, scores, _ = prompter.predictor.predict(point_coords=pts, point_labels=lbs, multimask_output=True, return_logits=True)
    assert masks.shape[0] == 3
    logits, score = prompter.predict_logits(img, points=[(30, 24)], labels=[1])
    best = int(np.argmax(scores))
    assert score == pytest.approx(float(scores[best]))
    assert np.allclose(logits, masks[best])


@needs_prompter
def test_logits_between_thresholds_become_unknown(prompter):
    img = make_image()
    logits, _ = prompter.predict_logits(img, points=[(30, 24)], labels=[1])
    q = float(np.quantile(np.abs(logits), 0.5))
    tri = prompter.trimap(img, points=[(30, 24)], labels=[1], band=0, logit_range=(-q, q))
    soft = np.abs(logits) < q * 0.999
    assert soft.any()
    assert np.all(tri[soft] == 128)
    sure_fg = logits > q * 1.001
    sure_bg = logits < -q * 1.001
    assert np.all(tri[sure_fg] == 255) and np.all(tri[sure_bg] == 0)
    # With no uncertainty range and no band, the trimap is SAM's hard mask.
    hard = prompter.trimap(img, points=[(30, 24)], labels=[1], band=0, logit_range=(0, 0))
    assert np.array_equal(hard == 255, logits > 0)


def test_cache_key_is_content_based():
    img = make_image()
    k = sam_mod.image_key(img)
    assert k == sam_mod.image_key(img.copy())
    other = img.copy()
    other[0, 0, 0] ^= 1
    assert k != sam_mod.image_key(other)
    assert k != sam_mod.image_key(img[:, :, ::-1])


@needs_prompter
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "at least one prompt"),
        ({"points": [(100, 5)]}, "outside"),
        ({"points": [(5, 5)], "labels": [1, 0]}, "2 labels"),
        ({"points": [(5, 5)], "labels": [3]}, "labels must be"),
        ({"points": [(1, 2, 3)]}, "points"),
        ({"box": (200, 200, 300, 300)}, "outside"),
        ({"box": (1, 2, 3)}, "box"),
        ({"labels": [1]}, "labels given without points"),
        ({"points": [(5, 5)], "logit_range": (1, 2)}, "logit_range"),
    ],
)
def test_bad_prompts_raise_clear_value_error(prompter, kwargs, message):
    calls = prompter.encoder_calls
    with pytest.raises(ValueError, match=message):
        prompter.trimap(make_image(), **kwargs)
    assert prompter.encoder_calls == calls


@needs_prompter
@pytest.mark.parametrize("box, clipped", [((-20, -20, 40, 30), (0, 0, 40, 30)),
                                         ((30, 20, 100, 90), (30, 20, W - 1, H - 1))])
def test_box_running_off_the_image_is_clipped(prompter, box, clipped):
    img = make_image()
    off, _ = prompter.predict_logits(img, box=box)
    inside, _ = prompter.predict_logits(img, box=clipped)
    assert off.shape == (H, W) and np.array_equal(off, inside)
    assert np.array_equal(prompter.trimap(img, box=box), prompter.trimap(img, box=clipped))
    # Clipping is what makes them equal: SAM itself answers the raw box differently.
    raw, _, _ = prompter.predictor.predict(box=np.asarray(box, np.float32), multimask_output=False,
                                           return_logits=True)
    same, _, _ = prompter.predictor.predict(box=np.asarray(clipped, np.float32), multimask_output=False,
                                            return_logits=True)
    assert not np.allclose(raw, same)


def test_missing_and_corrupt_checkpoints_raise(tmp_path, monkeypatch):
    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv("REFINE_MATTE_SAM_CHECKPOINT", raising=False)
    with pytest.raises(sam_mod.SamCheckpointError, match="not found"):
        trimap.SamPrompter(tmp_path / "nope.pth")
    with pytest.raises(sam_mod.SamCheckpointError, match="no SAM vit_b checkpoint"):
        trimap.find_checkpoint("vit_b")
    bad = tmp_path / "sam_vit_b_bad.pth"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(sam_mod.SamCheckpointError, match="cannot load"):
        trimap.SamPrompter(bad)
    with pytest.raises(ValueError, match="model_type"):
        trimap.find_checkpoint("vit_x")


def test_find_checkpoint_search_order(tmp_path, monkeypatch):
    cfg = tmp_path / "cfg"
    (cfg / "sam").mkdir(parents=True)
    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(cfg))
    monkeypatch.delenv("REFINE_MATTE_SAM_CHECKPOINT", raising=False)
    official = cfg / "sam" / "sam_vit_l_0b3195.pth"
    official.write_bytes(b"x")
    assert trimap.find_checkpoint("vit_l") == official
    other = cfg / "sam" / "sam_vit_h_custom.pth"
    other.write_bytes(b"x")
    assert trimap.find_checkpoint("vit_h") == other
    env = tmp_path / "mine.pth"
    env.write_bytes(b"x")
    monkeypatch.setenv("REFINE_MATTE_SAM_CHECKPOINT", str(env))
    assert trimap.find_checkpoint("vit_l") == env
    assert sam_mod.model_type_from_path("/x/sam_vit_h_4b8939.pth") == "vit_h"


def _configured_checkpoint():
    for mt in sam_mod.MODEL_TYPES:
        try:
            return sam_mod.find_checkpoint(mt), mt
        except (sam_mod.SamCheckpointError, OSError):
            continue
    return None, None


@pytest.mark.skipif(_configured_checkpoint()[0] is None, reason="no real SAM checkpoint configured")
def test_real_checkpoint_segments_a_disk():
    path, mt = _configured_checkpoint()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    p = trimap.SamPrompter(path, model_type=mt if mt in path.name else None)
    img = make_image()
    tri = p.trimap(img, points=[(30, 24)], labels=[1], band=1)
    y, x = np.mgrid[0:H, 0:W]
    inner = (y - 24) ** 2 + (x - 30) ** 2 <= 10**2
    outer = (y - 24) ** 2 + (x - 30) ** 2 >= 18**2
    assert (tri[inner] == 255).mean() > 0.9
    assert (tri[outer] == 0).mean() > 0.9


@needs_prompter
def test_embedding_cache_is_lru_and_bounded(prompter, monkeypatch):
    # A second prompter on the same model, with the encoder replaced by a cheap
    # fake, to exercise the cache bookkeeping without more encoder runs.
    p = trimap.SamPrompter(prompter.model, cache_size=2)

    def fake_set_image(image, image_format="RGB"):
        p.predictor.features = torch.full((1, 256, 64, 64), float(image.mean()))
        p.predictor.original_size = image.shape[:2]
        p.predictor.input_size = (1024, 1024)
        p.predictor.is_image_set = True

    monkeypatch.setattr(p.predictor, "set_image", fake_set_image)
    imgs = [np.full((8, 8, 3), v, np.uint8) for v in (10, 20, 30)]
    for img in imgs:
        p.set_image(img)
    assert p.encoder_calls == 3 and len(p._cache) == 2
    p.set_image(imgs[2])  # current: no work
    p.set_image(imgs[1])  # cached: restored, no encoder run
    assert p.encoder_calls == 3
    assert float(p.predictor.features.mean()) == pytest.approx(20.0)
    p.set_image(imgs[0])  # evicted earlier: encoder runs again
    assert p.encoder_calls == 4
    p.clear_cache()
    assert len(p._cache) == 0 and not p.predictor.is_image_set


def test_without_path_or_type_any_installed_checkpoint_is_found(tmp_path, monkeypatch):
    cfg = tmp_path / "cfg"
    (cfg / "sam").mkdir(parents=True)
    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(cfg))
    monkeypatch.delenv("REFINE_MATTE_SAM_CHECKPOINT", raising=False)
    with pytest.raises(sam_mod.SamCheckpointError, match="no SAM vit_b checkpoint"):
        sam_mod.locate_checkpoint(None, None)
    only = cfg / "sam" / "sam_vit_h_4b8939.pth"
    only.write_bytes(b"x")
    assert sam_mod.locate_checkpoint(None, None) == only
    with pytest.raises(sam_mod.SamCheckpointError):
        sam_mod.locate_checkpoint(None, "vit_l")
