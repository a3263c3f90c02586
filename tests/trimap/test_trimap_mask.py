"""Tests for trimap.from_mask: distance band, smart radius, shift, soft masks, validation."""
import subprocess
import sys

import numpy as np
import pytest

import trimap
from trimap.band import boundary, default_band, roughness_and_softness, shift_edge


def disk_mask(h=96, w=96, cy=48.0, cx=48.0, r=30.0):
    y, x = np.mgrid[0:h, 0:w]
    return ((y - cy) ** 2 + (x - cx) ** 2) <= r * r


def radial(h=96, w=96, cy=48.0, cx=48.0):
    y, x = np.mgrid[0:h, 0:w]
    return np.sqrt((y - cy) ** 2 + (x - cx) ** 2)


def test_output_is_uint8_trimap_with_three_values():
    tri = trimap.from_mask(disk_mask(), band=4)
    assert tri.dtype == np.uint8 and tri.shape == (96, 96)
    assert set(np.unique(tri)) == {0, 128, 255}


def test_fixed_band_is_euclidean_distance_from_the_contour():
    rad = radial()
    tri = trimap.from_mask(disk_mask(r=30), band=5, adaptive=False)
    # Clearly inside / outside the band, in every direction (diagonals included):
    assert np.all(tri[np.abs(rad - 30) <= 3.5] == 128)
    assert np.all(tri[rad <= 24] == 255)
    assert np.all(tri[rad >= 36.5] == 0)


def test_band_is_round_not_square_at_corners():
    # A single-pixel mask: a Euclidean band is a disk, box erosion would give a square.
    m = np.zeros((41, 41), bool)
    m[20, 20] = True
    tri = trimap.from_mask(m, band=10, adaptive=False)
    assert tri[20, 31] == 128 or tri[20, 30] == 128  # along the axis, ~10 px away
    assert tri[20 - 9, 20 - 9] == 0  # the square's corner (12.7 px away) is not in the band


def test_bool_uint8_and_float_masks_agree():
    m = disk_mask()
    a = trimap.from_mask(m, band=4)
    b = trimap.from_mask(m.astype(np.uint8) * 255, band=4)
    c = trimap.from_mask(m.astype(np.float32), band=4)
    d = trimap.from_mask(m[:, :, None], band=4)
    assert np.array_equal(a, b) and np.array_equal(a, c) and np.array_equal(a, d)


def test_soft_values_become_unknown_even_without_band():
    m = np.zeros((40, 60), np.float32)
    m[:, 30:] = 1.0
    m[5:15, 5:15] = 0.3  # a soft patch far from the edge
    tri = trimap.from_mask(m, band=0)
    assert np.all(tri[5:15, 5:15] == 128)
    assert np.all(tri[20:, :29] == 0) and np.all(tri[:, 31:] == 255)
    # ...unless the soft range excludes those values.
    tri2 = trimap.from_mask(m, band=0, soft_range=(0.4, 0.6))
    assert np.all(tri2[5:15, 5:15] == 0)


def test_shift_grows_and_shrinks_the_foreground():
    m = disk_mask(r=20)
    rad = radial()
    grown = trimap.from_mask(m, band=0, shift=5)
    shrunk = trimap.from_mask(m, band=0, shift=-5)
    assert np.all(grown[rad <= 24.5] == 255) and np.all(grown[rad >= 26] == 0)
    assert np.all(shrunk[rad <= 14.5] == 255) and np.all(shrunk[rad >= 16] == 0)
    assert np.array_equal(shift_edge(m, 0), m)


def _ragged_and_straight():
    """Top half: straight horizontal edge. Bottom half: edge with thin strands."""
    h, w = 160, 120
    m = np.zeros((h, w), bool)
    m[:, :60] = True
    rng = np.random.default_rng(3)
    for y in range(90, 160, 3):  # strands poking out of the bottom half
        length = int(rng.integers(8, 30))
        m[y, 60 : 60 + length] = True
    return m


