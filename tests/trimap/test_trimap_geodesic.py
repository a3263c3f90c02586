"""The rectangle's geodesic start (trimap.geodesic): background inside a box that a smooth
run of colour joins to the outside starts as "probably background", so background colours
the outside does not show are learnt as background."""
from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from trimap import geodesic  # noqa: E402
from trimap.rough import segment  # noqa: E402

H, W = 200, 300
TOP = 40   # the box leaves the rows above this outside (20 % of the photo)


def subject_in_a_box(seed: int = 0):
    """A textured orange subject touching the bottom border in front of a sky that pales
    smoothly from deep blue at the top to near white at the bottom; the box covers every row
    from TOP down, so the outside shows only the deep blue and the box's lower corners hold
    pale sky that nothing outside looks like."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    t = (yy / (H - 1.0))[..., None]
    sky = (1 - t) * np.array([0.15, 0.3, 0.8]) + t * np.array([0.85, 0.9, 0.95])
    sky = sky + cv2.GaussianBlur(rng.normal(0, 0.01, (H, W, 3)).astype(np.float32), (0, 0), 2)
    subject = ((yy - 200) / 130.0) ** 2 + ((xx - 150) / 90.0) ** 2 < 1
    texture = np.array([0.9, 0.55, 0.2]) + rng.normal(0, 0.05, (H, W, 3))
    img = np.where(subject[..., None], texture, sky)
    box = np.zeros((H, W), bool)
    box[TOP:] = True
    return np.clip(img, 0, 1).astype(np.float32), subject, box


def rgb8(img: np.ndarray) -> np.ndarray:
    return np.round(img * 255).astype(np.uint8)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def test_a_step_costs_its_contrast_beyond_the_floor_and_a_gradient_costs_nothing():
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :, :] = np.arange(40, dtype=np.uint8)[None, :, None]   # 1/255 per px and channel: below the floor
    img[:, 30:] = 255                                                          # a white wall
    seeds = np.zeros((20, 40), bool)
    seeds[:, 0] = True
    dist = geodesic.geodesic_distance(img, seeds)
    assert dist[:, :30].max() < 1e-3
    step = np.linalg.norm(np.full(3, (255 - int(img[0, 29, 0])) / 255.0))
    assert dist[:, 30:].min() == pytest.approx(step - geodesic.STEP_FLOOR, abs=1e-3)
    assert np.isinf(geodesic.geodesic_distance(img, np.zeros((20, 40), bool))).all()


def test_the_outside_reaches_the_pale_sky_inside_the_box_but_not_the_subject():
    img, subject, box = subject_in_a_box()
    near = geodesic.near_outside(rgb8(img), ~box)
    sky_inside = box & ~subject
    assert not (near & ~box).any()
    assert near[sky_inside].mean() > 0.9
    assert near[subject].mean() < 0.01


def test_a_box_learns_the_sky_the_outside_does_not_show(monkeypatch):
    img, subject, box = subject_in_a_box()
    seg = segment(img, box)
    corners = box & ~subject & (np.mgrid[:H, :W][0] > 150)   # the palest sky, lowest in the box
    assert iou(seg.fg, subject) > 0.9
    assert seg.fg[corners].mean() < 0.05
    # without the geodesic start (nothing is near enough) the pale corners stay foreground
    monkeypatch.setattr(geodesic, "REACH", -1.0)
    plain = segment(img, box)
    assert plain.fg[corners].mean() > 0.5
    assert iou(plain.fg, subject) < iou(seg.fg, subject)


def test_a_lasso_keeps_the_plain_start(monkeypatch):
    img, subject, box = subject_in_a_box()
    lasso = box.copy()
    lasso[TOP:TOP + 20, :20] = False          # a cut corner: not a rectangle
    first = segment(img, lasso).fg
    monkeypatch.setattr(geodesic, "REACH", -1.0)
    assert np.array_equal(segment(img, lasso).fg, first)
