"""Gaussian-weighted local means (normalised convolution), shared by the band rule
(``band.py``), the transparency test (``transparency.py``) and ``evaluate.py``."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .progress import report

#: rows upsampled per call (and progress report) by :func:`smooth`
UPSAMPLE_ROWS = 512


def smooth(arr: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted local mean that stays fast for large ``sigma``.

    Normalised convolution: pixels outside the image carry no weight, so values
    near the border are means of what is inside (no replicated-edge artefacts).

    Above sigma 8 the array is block-averaged by ``sigma // 4``, blurred at the
    reduced scale and upsampled bilinearly: the result is a smooth field either
    way, and a 130-pixel sigma on a 2.7-megapixel image drops from seconds to
    tens of milliseconds.
    """
    a = np.asarray(arr, np.float32)
    h, w = a.shape
    # Beyond the image size a wider window changes nothing but the cost.
    sigma = min(float(sigma), 2.0 * max(h, w))
    k = int(sigma // 4)
    if k <= 1:
        return _norm_blur(a, np.ones_like(a), sigma)
    hp, wp = -(-h // k) * k, -(-w // k) * k
    # Padding pixels get zero weight: a block's weight is the number of its pixels inside
    # (counted, not summed from an array of ones: two 24 MP arrays less, issue #23).
    padded = np.pad(a, ((0, hp - h), (0, wp - w)))
    inside_rows = np.minimum(k, h - np.arange(0, hp, k))
    inside_cols = np.minimum(k, w - np.arange(0, wp, k))
    wsum = np.outer(inside_rows, inside_cols).astype(np.float32)
    vsum = padded.reshape(hp // k, k, wp // k, k).sum(axis=(1, 3))
    report(0.25)  # (trimap.progress) the callers run each smooth in a part of their own
    small = _norm_blur(vsum, wsum, sigma / k)
    # Bilinear upsampling with block centres at (i + 0.5) * k - 0.5.
    ys = (np.arange(h) + 0.5) / k - 0.5
    xs = (np.arange(w) + 0.5) / k - 0.5
    yy = np.clip(ys, 0, small.shape[0] - 1)
    xx = np.clip(xs, 0, small.shape[1] - 1)
    report(0.3)
    # In bands of rows, each reported (the upsampling is most of the time at 24 MP, seconds
    # on a busy machine); every pixel is interpolated as in one call.
    out = np.empty((h, w), np.float32)
    for y0 in range(0, h, UPSAMPLE_ROWS):
        y1 = min(h, y0 + UPSAMPLE_ROWS)
        out[y0:y1] = ndi.map_coordinates(small, np.meshgrid(yy[y0:y1], xx, indexing="ij"), order=1, mode="nearest")
        report(0.3 + 0.7 * y1 / h)
    return out


def _norm_blur(values_sum: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    num = ndi.gaussian_filter(values_sum, sigma, mode="constant")
    den = ndi.gaussian_filter(weight, sigma, mode="constant")
    return num / np.maximum(den, 1e-12)
