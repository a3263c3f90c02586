"""Transparent and see-through regions (glass, smoke, veils).

Two tools: :func:`mark_unknown` lets the user force a region to unknown (a
"this is glass" brush or lasso), and :func:`transparency_widen` grows the
unknown band into pixels whose colour says they may be partly transparent:
foreground pixels that look like the nearby background (the background shows
through) and background pixels that look like the nearby foreground (wisps).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage as ndi

from ._distance import within
from ._validate import UNKNOWN, as_image, as_mask, as_trimap, check_same_shape
from ._smooth import smooth

# How far (in band radii) from the boundary the colour cue may reach, and the
# Gaussian scale (in band radii) of the local colour models.
REACH = 8.0
MODEL_SCALE = 4.0
# A pixel is ambiguous when it is at most this much farther (colour distance
# ratio) from the other side's local colour than from its own side's.
AMBIGUITY = 1.0
# Colour differences below this (RGB in 0..1, Euclidean) are noise, not evidence.
MIN_CONTRAST = 0.08
# Minimum Gaussian support of a side's colour model.
MIN_SUPPORT = 1e-4
# A background pixel is odd when it is this many local standard deviations from the local background colour...
OUTLIER = 2.0
# ...and not much farther from the foreground colour than from the background colour.
FAINT = 1.5


def mark_unknown(trimap: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Return a copy of ``trimap`` with ``region`` (mask, >= 0.5 is inside) set to unknown.

    Use it for glass, smoke and other see-through areas the user marks by hand.
    """
    tri = as_trimap(trimap, "trimap")
    reg = as_mask(region, "region") >= 0.5
    check_same_shape(tri.shape, reg, "region", "trimap")
    out = tri.copy()
    out[reg] = UNKNOWN
    return out


def _local_stats(img: np.ndarray, weight: np.ndarray, sigma: float):
    """Gaussian-weighted mean colour, colour spread and support of the pixels in ``weight``."""
    wf = weight.astype(np.float32)
    w = smooth(wf, sigma)
    denom = np.maximum(w, 1e-6)[..., None]
    mean = np.empty_like(img)
    sq = np.empty_like(img)
    for c in range(img.shape[2]):
        mean[..., c] = smooth(img[..., c] * wf, sigma)
        sq[..., c] = smooth(img[..., c] ** 2 * wf, sigma)
    mean /= denom
    var = np.maximum(sq / denom - mean**2, 0.0).sum(axis=2)
    return mean, np.sqrt(var), w


def transparency_widen(
    image: np.ndarray,
    hard: np.ndarray,
    unknown: np.ndarray,
    band: float,
    reach: Optional[float] = None,
) -> np.ndarray:
    """Grow ``unknown`` where the image suggests partial transparency.

    Args:
        image: H x W x 3 image (any dtype :func:`trimap._validate.as_image` takes).
        hard: H x W bool, the binary foreground.
        unknown: H x W bool, the current unknown region (the band).
        band: the band radius in pixels (sets the scale of the colour models).
        reach: how far from the unknown band the cue may act, in pixels
            (default ``REACH * band``).

    Returns a new H x W bool unknown mask (a superset of ``unknown``). Only
    ambiguous pixels connected to the existing band are added, so a patch of
    background that happens to share the foreground's colour far away is left alone.
    """
    img = as_image(image)
    hard = np.asarray(hard, bool)
    unknown = np.asarray(unknown, bool)
    check_same_shape(hard.shape, img, "image", "mask")
    check_same_shape(hard.shape, unknown, "unknown", "mask")
    if not unknown.any() or band <= 0:
        return unknown.copy()
    reach = REACH * band if reach is None else float(reach)
    sigma = max(2.0, MODEL_SCALE * band)

    sure_fg = hard & ~unknown
    sure_bg = ~hard & ~unknown
    f_mean, f_std, f_w = _local_stats(img, sure_fg, sigma)
    b_mean, b_std, b_w = _local_stats(img, sure_bg, sigma)
    d_f = np.linalg.norm(img - f_mean, axis=2)
    d_b = np.linalg.norm(img - b_mean, axis=2)
    contrast = np.linalg.norm(f_mean - b_mean, axis=2)
    has_b = b_w > MIN_SUPPORT
    # Background-side test needs both colour models, and that they differ.
    has_fb = has_b & (f_w > MIN_SUPPORT) & (contrast > MIN_CONTRAST)

    zone = within(unknown, reach)
    # Background that the local background model does not explain and that
    # leans towards the foreground colour: a faint strand, a wisp.
    odd_bg = ~hard & has_fb & (d_b > np.maximum(MIN_CONTRAST, OUTLIER * b_std)) & (d_f * AMBIGUITY < d_b * FAINT)
    # Foreground that the background model explains: the background shows
    # through (glass, veil). The foreground model is no help here, because near
    # glass it is made of glass pixels itself.
    see_through = hard & has_b & (d_b <= np.maximum(MIN_CONTRAST, OUTLIER * b_std))
    candidate = zone & (odd_bg | see_through)

    grown = unknown | candidate
    labels, n = ndi.label(grown, structure=np.ones((3, 3), bool))
    if n == 0:
        return unknown.copy()
    touching = np.zeros(n + 1, bool)
    touching[np.unique(labels[unknown])] = True
    touching[0] = False
    return touching[labels]
