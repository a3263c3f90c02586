"""The trimap's distance transforms (trimap._distance, issue #23): OpenCV's speed with scipy's
numbers, and the nearest-pixel transform in pieces that report progress."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

pytest.importorskip("cv2")

from trimap import _distance  # noqa: E402
from trimap.band import boundary, unknown_band  # noqa: E402
from trimap.progress import reporting  # noqa: E402


def blobs(shape=(300, 420), seed=0) -> np.ndarray:
    """A ragged mask: smoothed noise above a threshold (holes, islands, long distances)."""
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.standard_normal(shape), 12) > 0.02


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distance_is_scipys_exactly(seed):
    mask = blobs(seed=seed)
    for free in (mask, ~mask, ~boundary(mask)):
        assert np.array_equal(_distance.distance(free), ndi.distance_transform_edt(free))


def test_distance_far_from_a_single_pixel_and_without_one():
    free = np.ones((900, 1100), bool)
    free[3, 5] = False  # distances up to 1400 px, the square roots of every integer below
    assert np.array_equal(_distance.distance(free), ndi.distance_transform_edt(free))
    full = np.ones((4, 5), bool)  # no False pixel: scipy's own answer, not OpenCV's 1.8e19
    assert np.array_equal(_distance.distance(full), ndi.distance_transform_edt(full))


def test_within_is_the_threshold_of_the_distance():
    seeds = ~blobs(seed=3)
    for reach in (0.0, 1.0, 2.5, 7.0710678118654755, 40.0):
        assert np.array_equal(_distance.within(seeds, reach), ndi.distance_transform_edt(~seeds) <= reach)


@pytest.mark.parametrize("shape", [(300, 420), (420, 300)])
def test_nearest_in_pieces_is_scipys_within_reach_and_reports(monkeypatch, shape):
    monkeypatch.setattr(_distance, "PIECE_PIXELS", 20_000)
    free = ~boundary(blobs(shape))
    reach = 23.5
    heard = []
    with reporting(heard.append):
        dist, idx = _distance.nearest(free, reach)
    want, want_idx = ndi.distance_transform_edt(free, return_indices=True)
    near = want <= reach
    assert np.array_equal(dist[near], want[near]) and np.array_equal(idx[:, near], want_idx[:, near])
    assert (dist[~near] > reach).all()
    assert len(heard) == 7 and heard[-1] == 1.0  # 126k pixels in pieces of 20k: 7 reports


def test_the_smart_band_is_the_same_in_pieces_and_says_how_far_it_is(monkeypatch):
    mask = blobs(seed=4)
    radius = np.where(mask, 3.0, 4.0 + 20.0 * np.linspace(0, 1, mask.shape[1])[None, :]).astype(np.float32)
    whole = unknown_band(mask, radius)
    monkeypatch.setattr(_distance, "PIECE_PIXELS", 15_000)
    heard = []
    with reporting(heard.append):
        pieces = unknown_band(mask, radius)
    assert np.array_equal(pieces, whole)
    assert len(heard) >= 9  # the boundary, each of the 9 pieces (fewer when two round alike)
