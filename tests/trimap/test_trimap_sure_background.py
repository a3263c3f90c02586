"""Sure background inside a box's unknown zones (trimap.sure_background)."""
from __future__ import annotations

import numpy as np
import pytest

import trimap
from trimap import sure_background as sb
from trimap._validate import BG, FG, UNKNOWN

H, W = 120, 160


def zone_scene():
    """A foreground block on the left, everything else unknown; the colour models' llr is
    sure background (10) in a far block, a near block, a thin gap and a weak block."""
    tri = np.full((H, W), UNKNOWN, np.uint8)
    tri[:, :30] = FG
    llr = np.full((H, W), -5.0, np.float32)
    far = np.zeros((H, W), bool)
    far[20:60, 100:150] = True
    near = np.zeros((H, W), bool)
    near[80:110, 32:40] = True       # 3-10 px from the foreground: solid after the erosion
    gap = np.zeros((H, W), bool)
    gap[70:115, 120:122] = True      # 2 px wide: a gap between strands
    weak = np.zeros((H, W), bool)
    weak[70:110, 70:100] = True
    llr[far | near | gap] = 10.0
    llr[weak] = 1.0                  # background-like, not sure
    return tri, llr, far, near, gap, weak


def test_only_far_solid_sure_background_becomes_background():
    tri, llr, far, near, gap, weak = zone_scene()
    out = sb.sure_background(tri, llr, band=5.0)
    core = np.zeros_like(far)
    core[22:58, 102:148] = True      # the far block less its eroded rim
    assert out[core].all()
    assert not out[near].any()       # within MIN_DEPTH band radii of the foreground
    assert not out[gap].any()        # thinner than the erosion
    assert not out[weak].any()       # llr below SURE_LLR
    assert not out[tri != UNKNOWN].any()
    region = np.zeros((H, W), bool)
    region[:, :125] = True
    assert not sb.sure_background(tri, llr, 5.0, region)[:, 125:].any()


def test_nothing_without_foreground_or_unknown():
    tri, llr, *_ = zone_scene()
    assert not sb.sure_background(np.full((H, W), UNKNOWN, np.uint8), llr, 5.0).any()
    assert not sb.sure_background(np.where(tri == FG, FG, BG).astype(np.uint8), llr, 5.0).any()


def test_from_region_uses_it_for_a_box_and_not_for_a_lasso(monkeypatch):
    pytest.importorskip("cv2")
    from trimap import rough

    calls = []
    real = rough.sure_background
    monkeypatch.setattr(rough, "sure_background", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:H, :W]
    subject = (yy - 60) ** 2 + (xx - 80) ** 2 <= 30 ** 2
    img = np.empty((H, W, 3), np.float32)
    img[:] = (0.15, 0.45, 0.55)
    img[subject] = (0.85, 0.2, 0.15)
    img = np.clip(img + rng.normal(0, 0.03, img.shape).astype(np.float32), 0, 1)
    box = np.zeros((H, W), bool)
    box[20:100, 40:120] = True
    lasso = (yy - 60) ** 2 + (xx - 80) ** 2 <= 38 ** 2
    tri = trimap.from_region(img, box, band=4.0)
    assert calls == [1]
    assert (tri[subject & (np.hypot(yy - 60, xx - 80) < 20)] == FG).all()
    trimap.from_region(img, lasso, band=4.0)
    assert calls == [1]
