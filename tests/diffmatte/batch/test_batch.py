"""diffmatte batch on flat images: pairing, validation before the model, safety, resume."""
from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffmatte import batch
from diffmatte.cli import main
from doubles.sam import no_installed_sam


def photo(path: Path, size=(48, 40), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def trimap(path: Path, size=(48, 40)) -> Path:
    t = np.full((size[1], size[0]), 128, np.uint8)
    t[:8] = 0
    t[-8:] = 255
    Image.fromarray(t).save(path)
    return path


def mask(path: Path, size=(48, 40), value=None) -> Path:
    m = np.zeros((size[1], size[0]), np.uint8)
    if value is None:
        m[:, : size[0] // 2] = 255
    else:
        m[:] = value
    Image.fromarray(m).save(path)
    return path


def bomb(path: Path) -> Path:
    """A PNG whose header claims 50000 x 50000 pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    return path


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def run(tiny_weights):
    def go(*inputs, **kw):
        kw.setdefault("weights", str(tiny_weights))
        kw.setdefault("steps", 1)
        kw.setdefault("threads", 1)
        kw.setdefault("progress", False)
        kw.setdefault("echo", None)
        return batch.run([str(i) for i in inputs], **kw)
    return go


@pytest.fixture
def no_engine(monkeypatch):
    """Fail the test if the model is loaded."""
    import diffmatte.engine

    def refuse(*a, **k):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(diffmatte.engine, "load_engine", refuse)


def test_same_folder_layout_needs_patterns_then_pairs_exactly(tmp_path, run):
    src = tmp_path / "shots"
    src.mkdir()
    for n in ("1", "2"):
        photo(src / f"{n}_image.png")
        trimap(src / f"{n}_trimap.png")
    with pytest.raises(ValueError, match="--trimaps is the images folder"):
        run(src, output=tmp_path / "out", trimaps=src)
    s = run(src, output=tmp_path / "out", trimaps=src, image_pattern="{stem}_image",
            trimap_pattern="{stem}_trimap")
    assert (s.refined, s.failed) == (2, [])
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["1_image.png", "2_image.png"]


def test_glob_characters_match_only_themselves(tmp_path, run):
    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir(), tri.mkdir()
    for stem in ("dog?", "dogX", "cat[1]"):
        photo(img / f"{stem}.png")
    trimap(tri / "dogX.png")
    trimap(tri / "cat[1].png")
    s = run(img, output=tmp_path / "out", trimaps=tri)
    assert s.refined == 2
    assert [k for k, _ in s.failed] == ["dog?.png"]
    assert "no trimap named dog?.*" in s.failed[0][1]
    assert (tmp_path / "out" / "cat[1].png").is_file() and not (tmp_path / "out" / "dog?.png").exists()


def test_ambiguous_trimaps_are_an_error_naming_both(tmp_path, run):
    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir(), tri.mkdir()
    photo(img / "a.png")
    photo(img / "b.png")
    trimap(tri / "a.png")
    trimap(tri / "a.tif")
    trimap(tri / "b.png")
    s = run(img, output=tmp_path / "out", trimaps=tri)
    assert s.refined == 1
    (key, why), = s.failed
    assert key == "a.png" and str(tri / "a.png") in why and str(tri / "a.tif") in why


def test_inputs_are_never_outputs_whatever_o_is(tmp_path, run):
    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir(), tri.mkdir()
    photo(img / "a.jpg")
    photo(img / "a.png", seed=1)         # shares a.jpg's stem: a.jpg's matte would be a.png
    photo(img / "x.png", seed=2)
    photo(img / "x_cutout.png", seed=3)  # x's cut-out would be x_cutout.png
    for stem in ("a", "x", "x_cutout"):
        trimap(tri / f"{stem}.png")
    before_img, before_tri = digest(img), digest(tri)
    for out in (img, tri):
        s = run(img, output=out, trimaps=tri, rgba=True)
        assert s.refined == 0 and len(s.failed) == 4
        assert all("overwrite an input" in why or "would both write" in why for _, why in s.failed)
    for folder, before in ((img, before_img), (tri, before_tri)):  # only the manifest is new
        assert {k: v for k, v in digest(folder).items() if k != batch.MANIFEST} == before


def test_one_bad_file_never_stops_the_batch_and_all_are_checked_before_the_model(tmp_path, run, no_engine):
    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir(), tri.mkdir()
    bomb(img / "bomb.png")
    trimap(tri / "bomb.png")
    (img / "corrupt.png").write_bytes(b"corrupt")
    trimap(tri / "corrupt.png")
    photo(img / "binary.png")
    mask(tri / "binary.png")                       # a binary mask given as a trimap
    trimap(img / "swapped.png")                    # image and trimap swapped
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48), dtype=np.uint8)).save(tri / "swapped.png")
    photo(img / "small.png")
    trimap(tri / "small.png", size=(30, 20))       # size mismatch
    photo(img / "big.png", size=(200, 100))
    trimap(tri / "big.png", size=(200, 100))
    s = run(img, output=tmp_path / "out", trimaps=tri, max_megapixels=0.01)
    why = dict(s.failed)
    assert s.refined == 0 and len(why) == 6
    assert "decompression bomb" in why["bomb.png"]
    assert "not a readable image" in why["corrupt.png"]
    assert "no unknown" in why["binary.png"] and "--masks" in why["binary.png"]
    assert "swapped" in why["swapped.png"]
    assert "30x20" in why["small.png"]
    assert "--max-megapixels" in why["big.png"]


def test_one_bad_file_is_reported_and_the_rest_is_refined(tmp_path, run):
    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir(), tri.mkdir()
    bomb(img / "bomb.png")
    trimap(tri / "bomb.png")
    photo(img / "good.png")
    trimap(tri / "good.png")
    s = run(img, output=tmp_path / "out", trimaps=tri)
    assert s.refined == 1 and [k for k, _ in s.failed] == ["bomb.png"] and s.exit_code == 1
    lines = (tmp_path / "out" / batch.MANIFEST).read_text().splitlines()
    assert len(lines) == 2  # every item is in the manifest, failures too


def test_unwritable_output_is_found_before_the_model(tmp_path, run, no_engine):
    img = tmp_path / "img"
    img.mkdir()
    photo(img / "a.png")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="cannot write into the output folder"):
        run(img, output=blocker / "out", trimaps=img)


def test_masks_are_banded_into_trimaps_and_edgeless_masks_refused(tmp_path, run):
    img, masks = tmp_path / "img", tmp_path / "masks"
    img.mkdir(), masks.mkdir()
    photo(img / "a.png")
    mask(masks / "a.png")
    photo(img / "white.png")
    mask(masks / "white.png", value=255)
    s = run(img, output=tmp_path / "out", masks=masks, rgba=True)
    assert s.refined == 1
    assert "all foreground" in dict(s.failed)["white.png"]
    alpha = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert alpha[:, :10].min() == 255 and alpha[:, -10:].max() == 0  # far from the edge: known
    cut = Image.open(tmp_path / "out" / "a_cutout.png")
    assert cut.mode == "RGBA" and cut.size == (48, 40)


def test_a_rough_mask_covering_the_photo_is_refined_with_a_warning(tmp_path, run):
    """--mask-edge rough with a mask that leaves almost no background: the item is refined,
    and the rough path's warning is said with the item's name and kept in the manifest."""
    import json

    img, masks = tmp_path / "img", tmp_path / "masks"
    img.mkdir(), masks.mkdir()
    photo(img / "a.png")
    almost_all = np.full((40, 48), 255, np.uint8)
    almost_all[0, :] = 0  # 2.5 % of the photo left outside
    Image.fromarray(almost_all).save(masks / "a.png")
    said: list = []
    s = run(img, output=tmp_path / "out", masks=masks, mask_edge="rough", echo=said.append)
    assert s.refined == 1
    assert any(line.startswith("a.png: warning: the ") for line in said), said  # noise: either warning
    records = [json.loads(line) for line in s.manifest.read_text().splitlines()]
    assert any(r.get("warnings") for r in records if r["status"] == "done")


@pytest.mark.parametrize("source,edge,widen", [("masks", "rough", True), ("masks", "exact", False),
                                               ("trimaps", "rough", False)])
def test_a_mask_read_as_rough_asks_the_engine_to_widen_the_band(tmp_path, run, monkeypatch, source, edge, widen):
    """A rough mask's band may have missed the edge: Engine.refine widens it (widen_band), by
    --band (the band its trimap was made with); an exact mask or a given trimap is refined once."""
    from diffmatte.engine import Engine

    no_installed_sam(monkeypatch, tmp_path)   # the mask is a rectangle: the colour models read it
    asked: list = []
    refine = Engine.refine

    def spy(self, image, tri, **kw):
        asked.append(kw.get("widen_band", False))
        assert kw.get("band") == 3.0
        return refine(self, image, tri, **kw)

    monkeypatch.setattr(Engine, "refine", spy)
    img, side = tmp_path / "img", tmp_path / source
    img.mkdir(), side.mkdir()
    photo(img / "a.png")
    (mask if source == "masks" else trimap)(side / "a.png")
    s = run(img, output=tmp_path / "out", mask_edge=edge, band=3.0, **{source: side})
    assert s.refined == 1 and asked == [widen]


def test_rerun_skips_done_work_and_redoes_what_changed(tmp_path, run):
    img, tri, out = tmp_path / "img", tmp_path / "tri", tmp_path / "out"
    img.mkdir(), tri.mkdir()
    for stem in ("a", "b"):
        photo(img / f"{stem}.png")
        trimap(tri / f"{stem}.png")
    assert run(img, output=out, trimaps=tri).refined == 2
    s = run(img, output=out, trimaps=tri)
    assert (s.refined, s.skipped) == (0, 2)
    (out / "a.png").write_bytes(b"damaged")          # partial or edited output: redone
    s = run(img, output=out, trimaps=tri)
    assert (s.refined, s.skipped) == (1, 1)
    s = run(img, output=out, trimaps=tri, steps=2)   # other settings: everything redone
    assert (s.refined, s.skipped) == (2, 0)
    import diffmatte.batch.work as work
    with pytest.MonkeyPatch.context() as mp:            # an engine whose matte changed: redone
        mp.setattr(work, "RESULTS_REVISION", work.RESULTS_REVISION + 1)
        s = run(img, output=out, trimaps=tri, steps=2)
    assert (s.refined, s.skipped) == (2, 0)
    (out / "c.png").write_bytes(b"someone else's")   # an output path not written by us
    photo(img / "c.png")
    trimap(tri / "c.png")
    s = run(img, output=out, trimaps=tri)
    assert "--overwrite" in dict(s.failed)["c.png"] and (out / "c.png").read_bytes() == b"someone else's"
    assert run(img, output=out, trimaps=tri, overwrite=True).refined == 1


def test_the_white_point_reaches_the_engine_and_redoes_the_outputs(tmp_path, run, refine_calls):
    """--white-point: each refine gets it, a rerun with another one redoes the outputs (it is in
    the settings' fingerprint), and with --service (whose refine does not take it) it is refused before anything is done."""
    from diffmatte.batch.work import Settings

    img, tri, out = tmp_path / "img", tmp_path / "tri", tmp_path / "out"
    img.mkdir(), tri.mkdir()
    photo(img / "a.png")
    trimap(tri / "a.png")
    with pytest.raises(ValueError, match="--white-point cannot be used with --service"):
        run(img, output=out, trimaps=tri, service=True, white_point=1.0)
    assert not out.exists()
    assert run(img, output=out, trimaps=tri).refined == 1
    s = run(img, output=out, trimaps=tri, white_point=1.0)
    assert (s.refined, s.skipped) == (1, 0)
    assert refine_calls[0]["white_point"] is None and refine_calls[1]["white_point"] == 1.0
    assert Settings().fingerprint("w") != Settings(white_point=1.0).fingerprint("w")


def test_jobs_two_gives_the_same_files(tmp_path, run):
    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir(), tri.mkdir()
    for i in range(3):
        photo(img / f"{i}.png", seed=i)
        trimap(tri / f"{i}.png")
    one = run(img, output=tmp_path / "one", trimaps=tri)
    two = run(img, output=tmp_path / "two", trimaps=tri, jobs=2)
    assert one.refined == two.refined == 3
    assert digest(tmp_path / "one").keys() == digest(tmp_path / "two").keys()
    for name in ("0.png", "1.png", "2.png"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert manifest_without_timing(tmp_path / "one") == manifest_without_timing(tmp_path / "two")


def manifest_without_timing(out: Path) -> list:
    import json

    recs = [json.loads(l) for l in (out / batch.MANIFEST).read_text().splitlines()]
    for r in recs:
        r.pop("timing", None)
    return recs


def test_cli_flags_and_exit_codes(tmp_path, tiny_weights, capsys):
    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir(), tri.mkdir()
    photo(img / "a.png")
    trimap(tri / "a.png")
    args = ["batch", str(img), "--trimaps", str(tri), "-o", str(tmp_path / "out"), "--weights", str(tiny_weights),
            "--steps", "1", "-q", "--threads", "1"]
    assert main(args) == 0
    assert "1 refined" in capsys.readouterr().out
    assert main(args) == 0
    assert "1 already done" in capsys.readouterr().out
    assert main(["batch", str(tmp_path / "nope"), "-o", str(tmp_path / "o2"), "--weights", str(tiny_weights)]) == 2


def test_cutouts_keep_the_icc_profile_and_sixteen_bit_layers(tmp_path, run):
    import struct

    from PIL import ImageCms

    from diffmatte.io import layered
    from diffmatte.io.cutout_files import read_icc
    from doubles.layered_docs import make_doc

    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir(), tri.mkdir()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(np.full((40, 48, 3), 200, np.uint8)).save(img / "icc.png", icc_profile=icc)
    trimap(tri / "icc.png")
    doc = make_doc()
    for _, layer in doc.leaves():
        layer.pixels = layer.pixels.astype(np.uint16) * 257
    doc.layers[1].children[0].mask.pixels = doc.layers[1].children[0].mask.pixels.astype(np.uint16) * 257
    layered.write(doc, img / "deep.tif")
    s = run(img, output=tmp_path / "out", trimaps=tri, rgba=True, layers="subject")
    assert (s.refined, s.failed) == (2, [])
    assert read_icc(tmp_path / "out" / "icc_cutout.png") == icc
    raw = (tmp_path / "out" / "deep_fg_subject_cutout.png").read_bytes()
    assert struct.unpack(">B", raw[24:25])[0] == 16  # IHDR bit depth: 16-bit layer, 16-bit cut-out
    out = layered.read(tmp_path / "out" / "deep.tif")
    assert out.bits == 16 and out.find("subject")[0][1].mask.pixels.dtype == np.uint16


def test_layered_bomb_is_refused_per_item(tmp_path, run, no_engine):
    import zipfile

    with zipfile.ZipFile(tmp_path / "bomb.ora", "w") as zf:
        zf.writestr("mimetype", "image/openraster")
        zf.writestr("stack.xml", '<image w="50000" h="50000"><stack/></image>')
    s = run(tmp_path / "bomb.ora", output=tmp_path / "out")
    assert "megapixels is over the limit" in dict(s.failed)["bomb.ora"]


def test_an_items_result_does_not_depend_on_the_items_before_it(tmp_path, run):
    """The engine keeps a tile cache between refines (for interactive re-runs); a batch
    clears it per item, so which worker refined what before cannot change a file."""
    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir(), tri.mkdir()
    for i in range(2):
        photo(img / f"{i}.png", seed=i)
        trimap(tri / f"{i}.png")
    assert run(img, output=tmp_path / "both", trimaps=tri, bits=16, steps=3).refined == 2
    assert run(img / "1.png", output=tmp_path / "alone", trimaps=tri, bits=16, steps=3).refined == 1
    assert (tmp_path / "both" / "1.png").read_bytes() == (tmp_path / "alone" / "1.png").read_bytes()


def test_sixteen_bit_colour_tiff_gives_a_sixteen_bit_cutout(tmp_path, run):
    import struct

    import tifffile

    from diffmatte.io.images import read_image

    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir(), tri.mkdir()
    deep = (np.random.default_rng(0).integers(0, 65536, (40, 48, 3))).astype(np.uint16)
    tifffile.imwrite(img / "deep.tif", deep, photometric="rgb")
    assert np.array_equal(read_image(img / "deep.tif"), deep)  # all 16 bits (Pillow alone keeps 8)
    trimap(tri / "deep.png")
    s = run(img, output=tmp_path / "out", trimaps=tri, rgba=True, decontaminate=0.0)
    assert (s.refined, s.failed) == (1, [])
    raw = (tmp_path / "out" / "deep_cutout.png").read_bytes()
    assert struct.unpack(">B", raw[24:25])[0] == 16



def test_prior_solver_reaches_the_engines_of_every_runner(tmp_path, run, monkeypatch):
    """--prior-solver (as refine's): the batch's engines are loaded with it, in this process
    and in the worker pool's initializer; it is where the solve runs, not a result setting."""
    import torch

    import diffmatte.engine
    from diffmatte.batch import work

    real = diffmatte.engine.load_engine
    seen = []

    def spy(weights, device="auto", **kw):
        seen.append((device, kw.get("prior_solver")))
        return real(weights, device=device, **kw)

    monkeypatch.setattr(diffmatte.engine, "load_engine", spy)
    src = tmp_path / "in"
    src.mkdir()
    photo(src / "a.png")
    trimap(tmp_path / "a.png")
    s = run(src, output=tmp_path / "out", trimaps=tmp_path, device="cpu", prior_solver="numpy")
    assert s.failed == [] and seen == [("cpu", "numpy")]
    monkeypatch.setattr(work, "_ENGINE", None)
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))  # init_worker sets it
    work.init_worker("default", ("cpu", "torch"), torch.get_num_threads())
    assert seen[-1] == ("cpu", "torch")


def test_batch_and_serve_take_prior_solver_on_the_command_line():
    import argparse

    from diffmatte.batch import cli as batch_cli
    from diffmatte.service import cli as service_cli

    top = argparse.ArgumentParser()
    batch_cli.register(top.add_subparsers())
    args = top.parse_args(["batch", "in", "-o", "out", "--prior-solver", "torch"])
    assert args.prior_solver == "torch"
    serve = argparse.ArgumentParser()
    service_cli.add_arguments(serve)
    assert serve.parse_args(["--prior-solver", "numpy"]).prior_solver == "numpy"
    assert serve.parse_args([]).prior_solver == "auto"
