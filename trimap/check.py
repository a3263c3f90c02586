"""Checks on a trimap before the refine: what the matte cannot get right on its own.

The classical prior explains every unknown pixel as a mix of the known colours nearby.
Where a large unknown region holds colours that neither the known foreground nor the
known background contains (a flag held by a plush toy, all inside a wide band), it has
nothing to explain them with and tends to make the whole region transparent. Such a
region is found here so the front ends can say so ("paint foreground or background
here") instead of returning a silently wrong matte.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from scipy import ndimage as ndi

from ._validate import BG, FG, UNKNOWN, as_image, as_trimap, check_same_shape

# A colour is explained when a known pixel of either side lies within this RGB distance
# (0..1 scale; about 20 levels of 255 in each channel).
EXPLAINED_DISTANCE = 0.08
# Regions smaller than this share of the image are left to the matte (and thin ones,
# mixed pixels along strands, are removed by an opening first).
MIN_SHARE = 0.01
OPENING = 3
# Colours are compared on at most this many samples per side and a grid of unknown pixels.
SAMPLES = 20_000
GRID_PIXELS = 250_000


def unexplained_region(image: object, trimap: object) -> Optional[Tuple[int, int, int, int]]:
    """The largest unknown region whose colours no known pixel explains, or ``None``.

    Returns its bounding box ``(x0, y0, x1, y1)`` in pixels (exclusive ends) when it
    covers at least ``MIN_SHARE`` of the image.
    """
    from scipy.spatial import cKDTree

    image, trimap = np.asarray(image), np.asarray(trimap)
    check_same_shape(trimap.shape[:2], image, "image", "trimap")
    h, w = trimap.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(h * w / GRID_PIXELS))))
    # Sampled before the conversions (pixel by pixel, so the same values): at 24 MP
    # converting the whole image first took 1.7 s before every refine (issue #23).
    small_img, small_tri = as_image(image[::step, ::step]), as_trimap(trimap[::step, ::step])
    unknown = small_tri == UNKNOWN
    if not unknown.any():
        return None
    rng = np.random.default_rng(0)
    dist = np.full(int(unknown.sum()), np.inf)
    colours = small_img[unknown]
    for value in (FG, BG):
        known = small_img[small_tri == value]
        if len(known) == 0:
            continue
        if len(known) > SAMPLES:
            known = known[rng.choice(len(known), SAMPLES, replace=False)]
        d, _ = cKDTree(known).query(colours, k=1, distance_upper_bound=4 * EXPLAINED_DISTANCE)
        dist = np.minimum(dist, d)
    odd = np.zeros(small_tri.shape, bool)
    odd[unknown] = dist > EXPLAINED_DISTANCE
    odd = ndi.binary_opening(odd, iterations=max(1, OPENING // step))
    labels, n = ndi.label(odd)
    if n == 0:
        return None
    sizes = ndi.sum(odd, labels, index=np.arange(1, n + 1))
    k = int(np.argmax(sizes))
    if sizes[k] * step * step < MIN_SHARE * h * w:
        return None
    ys, xs = np.nonzero(labels == k + 1)
    return (int(xs.min()) * step, int(ys.min()) * step,
            min(w, (int(xs.max()) + 1) * step), min(h, (int(ys.max()) + 1) * step))


def describe_unexplained(box: Tuple[int, int, int, int]) -> str:
    """The message the front ends show for a region found by :func:`unexplained_region`."""
    x0, y0, x1, y1 = box
    return (f"The unknown area around x {x0}-{x1}, y {y0}-{y1} has colours that neither the "
            "foreground nor the background shows elsewhere; the matte may turn it transparent. "
            "Paint foreground or background there.")
