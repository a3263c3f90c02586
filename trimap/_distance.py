"""Euclidean distance transforms for the trimap: fast, exact, and reporting progress.

scipy's ``ndimage.distance_transform_edt`` took 1.4-1.8 s per call at 24 MP on the
2-core reference machine, with no way to report progress inside it: the longest silent
stretches of a 24 MP refine from a rough selection (issue #23). OpenCV's exact transform
(``DIST_MASK_PRECISE``, Felzenszwalb-Huttenlocher) took 0.15 s, but returns float32 square
roots, up to 3.7e-4 px off at 1500 px, which flips ``distance <= reach`` thresholds for a
few pixels. A true distance is the square root of an integer, so :func:`distance` rounds
OpenCV's square back to that integer and takes the root in float64: the same numbers as
scipy's (equal on every pixel under ``EXACT_BELOW`` px of the dev photos' masks at 24 MP;
one pixel at 1566 px was off by 3e-4). Every threshold of the trimap is below that.

:func:`nearest` is the one transform that needs the nearest pixel itself (the smart
radius reads the radius there): scipy's, run in pieces along the longer side so that
progress is reported between them.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np
from scipy import ndimage as ndi

from .progress import report

#: distances below this many pixels are scipy's exactly (measured, see the module)
EXACT_BELOW = 1000.0
#: own pixels of one piece of :func:`nearest`, which adds its margins (24 MP, GT04's lasso:
#: 5 pieces of 9.5 MP with them, 0.5-0.9 s each here; 8 MP pieces of 12.7 MP took 1.2-1.7 s)
PIECE_PIXELS = 5_000_000


def distance(free: np.ndarray) -> np.ndarray:
    """Distance (H x W float64) of every pixel to the nearest ``False`` pixel of ``free``,
    as ``scipy.ndimage.distance_transform_edt(free)`` gives it (see ``EXACT_BELOW``)."""
    import cv2

    free = np.ascontiguousarray(free, dtype=bool)
    if free.all():  # no False pixel: OpenCV's answer is 1.8e19 everywhere; scipy's is its own
        return ndi.distance_transform_edt(free)
    d = cv2.distanceTransform(free.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)
    np.square(d, out=d)
    np.rint(d, out=d)  # the true squared distance is an integer
    return np.sqrt(d, out=d)


def within(seeds: np.ndarray, reach: float) -> np.ndarray:
    """H x W bool: pixels at most ``reach`` px from a ``True`` pixel of ``seeds``."""
    return distance(~np.asarray(seeds, bool)) <= reach


def nearest(free: np.ndarray, reach: float) -> Tuple[np.ndarray, np.ndarray]:
    """``(distance, indices)`` as ``distance_transform_edt(free, return_indices=True)``
    gives them, for every pixel whose distance is at most ``reach``; beyond it the distance
    is only known to exceed ``reach`` (the indices are any False pixel's).

    Computed in pieces along the longer side, each with a margin of ``reach`` so that
    every pixel's nearest False pixel within ``reach`` lies in its piece; :func:`report`
    says the share done after each piece.
    """
    free = np.asarray(free, bool)
    axis = 1 if free.shape[1] >= free.shape[0] else 0
    n = free.shape[axis]
    pieces = max(1, min(n, math.ceil(free.size / PIECE_PIXELS)))
    margin = int(math.ceil(reach)) + 1
    if pieces == 1 or margin >= n:
        return ndi.distance_transform_edt(free, return_indices=True)
    dist = np.full(free.shape, np.inf)
    idx = np.zeros((2,) + free.shape, np.int32)
    for i in range(pieces):
        a, b = i * n // pieces, (i + 1) * n // pieces
        lo, hi = max(0, a - margin), min(n, b + margin)
        window = free[:, lo:hi] if axis == 1 else free[lo:hi]
        if not window.all():  # else nothing within reach (and scipy's numbers mean nothing)
            d, j = ndi.distance_transform_edt(window, return_indices=True)
            j[axis] += lo
            own = (slice(None), slice(a - lo, b - lo)) if axis == 1 else (slice(a - lo, b - lo), slice(None))
            out = (slice(None), slice(a, b)) if axis == 1 else (slice(a, b), slice(None))
            dist[out] = d[own]
            idx[(slice(None),) + out] = j[(slice(None),) + own]
        report((i + 1) / pieces)
    return dist, idx
