"""Background a rectangle holds: what a smooth run of colour joins to the outside.

A box says only where the subject lies, so its corners and sides hold background, and
some of it has colours the strip outside the box does not show: the paler sky near the
horizon, a dark hill in a corner (the rectangle bench's GT12: a bear filling a box that
leaves only a strip of blue sky outside). GrabCut learns the background from outside the
selection only, so it started such regions as foreground and kept them there (GT12: 14-40
SAD against 1.4 for the dataset's trimap).

Background continues the outside without an edge, while the subject is separated from it
by one. So a box's segmentation starts the pixels within a small *geodesic* distance of
the outside as "probably background" (:func:`near_outside`): the distance along the image
where every step costs the colour change it crosses beyond a noise floor, so a smooth
gradient or a blurred backdrop costs almost nothing however long, and the subject's
outline costs its contrast. GrabCut's colour models and graph cut take it from there
(rough.py), so a start that reaches into a low-contrast part of the subject is corrected
where its colours say so.

Measured with ``bench/rough_bench.py --inputs rect`` (docs/TRIMAP.md, "Session 17"). Not
used for a lasso: its outline follows the subject, the background inside it is a margin
the outside explains, and the same start made the lasso bench worse (70.14 -> 71.27).
"""
from __future__ import annotations

import numpy as np

# Colour steps (RGB in 0..1, Euclidean, between neighbouring pixels of the segmentation's
# copy of at most rough.MAX_SEGMENT_PIXELS) up to this size are noise or smooth shading and
# cost nothing.
STEP_FLOOR = 0.01
# Every step costs at least this (csgraph reads a zero weight as no edge; 2000 steps of flat
# colour reach as far as REACH).
STEP_MIN = 1e-5
# Pixels at most this far from the outside (summed steps beyond the floor) start as
# "probably background".
REACH = 0.02
# The four neighbour directions (each edge of the 8-connected grid once).
_STEPS = ((0, 1), (1, 0), (1, 1), (1, -1))


def geodesic_distance(img8: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """H x W float64 distance from ``seeds`` (H x W bool) over the 8-bit BGR/RGB image
    ``img8`` (H x W x 3), each step between 8-connected neighbours costing its colour
    change beyond ``STEP_FLOOR`` (inf where no seed is reachable, everywhere without
    seeds). Dijkstra on the pixel grid (scipy.sparse.csgraph): about 0.1 s at 120k pixels."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    h, w = seeds.shape
    if not seeds.any():
        return np.full((h, w), np.inf)
    img = np.asarray(img8, np.float32) / 255.0
    ids = np.arange(h * w).reshape(h, w)
    heads, tails, costs = [], [], []
    for dy, dx in _STEPS:
        ys, xs = slice(0, h - dy), slice(max(0, -dx), w - max(0, dx))
        ys2, xs2 = slice(dy, h), slice(max(0, dx), w + min(0, dx))
        step = np.linalg.norm(img[ys, xs] - img[ys2, xs2], axis=-1)
        heads.append(ids[ys, xs].ravel())
        tails.append(ids[ys2, xs2].ravel())
        costs.append((np.maximum(step - STEP_FLOOR, 0.0) + STEP_MIN).ravel())
    graph = sp.csr_matrix((np.concatenate(costs), (np.concatenate(heads), np.concatenate(tails))),
                          shape=(h * w, h * w))
    dist = dijkstra(graph, directed=False, indices=np.flatnonzero(seeds), min_only=True)
    return np.asarray(dist).reshape(h, w)


def near_outside(img8: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """Pixels not in ``outside`` (H x W bool) that the outside reaches through smooth colour:
    geodesic distance at most ``REACH`` (see :func:`geodesic_distance`); H x W bool."""
    return (geodesic_distance(img8, outside) <= REACH) & ~outside
