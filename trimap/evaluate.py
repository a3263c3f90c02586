"""Measuring generated trimaps against ground truth.

Used by ``bench/trimap_bench.py`` (and available to ``diffmatte eval``): simulate
the coarse mask a user would start from, then score a trimap by how much of the
true transition it leaves unknown and how large its unknown region is.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np
from scipy import ndimage as ndi

from ._validate import UNKNOWN, as_mask, check_same_shape


def disk(radius: int) -> np.ndarray:
    """A boolean disk structuring element of the given radius."""
    r = int(radius)
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    return (x * x + y * y) <= r * r


def coarse_mask_from_alpha(
    alpha: np.ndarray,
    jitter: float = 3.0,
    strand: float = 2.0,
    seed: int = 0,
    scale: Optional[float] = None,
) -> np.ndarray:
    """Simulate a coarse segmentation mask (as SAM or a quick selection gives).

    Steps: threshold ground-truth ``alpha`` at 0.5; knock out strands thinner
    than about ``2 * strand`` pixels (morphological opening with a disk); move the
    boundary by a smooth random displacement of up to ``jitter`` pixels.
    ``jitter`` and ``strand`` are in pixels of a 512-pixel image; ``scale``
    (default ``max(1, max(H, W) / 512)``) multiplies them, because SAM predicts
    its mask at 256 x 256 and upsamples, so its detail loss grows with resolution.

    Returns an H x W bool mask. Deterministic for a given ``seed``.
    """
    a = as_mask(alpha, "alpha")
    if scale is None:
        scale = max(1.0, max(a.shape) / 512.0)
    hard = a >= 0.5
    r_open = int(round(strand * scale))
    if r_open > 0:
        hard = ndi.binary_opening(hard, disk(r_open))
    amp = float(jitter) * scale
    if amp <= 0 or not hard.any() or hard.all():
        return hard
    rng = np.random.default_rng(seed)
    noise = ndi.gaussian_filter(rng.standard_normal(a.shape).astype(np.float32), 8.0 * scale)
    noise *= amp / max(float(np.abs(noise).max()), 1e-6)
    # Signed distance to the contour, positive outside the mask.
    signed = ndi.distance_transform_edt(~hard) - ndi.distance_transform_edt(hard)
    return signed < noise


def trimap_scores(trimap: np.ndarray, alpha: np.ndarray, reference: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Score ``trimap`` against ground-truth ``alpha``.

    Returns a dict with:
      ``coverage``: share of transition pixels (0 < alpha < 1) that are unknown;
      ``wrong_fg`` / ``wrong_bg``: share of transition pixels labelled fg / bg;
      ``unknown_frac``: unknown share of the image;
      ``area_ratio``: unknown area / unknown area of ``reference`` (if given);
      ``coverage_visible``: like ``coverage`` for 0.05 <= alpha <= 0.95 only
      (the part of the transition one can see; alpha of 1/255 is invisible);
      ``forced_sad``: SAD (thousands) the trimap alone forces, because the engine
      copies fg = 1 / bg = 0 through: sum of (1 - alpha) over fg and alpha over bg;
      ``hard_error``: pixels labelled fg with alpha < 0.5 or bg with alpha >= 0.5,
      as a share of the image (gross errors no matting can fix).
    """
    t = np.asarray(trimap)
    a = as_mask(alpha, "alpha")
    check_same_shape(a.shape, t, "trimap", "alpha")
    unk = t == UNKNOWN
    trans = (a > 0) & (a < 1)
    n_trans = max(int(trans.sum()), 1)
    visible = (a >= 0.05) & (a <= 0.95)
    a64 = a.astype(np.float64)
    forced = (1.0 - a64)[t == 255].sum() + a64[t == 0].sum()
    out = {
        "coverage": float((trans & unk).sum()) / n_trans,
        "wrong_fg": float((trans & (t == 255)).sum()) / n_trans,
        "wrong_bg": float((trans & (t == 0)).sum()) / n_trans,
        "coverage_visible": float((visible & unk).sum()) / max(int(visible.sum()), 1),
        "forced_sad": float(forced / 1000.0),
        "unknown_frac": float(unk.mean()),
        "hard_error": float((((t == 255) & (a < 0.5)) | ((t == 0) & (a >= 0.5))).mean()),
    }
    if reference is not None:
        ref = np.asarray(reference)
        check_same_shape(a.shape, ref, "reference", "alpha")
        n_ref = int((ref == UNKNOWN).sum())
        out["area_ratio"] = float(unk.sum()) / n_ref if n_ref else math.inf
    return out


def sad(alpha: np.ndarray, gt: np.ndarray) -> float:
    """Sum of absolute differences over the whole image, in thousands (no trimap; the
    Composition-1k metric inside the unknown region is ``diffmatte.evaluate.metrics.unknown_sad``)."""
    a = as_mask(alpha, "alpha")
    g = as_mask(gt, "gt")
    check_same_shape(g.shape, a, "alpha", "gt")
    return float(np.abs(a.astype(np.float64) - g).sum() / 1000.0)


def simulated_unknown_brush(alpha: np.ndarray, density: float = 0.8, radius: float = 6.0, scale: Optional[float] = None) -> np.ndarray:
    """Simulate a user painting "definitely unknown" over see-through areas.

    The brushed region is where, in a Gaussian window of ``radius`` pixels (at
    512 px, scaled like :func:`coarse_mask_from_alpha`), at least ``density`` of
    the ground-truth pixels are partial (0.02 < alpha < 0.98), opened with a
    disk of the same radius so only broad areas remain: glass bodies, smoke and
    dense fur, not thin fringes. Used by the benchmark to measure the
    mask + brush workflow; it reads the ground truth, as a user reads the photo.
    """
    from ._smooth import smooth

    a = as_mask(alpha, "alpha")
    if scale is None:
        scale = max(1.0, max(a.shape) / 512.0)
    partial = ((a > 0.02) & (a < 0.98)).astype(np.float32)
    r = max(1, int(round(radius * scale)))
    region = smooth(partial, radius * scale) > density
    return ndi.binary_opening(region, disk(r))
