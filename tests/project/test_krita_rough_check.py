"""tests/hosts/rough_photo.py: the Krita host scenario's rough-lasso inputs and number check."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from conftest import ROOT

pytest.importorskip("cv2")  # trimap.simulate draws the lasso with OpenCV

_spec = importlib.util.spec_from_file_location("rm_rough_photo", ROOT / "tests" / "hosts" / "rough_photo.py")
rough_photo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rough_photo)


def _dev_data(tmp_path: Path) -> Path:
    """A tiny stand-in for alphamatting-real: a disc with a soft edge, truth stored as RGB grey."""
    yy, xx = np.mgrid[:120, :160]
    r = np.hypot(yy - 60, xx - 80)
    alpha = np.clip((35 - r) / 4 + 0.5, 0, 1)
    data = tmp_path / "dev"
    (data / "input").mkdir(parents=True)
    (data / "gt").mkdir()
    img = np.dstack([alpha * 200 + 30, 90 + 0 * alpha, 255 - alpha * 200]).astype(np.uint8)
    Image.fromarray(img, "RGB").save(data / "input" / "GT04.png")
    g = np.round(alpha * 255).astype(np.uint8)
    Image.fromarray(np.dstack([g, g, g]), "RGB").save(data / "gt" / "GT04.png")
    return data


def _results(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"checks": [{"name": "refine 1", "ok": True, "detail": ""}], "ok": True, "done": True}))


def test_prepare_draws_a_lasso_outside_the_subject(tmp_path):
    inp = tmp_path / "in"
    info = rough_photo.prepare(inp, data=_dev_data(tmp_path), seed=0)
    gt = rough_photo.grey01(inp / "gt.png")
    lasso = rough_photo.grey01(inp / "rough.png") >= 0.5
    assert info["photo"] == "GT04" and info["size"] == [160, 120]
    assert lasso[gt > 0.05].all() and lasso.sum() > (gt > 0.05).sum()  # around it, not on it
    assert info["lasso_sad"] > 0 and info["lasso_sad"] == pytest.approx(rough_photo.sad(lasso, gt), abs=0.01)


def _check(r: dict, start: str) -> dict:
    found = [c for c in r["checks"] if c["name"].startswith(start)]
    assert len(found) == 1, [c["name"] for c in r["checks"]]
    return found[0]


def _lasso(r: dict) -> dict:
    return _check(r, "rough lasso")


def test_score_passes_a_mask_near_the_truth_and_fails_the_lasso(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    rough_photo.prepare(inp, data=_dev_data(tmp_path), seed=0)
    gt = rough_photo.grey01(inp / "gt.png")
    _results(out)
    for name in ("mask-1.png", "mask-all.png", "mask-rect.png"):
        Image.fromarray(np.round(gt * 255).astype(np.uint8), "L").save(out / name)
    r = rough_photo.score(out, inp)
    c = _lasso(r)
    assert c["ok"] and r["ok"] and "mask SAD 0.0" in c["detail"] and "GT04" in c["name"]
    assert r["rough_sad"]["mask"] == 0 and r["rough_sad"]["lasso"] > 0
    # The lasso itself as the mask: no better than the lasso, so the check fails the host.
    _results(out)
    (inp / "rough.png").replace(out / "mask-1.png")
    Image.open(out / "mask-1.png").save(inp / "rough.png")
    r = rough_photo.score(out, inp)
    assert not _lasso(r)["ok"] and _check(r, "Select All")["ok"] and not r["ok"]
    assert json.loads((out / "results.json").read_text())["ok"] is False


def test_the_select_all_mask_must_beat_the_whole_canvas(tmp_path):
    """The Select All refine's mask against the truth: the truth passes, the whole canvas
    (what the selection itself says) fails, and a missing mask fails."""
    inp, out = tmp_path / "in", tmp_path / "out"
    rough_photo.prepare(inp, data=_dev_data(tmp_path), seed=0)
    gt = rough_photo.grey01(inp / "gt.png")
    _results(out)
    Image.fromarray(np.round(gt * 255).astype(np.uint8), "L").save(out / "mask-1.png")
    Image.fromarray(np.round(gt * 255).astype(np.uint8), "L").save(out / "mask-all.png")
    c = _check(rough_photo.score(out, inp), "Select All on GT04")
    assert c["ok"] and "mask SAD 0.0" in c["detail"] and "0.35x" in c["name"]
    _results(out)
    Image.fromarray(np.full(gt.shape, 255, np.uint8), "L").save(out / "mask-all.png")
    r = rough_photo.score(out, inp)
    assert not _check(r, "Select All")["ok"] and "1.000x" in _check(r, "Select All")["detail"] and not r["ok"]
    _results(out)
    (out / "mask-all.png").unlink()
    r = rough_photo.score(out, inp)
    assert not _check(r, "Select All")["ok"] and "no mask-all.png" in _check(r, "Select All")["detail"]


def test_the_rectangle_mask_must_beat_the_box(tmp_path):
    """The rectangle refine's mask against the truth: the box is the bench's box for the photo
    (box.json, read by the scenario); the truth passes, the box itself fails, no mask fails."""
    inp, out = tmp_path / "in", tmp_path / "out"
    info = rough_photo.prepare(inp, data=_dev_data(tmp_path), seed=0)
    gt = rough_photo.grey01(inp / "gt.png")
    x, y, w, h = json.loads((inp / "box.json").read_text())["box"]
    assert [x, y, w, h] == info["box"]
    box = np.zeros(gt.shape, bool)
    box[y:y + h, x:x + w] = True
    assert box[gt > 0.05].all() and not box.all() and info["box_sad"] == pytest.approx(rough_photo.sad(box, gt), abs=0.01)
    _results(out)
    for name in ("mask-1.png", "mask-all.png", "mask-rect.png"):
        Image.fromarray(np.round(gt * 255).astype(np.uint8), "L").save(out / name)
    c = _check(rough_photo.score(out, inp), "rectangle on GT04")
    assert c["ok"] and "mask SAD 0.0" in c["detail"]
    _results(out)
    Image.fromarray(box.astype(np.uint8) * 255, "L").save(out / "mask-rect.png")
    r = rough_photo.score(out, inp)
    assert not _check(r, "rectangle")["ok"] and "1.000x" in _check(r, "rectangle")["detail"] and not r["ok"]
    _results(out)
    (out / "mask-rect.png").unlink()
    r = rough_photo.score(out, inp)
    assert not _check(r, "rectangle")["ok"] and "no mask-rect.png" in _check(r, "rectangle")["detail"]


def test_score_fails_without_the_mask_and_skips_without_a_truth(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    rough_photo.prepare(inp, data=_dev_data(tmp_path), seed=0)
    _results(out)
    r = rough_photo.score(out, inp)
    assert not _lasso(r)["ok"] and "no mask-1.png" in _lasso(r)["detail"]
    # No dev photos: the bundled astronaut, a NOTE, the other checks decide.
    rough_photo.prepare(inp, data=tmp_path / "nowhere")
    assert not (inp / "gt.png").exists()
    assert Image.open(inp / "photo.png").size == Image.open(inp / "rough.png").size
    _results(out)
    r = rough_photo.score(out, inp)
    assert r["ok"] and len(r["checks"]) == 1 and "skipped" in r["notes"][0]