def test_smart_radius_widens_on_ragged_edges_and_narrows_on_smooth_ones():
    m = _ragged_and_straight()
    band = 6
    fixed = trimap.from_mask(m, band=band, adaptive=False)
    smart = trimap.from_mask(m, band=band, adaptive=True)
    width_smooth = (smart[10:60] == 128).sum(axis=1).mean()
    width_ragged = (smart[100:150] == 128).sum(axis=1).mean()
    width_fixed = (fixed[10:60] == 128).sum(axis=1).mean()
    assert width_smooth < width_fixed  # narrower than the fixed band on the smooth edge
    assert width_ragged > 2 * width_smooth  # and much wider where the edge is ragged
    rough, _ = roughness_and_softness(m, np.zeros_like(m), scale=8)
    edge = boundary(m)
    assert rough[edge & (np.arange(160)[:, None] < 60)].mean() < 1.3
    assert rough[edge & (np.arange(160)[:, None] > 100)].mean() > 2.0


def test_a_segmentations_ragged_edge_is_banded_inside_as_well():
    # The rough path's edge is a colour segmentation's: where it wiggles, partial alpha lies
    # inside it too, so the band reaches in there; a straight edge keeps its narrow inside.
    m = _ragged_and_straight()
    band = 6
    exact = trimap.from_mask(m, band=band)
    rough = trimap.from_mask(m, band=band, rough_inside=True)
    inside = lambda t, rows: ((t[rows] == 128) & m[rows]).sum(axis=1).mean()  # noqa: E731
    assert inside(rough, slice(10, 60)) == inside(exact, slice(10, 60))
    assert inside(rough, slice(100, 150)) > 2 * inside(exact, slice(100, 150))
    assert ((rough == 255) <= (exact == 255)).all()          # it only ever takes from the foreground
    assert ((rough == 0) == (exact == 0)).all()              # and leaves the outside as it was


def test_default_band_scales_with_image_size():
    assert default_band((320, 320)) < default_band((2000, 2000))
    assert default_band((10, 10)) >= trimap.band.MIN_DEFAULT_BAND
    m = disk_mask()
    assert np.array_equal(trimap.from_mask(m), trimap.from_mask(m, band=default_band(m.shape)))


def test_empty_and_full_masks_give_documented_results():
    assert np.all(trimap.from_mask(np.zeros((20, 30), bool)) == 0)
    assert np.all(trimap.from_mask(np.ones((20, 30), bool)) == 255)
    soft = np.full((20, 30), 0.5, np.float32)
    assert np.all(trimap.from_mask(soft) == 128)


def test_mask_touching_the_image_border_has_no_band_along_the_border():
    m = np.zeros((50, 50), bool)
    m[:, :25] = True  # runs off the left, top and bottom edges
    tri = trimap.from_mask(m, band=3, adaptive=False)
    assert np.all(tri[:, :20] == 255)


@pytest.mark.parametrize(
    "mask, kwargs, message",
    [
        (np.zeros((4, 4, 3)), {}, "2-D"),
        (np.zeros((0, 5)), {}, "empty"),
        (np.full((4, 4), 1.5), {}, "0..1"),
        (np.array([[np.nan, 0.0]]), {}, "NaN"),
        (np.full((4, 4), 300, np.int32), {}, "0..255"),
        (np.zeros((4, 4), bool), {"band": -1}, "band"),
        (np.zeros((4, 4), bool), {"band": "wide"}, "band"),
        (np.zeros((4, 4), bool), {"shift": float("inf")}, "shift"),
        (np.zeros((4, 4), bool), {"soft_range": (0.6, 0.9)}, "soft_range"),
        (np.zeros((4, 4), bool), {"transparency": True}, "image"),
        (np.zeros((4, 4), bool), {"image": np.zeros((5, 4, 3), np.uint8)}, "must match"),
        (None, {}, "required"),
    ],
)
def test_bad_input_raises_clear_value_error(mask, kwargs, message):
    with pytest.raises(ValueError, match=message):
        trimap.from_mask(mask, **kwargs)


