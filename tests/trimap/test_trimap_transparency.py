"""Tests for transparent regions: the all-unknown brush and the image-driven widening."""
import numpy as np
import pytest

import trimap
from trimap import mark_unknown, transparency_widen


def test_mark_unknown_sets_the_region_and_leaves_the_input_alone():
    tri = np.zeros((20, 30), np.uint8)
    tri[:, 15:] = 255
    region = np.zeros((20, 30), bool)
    region[5:10, 10:20] = True
    out = mark_unknown(tri, region)
    assert np.all(out[5:10, 10:20] == 128)
    assert np.all(out[~region] == tri[~region])
    assert tri.max() == 255 and (tri == 128).sum() == 0  # input untouched


def test_mark_unknown_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="region has size"):
        mark_unknown(np.zeros((20, 30), np.uint8), np.zeros((30, 20), bool))


def glass_scene():
    """Red opaque object on a textured green background; its right part is 'glass'
    (shows the background colour), touching the object's boundary."""
    h, w = 80, 120
    rng = np.random.default_rng(1)
    img = np.empty((h, w, 3), np.float32)
    img[:] = (0.2, 0.6, 0.25)
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    mask = np.zeros((h, w), bool)
    mask[20:60, 20:100] = True  # the user's selection covers object + glass
    img[20:60, 20:70] = (0.8, 0.1, 0.1)  # opaque part
    img[20:60, 70:100] = (0.25, 0.62, 0.3)  # glass: background shows through
    img[2:8, 2:8] = (0.8, 0.1, 0.1)  # a red patch far from the object: not transparency
    return np.clip(img, 0, 1), mask


def test_widening_reaches_into_see_through_foreground():
    img, mask = glass_scene()
    plain = trimap.from_mask(mask, band=3, adaptive=False)
    wide = trimap.from_mask(mask, band=3, adaptive=False, image=img, transparency=True)
    glass = np.zeros_like(mask)
    glass[24:56, 74:96] = True
    opaque = np.zeros_like(mask)
    opaque[26:54, 26:60] = True
    assert (plain[glass] == 128).mean() < 0.2
    assert (wide[glass] == 128).mean() > 0.8  # the glass became unknown
    assert np.all(wide[opaque] == 255)  # the opaque part did not
    assert np.all(wide[2:8, 2:8] == 0)  # a look-alike far away is left alone
    assert np.all((wide == 128) >= (plain == 128))  # only ever widens


def test_transparency_widen_validates_sizes():
    img, mask = glass_scene()
    with pytest.raises(ValueError):
        transparency_widen(img[:-1], mask, mask, 3.0)
    out = transparency_widen(img, mask, np.zeros_like(mask), 3.0)
    assert not out.any()
