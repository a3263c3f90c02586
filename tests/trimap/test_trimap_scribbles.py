"""Tests for trimap.from_scribbles and stroke rasterising."""
import numpy as np
import pytest

import trimap
import trimap.scribbles as scribbles
from trimap import strokes_to_mask


def two_region_image(h=60, w=100, edge=70, seed=0):
    """Dark red on the left of a wavy edge near x=``edge``, light blue on the right, plus noise."""
    y, x = np.mgrid[0:h, 0:w]
    boundary = edge + 4 * np.sin(y / 6.0)
    fg = x < boundary
    img = np.where(fg[..., None], [0.55, 0.1, 0.1], [0.6, 0.8, 0.95]).astype(np.float32)
    img += np.random.default_rng(seed).normal(0, 0.02, img.shape).astype(np.float32)
    return np.clip(img, 0, 1), fg


def strokes(h=60, w=100):
    fg = np.zeros((h, w), bool)
    bg = np.zeros((h, w), bool)
    fg[10:50, 5:8] = True  # far left
    bg[10:50, 90:93] = True  # right, close to the edge
    return fg, bg


def test_propagation_follows_the_image_edge_not_the_stroke_midpoint():
    img, truth = two_region_image()
    fg, bg = strokes()
    tri = trimap.from_scribbles(img, fg, bg, band=2)
    assert tri.dtype == np.uint8 and tri.shape == truth.shape
    # The strokes' midpoint is x ~ 48; the colour edge is at x ~ 70 +- 4.
    assert np.all(tri[:, 50:62] == 255)
    from scipy import ndimage as ndi

    far = ndi.distance_transform_edt(truth) + ndi.distance_transform_edt(~truth) > 6
    labelled = np.where(tri == 255, True, np.where(tri == 0, False, truth))
    assert (labelled == truth)[far].mean() > 0.99
    # The band straddles the true edge on every row.
    edge_x = np.argmin(truth, axis=1)
    for row, x in enumerate(edge_x):
        assert (tri[row, max(0, x - 3) : x + 3] == 128).any(), row


def test_strokes_win_over_propagation():
    img, truth = two_region_image()
    fg, bg = strokes()
    fg[20:25, 80:85] = True  # the user insists this patch of "background" is foreground
    bg[40:44, 20:24] = True  # and this patch of "foreground" is background
    unk = np.zeros_like(fg)
    unk[0:5, 0:10] = True  # and this corner is unknown (hair, glass)
    tri = trimap.from_scribbles(img, fg, bg, unknown=unk, band=2)
    assert np.all(tri[20:25, 80:85] == 255)
    assert np.all(tri[40:44, 20:24] == 0)
    assert np.all(tri[0:5, 0:10] == 128)


def test_pixel_painted_fg_and_bg_becomes_unknown():
    img, _ = two_region_image()
    fg, bg = strokes()
    fg[30, 10:20] = True
    bg[30, 15:25] = True
    tri = trimap.from_scribbles(img, fg, bg, band=1)
    assert np.all(tri[30, 15:20] == 128)


def test_uint8_image_and_uint8_strokes_work():
    img, _ = two_region_image()
    fg, bg = strokes()
    a = trimap.from_scribbles((img * 255).astype(np.uint8), fg.astype(np.uint8) * 255, bg.astype(np.uint8) * 255, band=2)
    b = trimap.from_scribbles(img, fg, bg, band=2)
    assert (a == b).mean() > 0.98


def test_downscaled_walker_path(monkeypatch):
    monkeypatch.setattr(scribbles, "MAX_WALKER_PIXELS", 1500)  # force the downscaled path on 60x100
    img, truth = two_region_image()
    fg, bg = strokes()
    tri = trimap.from_scribbles(img, fg, bg, band=3)
    assert tri.shape == truth.shape
    assert np.all(tri[:, 20:55] == 255) and np.all(tri[:, 85:] == 0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fg": np.zeros((60, 100), bool)}, "foreground stroke"),
        ({"bg": np.zeros((60, 100), bool)}, "background stroke"),
        ({"fg": np.ones((50, 100), bool)}, "fg has size"),
        ({"unknown": np.ones((60, 99), bool)}, "unknown has size"),
        ({"image": np.zeros((60, 100, 5))}, "image"),
        ({"band": -2}, "band"),
    ],
)
def test_bad_input_raises_clear_value_error(kwargs, message):
    img, _ = two_region_image()
    fg, bg = strokes()
    args = {"image": img, "fg": fg, "bg": bg}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        trimap.from_scribbles(**args)


def test_strokes_to_mask_clips_strokes_outside_the_image():
    m = strokes_to_mask((20, 30), [[(-10, 5), (40, 5)], [(100, 100), (120, 130)]], radius=1)
    assert m.shape == (20, 30) and m.dtype == bool
    assert np.all(m[5, :]) and not m[10:, :].any()
    assert not strokes_to_mask((20, 30), [[(-5, -5)]], radius=2).any()  # entirely outside: empty
    dot = strokes_to_mask((20, 30), [[(15, 10)]], radius=3)
    assert dot[10, 15] and dot[10, 18] and not dot[10, 19]


@pytest.mark.parametrize("bad", [[[(1, 2, 3)]], [[]], [[(1, float("nan"))]]])
def test_strokes_to_mask_rejects_malformed_points(bad):
    with pytest.raises(ValueError, match="stroke 0"):
        strokes_to_mask((10, 10), bad)


def test_flat_image_falls_back_to_nearest_stroke():
    img = np.full((20, 30, 3), 0.5, np.float32)  # no edges at all
    fg = np.zeros((20, 30), bool)
    bg = np.zeros((20, 30), bool)
    fg[:, 0:2] = True
    bg[:, 28:30] = True
    tri = trimap.from_scribbles(img, fg, bg, band=1)
    assert np.all(tri[:, :3] == 255) and np.all(tri[:, 27:] == 0)
    assert np.all(tri[:, 14:16] == 128)  # halfway between the strokes is uncertain


@pytest.mark.parametrize("size", [(12, 16), (400, 300)])
def test_strokes_covering_every_pixel_give_a_trimap_not_an_error(size):
    # The random walker has nothing to solve then (skimage returns its labels).
    h, w = size
    img = np.random.default_rng(0).random((h, w, 3)).astype(np.float32)
    fg = np.zeros((h, w), bool)
    fg[:, : w // 2] = True
    bg = ~fg
    tri = trimap.from_scribbles(img, fg, bg, band=1)
    assert tri.shape == (h, w)
    assert np.all(tri[fg] == 255) and np.all(tri[bg] == 0)
