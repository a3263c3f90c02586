"""Strokes one at a time (trimap.StrokeSession): a new stroke changes the trimap only
where it reaches, so what earlier strokes fixed stays and the prior re-solves locally."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

import trimap  # noqa: E402
from trimap.stroke_session import local_change  # noqa: E402

H, W = 80, 120


def test_local_change_takes_only_the_zones_the_new_stroke_touches():
    previous = np.zeros((H, W), np.uint8)
    new = previous.copy()
    new[10:20, 10:20] = 255   # near the stroke
    new[60:70, 90:100] = 128  # far away: jitter of a global re-segmentation
    added = np.zeros((H, W), bool)
    added[15, 22:30] = True
    out = local_change(previous, new, added, reach=4.0)
    assert (out[10:20, 10:20] == 255).all()
    assert (out[60:70, 90:100] == 0).all()
    assert (local_change(previous, previous, added, 4.0) == previous).all()


def _two_disks():
    yy, xx = np.mgrid[:H, :W]
    img = np.empty((H, W, 3), np.float32)
    img[:] = (0.15, 0.45, 0.55)
    left = (yy - 40) ** 2 + (xx - 30) ** 2 <= 15 ** 2
    right = (yy - 40) ** 2 + (xx - 90) ** 2 <= 15 ** 2
    img[left] = (0.85, 0.2, 0.15)
    img[right] = (0.8, 0.75, 0.2)
    img += np.random.default_rng(0).normal(0, 0.02, img.shape).astype(np.float32)
    return np.clip(img, 0, 1), left, right


def test_a_second_stroke_changes_the_trimap_only_around_it():
    img, left, right = _two_disks()
    fg = np.zeros((H, W), bool)
    fg[38:42, 25:35] = True  # on the left disk
    bg = np.zeros((H, W), bool)
    bg[5:8, 5:115] = True
    session = trimap.StrokeSession()
    first = session.trimap(img, fg, bg)
    fg2 = fg.copy()
    fg2[38:42, 85:95] = True  # now the right disk too
    second = session.trimap(img, fg2, bg)
    fresh = trimap.from_region(img, None, fg=fg2, bg=bg)
    yy, xx = np.mgrid[:H, :W]
    core = (yy - 40) ** 2 + (xx - 90) ** 2 <= 8 ** 2
    assert (first[core] != 255).mean() > 0.5 and (second[core] == 255).all()  # the new stroke's zone changed
    # away from the new stroke, the first trimap stays as it was
    far = np.zeros((H, W), bool)
    far[:, :60] = True
    assert (second[far] == first[far]).all()
    assert (second[right] == fresh[right]).mean() > 0.95


def test_erasing_a_stroke_or_another_image_solves_afresh():
    img, left, right = _two_disks()
    fg = np.zeros((H, W), bool)
    fg[38:42, 25:35] = True
    fg[38:42, 85:95] = True
    bg = np.zeros((H, W), bool)
    bg[5:8, 5:115] = True
    session = trimap.StrokeSession()
    session.trimap(img, fg, bg)
    fewer = fg.copy()
    fewer[38:42, 85:95] = False  # undo the second stroke
    assert (session.trimap(img, fewer, bg) == trimap.from_region(img, None, fg=fewer, bg=bg)).all()
    other = img[:, ::-1].copy()
    assert (session.trimap(other, fg, bg) == trimap.from_region(other, None, fg=fg, bg=bg)).all()
