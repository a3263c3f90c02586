"""Composition-1k matting metrics: SAD, MSE, Grad and Conn inside the unknown region.

Conventions (spec section 5, DIM evaluation code):
- ``pred`` and ``gt`` are alphas in [0, 1] (uint8 inputs are divided by 255);
  the region is ``trimap == 128`` (or 0.5 for a {0, 0.5, 1} trimap).
- SAD = sum |pred - gt| / 1000.
- MSE = sum (pred - gt)^2 / #unknown (callers usually print it x 1e3).
- Grad = sum (|grad pred| - |grad gt|)^2 / 1000, with Gaussian-derivative filters
  (sigma 1.4, half-size from epsilon 0.01, kernel L2-normalised, 'nearest' borders).
- Conn = sum |phi(pred) - phi(gt)| / 1000 over thresholds 0, 0.1, ..., 1 with the
  largest 4-connected component of the intersection, d >= 0.15.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from .. import trimap_codes as tc

METRICS = ("sad", "mse", "grad", "conn")


def _as_unit(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D map, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    a = a.astype(np.float64)
    if a.size and (a.min() < -1e-6 or a.max() > 1 + 1e-6):
        raise ValueError(f"{name} values must lie in [0, 1] (or be uint8/uint16), got [{a.min()}, {a.max()}]")
    return a


def unknown_region(trimap: np.ndarray) -> np.ndarray:
    """Boolean unknown region of a 0/128/255 (uint8) or {0, 0.5, 1} (float) trimap."""
    t = np.asarray(trimap)
    if t.ndim == 3:
        t = t[..., 0]
    if t.dtype == np.uint8 or (t.size and t.max() > 1.0 + 1e-6):
        return (t > 0) & (t < 255)
    return tc.unknown(t)


def _prepare(pred, gt, trimap):
    p = _as_unit(pred, "pred")
    g = _as_unit(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred shape {p.shape} differs from ground truth {g.shape}")
    u = unknown_region(trimap)
    if u.shape != g.shape:
        raise ValueError(f"trimap shape {u.shape} differs from ground truth {g.shape}")
    return p, g, u


def unknown_sad(pred, gt, trimap) -> float:
    """Sum of absolute differences in the unknown region, in thousands (the metric "sad";
    ``trimap.evaluate.sad`` is another measure: the whole image, no trimap)."""
    p, g, u = _prepare(pred, gt, trimap)
    return float(np.abs(p - g)[u].sum() / 1000.0)


def mse(pred, gt, trimap) -> float:
    """Mean squared error over unknown pixels (0 when there are none)."""
    p, g, u = _prepare(pred, gt, trimap)
    n = int(u.sum())
    return float(((p - g) ** 2)[u].sum() / n) if n else 0.0


@lru_cache(maxsize=8)
def _gauss_deriv_kernels(sigma: float, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    half = int(np.ceil(sigma * np.sqrt(-2 * np.log(np.sqrt(2 * np.pi) * sigma * epsilon))))
    r = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-r ** 2 / (2 * sigma ** 2)) / (sigma * np.sqrt(2 * np.pi))
    dg = -r * g / sigma ** 2
    hx = np.outer(g, dg)  # rows: smoothing along y; columns: derivative along x
    hx /= np.sqrt((hx ** 2).sum())
    return hx, hx.T.copy()


def gradient_magnitude(a: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """|grad a| with the DIM Gaussian-derivative filters."""
    hx, hy = _gauss_deriv_kernels(float(sigma))
    gx = ndi.convolve(a, hx, mode="nearest")
    gy = ndi.convolve(a, hy, mode="nearest")
    return np.sqrt(gx ** 2 + gy ** 2)


def grad(pred, gt, trimap, sigma: float = 1.4) -> float:
    """Gradient error in the unknown region, in thousands."""
    p, g, u = _prepare(pred, gt, trimap)
    d = gradient_magnitude(p, sigma) - gradient_magnitude(g, sigma)
    return float((d ** 2)[u].sum() / 1000.0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndi.label(mask)  # default structure: 4-connectivity
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return labels == counts.argmax()


def conn(pred, gt, trimap, step: float = 0.1) -> float:
    """Connectivity error in the unknown region, in thousands."""
    p, g, u = _prepare(pred, gt, trimap)
    thresholds = np.arange(0, 1 + step / 2, step)
    level = np.full(g.shape, -1.0)
    for i in range(1, len(thresholds)):
        omega = _largest_component((p >= thresholds[i]) & (g >= thresholds[i]))
        dropped = (level == -1) & ~omega
        level[dropped] = thresholds[i - 1]
    level[level == -1] = 1.0
    dp, dg = p - level, g - level
    phi_p = 1 - dp * (dp >= 0.15)
    phi_g = 1 - dg * (dg >= 0.15)
    return float(np.abs(phi_p - phi_g)[u].sum() / 1000.0)


def all_metrics(pred, gt, trimap, which=METRICS) -> dict[str, float]:
    """The requested metrics as a dict (MSE unscaled)."""
    fns = {"sad": unknown_sad, "mse": mse, "grad": grad, "conn": conn}
    unknown = set(which) - set(fns)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; known: {', '.join(METRICS)}")
    return {k: fns[k](pred, gt, trimap) for k in which}