def test_input_is_not_modified():
    m = disk_mask().astype(np.float32)
    before = m.copy()
    trimap.from_mask(m, band=3, shift=2)
    assert np.array_equal(m, before)


def test_import_is_light():
    code = "import sys, trimap; bad=[m for m in ('torch','segment_anything','skimage') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_tiny_masks_and_huge_bands_do_not_crash():
    assert trimap.from_mask(np.array([[True]])).tolist() == [[255]]
    row = np.array([[0, 1, 1, 0, 0]], np.uint8) * 255
    assert np.all(trimap.from_mask(row, band=trimap.MAX_BAND) == 128)
    assert trimap.from_mask(row, band=0).tolist() == [[0, 255, 255, 0, 0]]
    wide = trimap.from_mask(disk_mask(), band=trimap.MAX_BAND, image=np.zeros((96, 96, 3), np.uint8),
                            transparency=True)
    assert np.all(wide == 128)
    with pytest.raises(ValueError, match="at most 1024 pixels"):   # beyond: a slip, not a band
        trimap.from_mask(row, band=1e6)


def test_integer_zero_one_masks_are_read_as_labels():
    m = disk_mask()
    assert np.array_equal(trimap.from_mask(m.astype(np.uint8), band=3), trimap.from_mask(m, band=3))
    assert np.array_equal(trimap.from_mask(m.astype(np.int64), band=3), trimap.from_mask(m, band=3))


# -- image-aware band (from_mask(..., image=...)) ---------------------------------------

from trimap import evidence  # noqa: E402
from trimap.band import ADAPT_INNER, ADAPT_LO  # noqa: E402

FG_COLOUR = np.array((0.85, 0.7, 0.3), np.float32)
BG_COLOUR = np.array((0.15, 0.35, 0.75), np.float32)


def strand_scene(h=120, w=160, length=16):
    """An object (left) with thin strands of its colour sticking out; the coarse mask lost them."""
    alpha = np.zeros((h, w), np.float32)
    alpha[:, :70] = 1.0
    for y in range(10, 110, 6):
        alpha[y : y + 2, 70 : 70 + length] = 0.8
    bg = BG_COLOUR + np.random.default_rng(0).normal(0, 0.01, (h, w, 3)).astype(np.float32)
    img = alpha[..., None] * FG_COLOUR + (1 - alpha[..., None]) * bg
    return np.clip(img, 0, 1).astype(np.float32), alpha


def test_image_aware_band_follows_strands_the_mask_lost():
    img, alpha = strand_scene()
    mask = alpha >= 0.9
    strands = (alpha > 0) & (alpha < 1)
    only = trimap.from_mask(mask, band=6)
    aware = trimap.from_mask(mask, band=6, image=img)
    assert (only[strands] == 128).mean() < 0.4
    assert (aware[strands] == 128).mean() > 0.95
    # It is the image evidence that reaches along the strands: a featureless image
    # gives exactly the mask-only band.
    flat = trimap.from_mask(mask, band=6, image=np.full_like(img, 0.5))
    assert np.array_equal(flat, only)
    assert np.all((aware == 128) >= (only == 128))  # only ever widens the mask-only band
    # ...and only outside the mask: the interior keeps its narrow band.
    assert np.array_equal(aware[:, :70], only[:, :70])
    assert np.all(aware[:, :60] == 255) and np.all(aware[:, 100:] == 0)
    # Between two strand rows (10-11 and 16-17) the background stays background
    # beyond the narrow band and the strands' one-pixel halo.
    assert np.all(aware[13:15, 76:90] == 0)


