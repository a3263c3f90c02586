"""The public engine API: input conversions, validation, determinism, progress, cancel."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import diffmatte


def _inputs(h=40, w=56, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:10] = 0
    trimap[-10:] = 255
    return image, trimap


def test_refine_shape_range_and_known_regions(tiny_engine):
    image, trimap = _inputs()
    alpha = tiny_engine.refine(image, trimap, steps=3, seed=1)
    assert alpha.shape == trimap.shape and alpha.dtype == np.float32
    assert alpha.min() >= 0 and alpha.max() <= 1
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 1).all()
    raw = tiny_engine.refine(image, trimap, steps=3, seed=1, force_fg=False)
    assert not (raw[trimap == 255] == 1).all()  # official behaviour leaves fg unforced
    assert np.array_equal(raw[trimap == 128], alpha[trimap == 128])


def test_seed_and_noise_determinism(tiny_engine):
    image, trimap = _inputs()
    a = tiny_engine.refine(image, trimap, steps=2, seed=7)
    b = tiny_engine.refine(image, trimap, steps=2, seed=7)
    c = tiny_engine.refine(image, trimap, steps=2, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    noise = np.random.default_rng(3).standard_normal(trimap.shape).astype(np.float32)
    assert np.array_equal(tiny_engine.refine(image, trimap, steps=2, noise=noise),
                          tiny_engine.refine(image, trimap, steps=2, noise=noise))


def test_samples_average_independent_draws(tiny_engine):
    image, trimap = _inputs()
    one = tiny_engine.refine(image, trimap, steps=2, seed=7)
    assert np.array_equal(tiny_engine.refine(image, trimap, steps=2, seed=7, samples=1), one)
    other = tiny_engine.refine(image, trimap, steps=2, seed=8)
    both = tiny_engine.refine(image, trimap, steps=2, seed=7, samples=2)
    np.testing.assert_allclose(both, (one + other) / 2, atol=1e-6)
    assert (both[trimap == 0] == 0).all() and (both[trimap == 255] == 1).all()
    seen = []
    tiny_engine.refine(image, trimap, steps=2, seed=7, samples=3, callback=lambda s: seen.append((s.index, s.total)))
    assert seen == [(i, 6) for i in range(1, 7)]
    with pytest.raises(ValueError, match="samples"):
        tiny_engine.refine(image, trimap, steps=2, samples=0)
    noise = np.zeros(trimap.shape, np.float32)
    with pytest.raises(ValueError, match="noise"):
        tiny_engine.refine(image, trimap, steps=2, noise=noise, samples=2)


def test_input_conversions_agree(tiny_engine):
    image, trimap = _inputs()
    ref = tiny_engine.refine(image, trimap, steps=1, seed=0)
    rgba = np.dstack([image, np.full(trimap.shape, 7, np.uint8)])
    assert np.allclose(tiny_engine.refine(rgba, trimap, steps=1, seed=0), ref)
    assert np.allclose(tiny_engine.refine(image.astype(np.float32) / 255, trimap, steps=1, seed=0), ref, atol=1e-5)
    img16 = image.astype(np.uint16) * 257
    assert np.allclose(tiny_engine.refine(img16, trimap, steps=1, seed=0), ref, atol=1e-5)
    assert np.allclose(tiny_engine.refine(image, trimap.astype(np.float32) / 255, steps=1, seed=0), ref)
    grey = tiny_engine.refine(image[:, :, 0], trimap, steps=1, seed=0)
    assert grey.shape == trimap.shape
    # Non-exact trimap values are binned: < 0.1 bg, > 0.9 fg, otherwise unknown.
    fuzzy = trimap.copy()
    fuzzy[fuzzy == 0] = 20
    fuzzy[fuzzy == 255] = 235
    fuzzy[fuzzy == 128] = 100
    assert np.array_equal(tiny_engine.refine(image, fuzzy, steps=1, seed=0), ref)


@pytest.mark.parametrize("bad, match", [
    (lambda im, tr: (im[:-1], tr), "must match"),
    (lambda im, tr: (im[:0], tr[:0]), "empty"),
    (lambda im, tr: (np.where(True, np.nan, im.astype(np.float32)), tr), "NaN"),
    (lambda im, tr: (im, np.dstack([tr, tr * 0, tr])), "channels"),
    (lambda im, tr: (im.astype(np.int64), tr), "dtype"),
    (lambda im, tr: (im, tr.astype(np.float32) * 2), r"\[0, 1\]"),
    (lambda im, tr: (im[:, :, :2], tr), "shape"),
])
def test_bad_inputs_raise_value_error(tiny_engine, bad, match):
    image, trimap = bad(*_inputs())
    with pytest.raises(ValueError, match=match):
        tiny_engine.refine(image, trimap, steps=1)


def test_bad_noise_and_steps(tiny_engine):
    image, trimap = _inputs()
    with pytest.raises(ValueError, match="noise"):
        tiny_engine.refine(image, trimap, noise=np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="steps"):
        tiny_engine.refine(image, trimap, steps=0)


def test_progress_callback_reports_every_step(tiny_engine):
    image, trimap = _inputs()
    seen = []
    alpha = tiny_engine.refine(image, trimap, steps=4, seed=0, callback=seen.append, force_fg=False)
    assert [s.index for s in seen] == [1, 2, 3, 4] and all(s.total == 4 for s in seen)
    assert [round(s.t, 4) for s in seen] == [1.0, 0.75, 0.5, 0.25]
    assert seen[-1].x0.shape == trimap.shape
    # With DDIM the result is the last x0 prediction (background forced to 0).
    unk = trimap == 128
    assert np.allclose(seen[-1].x0[unk], alpha[unk], atol=1e-6)


def test_cancel_between_steps(tiny_engine):
    image, trimap = _inputs()
    cancel = threading.Event()

    def stop_after_two(step):
        if step.index == 2:
            cancel.set()
    seen = []
    with pytest.raises(diffmatte.Cancelled):
        tiny_engine.refine(image, trimap, steps=6, callback=lambda s: (seen.append(s), stop_after_two(s)),
                           cancel=cancel)
    assert len(seen) == 2
    # The engine stays usable after a cancel.
    assert tiny_engine.refine(image, trimap, steps=1).shape == trimap.shape


def test_odd_sizes_and_one_pixel(tiny_engine):
    for h, w in [(1, 1), (33, 64), (64, 33), (31, 97)]:
        image, trimap = _inputs(h, w) if h > 20 else (np.zeros((h, w, 3), np.uint8), np.full((h, w), 128, np.uint8))
        assert tiny_engine.refine(image, trimap, steps=1).shape == (h, w)


def test_default_weights_missing_is_clear(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFMATTE_DEFAULT_WEIGHTS", str(tmp_path / "none.safetensors"))
    with pytest.raises(diffmatte.DefaultWeightsMissing, match="weights=PATH"):
        diffmatte.load_engine("default", device="cpu")


def test_bad_device_is_clear(tiny_weights):
    with pytest.raises(ValueError, match="device"):
        diffmatte.load_engine(tiny_weights, device="tpu")


def test_registry_name_resolves_to_downloaded_file(monkeypatch, tmp_path, tiny_weights):
    import shutil

    from diffmatte.engine import resolve_weights
    from diffmatte.weights import download, registry

    monkeypatch.setenv("REFINE_MATTE_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="diffmatte download"):
        resolve_weights("ViTS_1024")
    local = download.local_path(registry.get("ViTS_1024"))
    local.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_weights, local)
    assert resolve_weights("ViTS_1024") == local
    with pytest.raises(ValueError, match="sam"):
        resolve_weights("vit_b")
