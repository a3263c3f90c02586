"""``diffmatte refine --mask`` and ``diffmatte batch --masks`` read a selection as the service does
(``trimap.read_selection``): a rough or auto rectangle goes to SAM's box prompt when SAM is
installed (here the tests' tiny SAM, as in the service's test), and its trimap is refined once."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from diffmatte import batch
from diffmatte.cli import main
from doubles.sam import install_tiny_sam

pytest.importorskip("segment_anything")
BOX = [10, 6, 69, 53]   # x0, y0, x1, y1 of the rectangle below


def _files(folder):
    img = np.full((60, 80, 3), (40, 110, 140), np.uint8)
    img[15:45, 20:60] = (220, 60, 40)
    rect = np.zeros((60, 80), np.uint8)
    rect[6:54, 10:70] = 255
    lasso = rect.copy()
    lasso[6:12, 10:16] = 0                                     # a corner cut off: not a rectangle
    for name, arr in (("photo", img), ("rect", rect), ("lasso", lasso)):
        Image.fromarray(arr).save(folder / f"{name}.png")
    return img


def widened(refine_calls) -> list:
    """The widen_band of every Engine.refine so far."""
    return [kw.get("widen_band") for kw in refine_calls]


def test_refine_sends_a_rough_rectangle_to_the_box_prompt(tmp_path, tiny_weights, monkeypatch, refine_calls):
    boxes = install_tiny_sam(monkeypatch)
    img = _files(tmp_path)
    common = ["--weights", str(tiny_weights), "--steps", "1", "-q", "-o", str(tmp_path / "a.png"), "--band", "3"]
    for mask, edge in (("rect", "rough"), ("rect", "auto"), ("lasso", "rough"), ("rect", "exact")):
        assert main(["refine", str(tmp_path / "photo.png"), "--mask", str(tmp_path / f"{mask}.png"),
                     "--mask-edge", edge, "--save-trimap", str(tmp_path / f"t_{mask}_{edge}.png")] + common) == 0
    assert boxes == [BOX, BOX] and widened(refine_calls) == [False, False, True, False]
    from trimap import selection

    sam = selection.installed_prompter().trimap(img, box=BOX, band=3.0)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "t_rect_rough.png")), sam)


def test_batch_masks_send_a_rough_rectangle_to_the_box_prompt(tmp_path, tiny_weights, monkeypatch, refine_calls):
    boxes = install_tiny_sam(monkeypatch)
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    _files(tmp_path)
    (tmp_path / "photo.png").rename(images / "a.png")
    (tmp_path / "rect.png").rename(masks / "a.png")
    s = batch.run([str(images)], output=str(tmp_path / "out"), masks=str(masks), mask_edge="rough",
                  weights=str(tiny_weights), steps=1, threads=1, progress=False, echo=None)
    assert s.refined == 1 and boxes == [BOX] and widened(refine_calls) == [False]


def test_a_batch_rerun_redoes_masks_once_sam_is_installed(tmp_path, tiny_weights, monkeypatch):
    """The installed SAM is part of a mask run's fingerprint: a rerun after a checkpoint is
    installed (or replaced) redoes the masks a rectangle may now go to SAM for; a run from
    trimaps only, or with exact masks, is not redone."""
    from doubles.sam import no_installed_sam

    no_installed_sam(monkeypatch, tmp_path / "config")
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    _files(tmp_path)
    (tmp_path / "photo.png").rename(images / "a.png")
    (tmp_path / "lasso.png").rename(masks / "a.png")

    def run(out="out", **kw):
        return batch.run([str(images)], output=str(tmp_path / out), masks=str(masks), weights=str(tiny_weights),
                         steps=1, threads=1, progress=False, echo=None, **kw)

    assert run().refined == 1 and run().skipped == 1
    assert run("exact", mask_edge="exact").refined == 1
    sam_dir = tmp_path / "config" / "sam"
    sam_dir.mkdir(parents=True)
    (sam_dir / "sam_vit_b_01ec64.pth").write_bytes(b"a checkpoint")   # found, never loaded here
    assert run("exact", mask_edge="exact").skipped == 1                 # exact masks never go to SAM
    assert run().refined == 1 and run().skipped == 1