def test_solid_edge_keeps_the_narrow_band():
    # A hard, high-contrast edge: no strand evidence, so the band is the narrow
    # geometric one: ADAPT_INNER band radii inside, ADAPT_LO outside.
    h, w, band = 60, 120, 10.0
    mask = np.zeros((h, w), bool)
    mask[:, :60] = True
    img = np.where(mask[..., None], FG_COLOUR, BG_COLOUR) * np.ones((h, w, 1), np.float32)
    img = np.clip(img + np.random.default_rng(1).normal(0, 0.01, img.shape), 0, 1).astype(np.float32)
    tri = trimap.from_mask(mask, band=band, image=img)
    assert np.array_equal(tri, trimap.from_mask(mask, band=band))
    cols = np.nonzero((tri == 128).all(axis=0))[0]
    assert cols.min() == 60 - 1 - int(ADAPT_INNER * band)  # inner boundary pixel 59, radius 5
    assert cols.max() == 60 + int(ADAPT_LO * band)  # outer boundary pixel 60, radius 6


def test_image_aware_band_does_not_swallow_a_solid_look_alike():
    img, alpha = strand_scene()
    # A broad foreground-coloured patch of background touching the object's edge
    # (a red blanket next to a red jumper): thick, so it is not a strand.
    img[40:80, 70:100] = FG_COLOUR * 0.6 + BG_COLOUR * 0.4
    aware = trimap.from_mask(alpha >= 0.9, band=4, image=img)
    only = trimap.from_mask(alpha >= 0.9, band=4)
    assert np.array_equal(aware[45:75], only[45:75])
    # Nothing reaches beyond REACH band radii from the mask.
    assert np.all(aware[:, 70 + int(evidence.REACH * 4) + 1 :] == 0)


def test_strand_evidence_is_thin_and_outside():
    img, alpha = strand_scene()
    mask = alpha >= 0.9
    ev = evidence.strand_evidence(img, mask, band=6.0)
    assert ev.dtype == bool and ev.shape == mask.shape
    assert not (ev & mask).any()
    strands = (alpha > 0) & (alpha < 1)
    assert ev[strands].mean() > 0.5 and not ev[~strands].any()
    assert not evidence.strand_evidence(img, np.zeros_like(mask), band=6.0).any()
    assert not evidence.strand_evidence(img, mask, band=0).any()


def test_image_switch_and_fixed_band():
    img, alpha = strand_scene()
    m = alpha >= 0.9
    only = trimap.from_mask(m, band=4)
    # image_aware=False (or no image) gives the mask-only band.
    assert np.array_equal(trimap.from_mask(m, band=4, image=img, image_aware=False), only)
    # A fixed band keeps its exact radius and the image only adds to it; band=0 stays soft-only.
    fixed = trimap.from_mask(m, band=4, adaptive=False)
    fixed_img = trimap.from_mask(m, band=4, adaptive=False, image=img)
    assert np.all((fixed_img == 128) >= (fixed == 128))
    assert np.array_equal(trimap.from_mask(m, band=0, image=img), trimap.from_mask(m, band=0))


def test_image_aware_accepts_grey_and_uint8_images():
    img, alpha = strand_scene(h=60, w=90)
    mask = alpha >= 0.9
    a = trimap.from_mask(mask, band=4, image=(img * 255).astype(np.uint8))
    b = trimap.from_mask(mask, band=4, image=img.mean(axis=2))
    assert set(np.unique(a)) <= {0, 128, 255} and set(np.unique(b)) <= {0, 128, 255}
    assert (a == 128).sum() >= (trimap.from_mask(mask, band=4) == 128).sum()


def test_large_photos_are_examined_on_a_reduced_copy(monkeypatch):
    img, alpha = strand_scene(h=120, w=200, length=24)
    mask = alpha >= 0.9
    strands = (alpha > 0) & (alpha < 1)
    full = trimap.from_mask(mask, band=6, image=img)
    monkeypatch.setattr(evidence, "WORK_SIDE", 100)  # 2 x 2 block averaging
    reduced = trimap.from_mask(mask, band=6, image=img)
    only = trimap.from_mask(mask, band=6)
    assert (reduced[strands] == 128).mean() > 0.9 and (full[strands] == 128).mean() > 0.9
    assert np.all((reduced == 128) >= (only == 128)) and np.array_equal(reduced[:, :70], only[:, :70])
    assert np.all(reduced[:, 70 + int(evidence.REACH * 6) + 1 :] == 0)
