"""diffmatte batch on layered files: PSD, OpenRaster and layered TIFF with three layers."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from diffmatte import batch
from diffmatte.io import layered
from doubles.layered_docs import EXT, FORMATS, layout, make_doc


def run(tiny_weights, inputs, out, **kw):
    return batch.run([str(i) for i in inputs], str(out), weights=str(tiny_weights), steps=1, threads=1,
                     progress=False, echo=None, **kw)


@pytest.mark.parametrize("fmt", FORMATS)
def test_only_the_chosen_layer_gets_the_refined_mask(tmp_path, tiny_weights, fmt):
    src = layered.write(make_doc(), tmp_path / "in" / f"shot{EXT[fmt]}")
    before = src.read_bytes()
    s = run(tiny_weights, [src.parent], tmp_path / "out", layers="subj*", rgba=True, band=1.0)
    assert (s.refined, s.failed) == (1, [])
    assert src.read_bytes() == before
    out = tmp_path / "out" / src.name
    orig, new = layered.read(src), layered.read(out)
    assert new.format == fmt and layout(new) == layout(orig)  # names, order, groups, offsets, opacity
    for (path, a), (_, b) in zip(orig.leaves(), new.leaves()):
        np.testing.assert_array_equal(a.pixels, b.pixels)
        if path != "fg/subject":
            assert b.mask is None
    old_mask = orig.find("fg/subject")[0][1].mask.canvas(40, 30)
    mask = new.find("fg/subject")[0][1].mask.canvas(40, 30)
    assert not np.array_equal(mask, old_mask)          # refined, not passed through
    import trimap

    subject = orig.find("fg/subject")[0][1]
    tri = trimap.from_mask(old_mask, band=1.0, image=orig.canvas_rgba(subject)[..., :3])
    assert (tri == 128).any() and (tri == 0).any() and (tri == 255).any()
    assert (mask[tri == 0] == 0).all() and (mask[tri == 255] == 1).all()   # known pixels kept
    assert np.abs(mask[tri == 128] - 0.5).max() < 0.5                     # the band was refined
    cut = Image.open(tmp_path / "out" / "shot_fg_subject_cutout.png")
    assert cut.size == (40, 30) and cut.mode == "RGBA"
    # the manifest names the layer and where its trimap came from
    rec = batch.runner.Manifest(tmp_path / "out" / batch.MANIFEST).records[src.name]
    assert rec["layers"] == [["fg/subject", "layer-mask"]] and rec["status"] == "done"


@pytest.mark.parametrize("fmt", FORMATS)
def test_editor_opens_the_output_with_the_mask(tmp_path, tiny_weights, fmt):
    pytest.importorskip("PyQt6")
    from refine_matte.editor import io as edio

    src = layered.write(make_doc(), tmp_path / "in" / f"shot{EXT[fmt]}")
    assert run(tiny_weights, [src], tmp_path / "out", layers="subject").refined == 1
    out = tmp_path / "out" / src.name
    doc = edio.load_document(str(out))
    assert [l.name for l in doc.layers] == ["background", "subject", "overlay"]
    assert [l.visible for l in doc.layers] == [True, True, False]
    assert [len(l.masks) for l in doc.layers] == [0, 1, 0]
    got = edio.qimage_to_array(doc.layers[1].mask().image, 1)
    want = layered.read(out).find("fg/subject")[0][1].mask.canvas(40, 30)
    np.testing.assert_array_equal(got, np.round(want * 255).astype(np.uint8))


def test_layer_choice_and_trimap_sources_are_checked_before_the_model(tmp_path, tiny_weights, monkeypatch):
    import diffmatte.engine

    monkeypatch.setattr(diffmatte.engine, "load_engine", lambda *a, **k: pytest.fail("model loaded"))
    doc = make_doc()
    layered.write(doc, tmp_path / "in" / "three.ora")
    subject = doc.layers[1].children[0]
    subject.mask, subject.left, subject.top = None, 0, 0
    subject.pixels = np.full((30, 40, 4), 255, np.uint8)   # opaque over the whole canvas
    layered.write(doc, tmp_path / "in" / "opaque.psd")
    s = run(tiny_weights, [tmp_path / "in"], tmp_path / "out")
    why = dict(s.failed)
    assert "3 layers (background, fg/subject, overlay)" in why["three.ora"] and "--layers" in why["three.ora"]
    s = run(tiny_weights, [tmp_path / "in"], tmp_path / "out", layers="nobody")
    assert "no layer matches 'nobody'" in dict(s.failed)["three.ora"]
    s = run(tiny_weights, [tmp_path / "in" / "opaque.psd"], tmp_path / "out", layers="subject")
    assert "no mask and no transparency" in dict(s.failed)["opaque.psd"]


def test_transparency_and_mask_files_as_trimap_sources(tmp_path, tiny_weights):
    doc = make_doc()
    doc.layers[1].children[0].mask = None           # only its transparency is left
    src = layered.write(doc, tmp_path / "in" / "cut.tif")
    s = run(tiny_weights, [src], tmp_path / "out", layers="subject")
    assert s.refined == 1
    rec = batch.runner.Manifest(tmp_path / "out" / batch.MANIFEST).records["cut.tif"]
    assert rec["layers"] == [["fg/subject", "transparency"]]
    masks = tmp_path / "masks"
    masks.mkdir()
    m = np.zeros((30, 40), np.uint8)
    m[8:22, 10:30] = 255
    Image.fromarray(m).save(masks / "cut.png")
    s = run(tiny_weights, [src], tmp_path / "out2", layers="subject", masks=masks)
    assert s.refined == 1
    rec = batch.runner.Manifest(tmp_path / "out2" / batch.MANIFEST).records["cut.tif"]
    assert rec["layers"] == [["fg/subject", "mask"]]


def test_cli_on_layered_files(tmp_path, tiny_weights, capsys):
    from diffmatte.cli import main

    src = layered.write(make_doc(), tmp_path / "in" / "shot.psd")
    args = [str(src), "--layers", "subj*", "-o", str(tmp_path / "out"), "--weights", str(tiny_weights),
            "--steps", "1", "--threads", "1", "--rgba", "--band", "2", "-q"]
    assert main(["batch", *args]) == 0
    assert "1 refined" in capsys.readouterr().out
    assert (tmp_path / "out" / "shot.psd").is_file() and (tmp_path / "out" / "shot_fg_subject_cutout.png").is_file()
    assert main(["batch", str(src), "-o", str(tmp_path / "out2"), "--weights", str(tiny_weights), "-q"]) == 1
    assert "choose the one(s) to refine with --layers" in capsys.readouterr().out
