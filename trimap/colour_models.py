"""GrabCut's colour models read back: the log-likelihood of colours under OpenCV's fitted
Gaussian mixtures (its 1 x 65 model arrays), and the per-pixel log-likelihood ratio
background : foreground that the rough path's colour rules use (rough.py)."""
from __future__ import annotations

import math

import numpy as np

from ._validate import BAND_ROWS
from . import progress

LLR_LEVELS = 64  # colour-cube cells per channel for the log-likelihood lookup
LLR_LIMIT = 50.0  # beyond this a colour is simply one model's, whatever the number


def gmm_loglik(pixels: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Log-likelihood of N x 3 pixels (0..255) under an OpenCV GrabCut model (1 x 65)."""
    k = 5
    weights = model[0, :k]
    means = model[0, k:4 * k].reshape(k, 3)
    covs = model[0, 4 * k:].reshape(k, 3, 3)
    out = np.full(len(pixels), -np.inf)
    for j in range(k):
        if weights[j] <= 0:
            continue
        # A small floor: a component fitted to a flat patch has a singular covariance.
        cov = covs[j] + np.eye(3) * 1e-2
        diff = pixels - means[j]
        maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
        ll = math.log(weights[j]) - 0.5 * maha - 0.5 * math.log(np.linalg.det(cov))
        out = np.logaddexp(out, ll)
    if not np.isfinite(out).any():
        return np.zeros(len(pixels))  # an empty model (nothing was labelled this way) says nothing
    return out


def llr_map(img8: np.ndarray, bgd: np.ndarray, fgd: np.ndarray) -> np.ndarray:
    """Per-pixel log-likelihood ratio background : foreground of an 8-bit BGR image.

    Evaluated once per occupied cell of a 64-level colour cube and looked up per pixel:
    the models are smooth at that scale (their spread is tens of levels), and a photo
    occupies a small share of the cube's 262k cells. (A 32-level cube was coarser than
    the thresholds: the lasso bench went from 89.1 to 92.6.)
    """
    step = 256 // LLR_LEVELS
    h, index = img8.shape[0], np.empty(img8.shape[:2], np.int32)
    for y0 in range(0, h, BAND_ROWS):  # in bands of rows, reported: 1-2.5 s at 24 MP (issue #23)
        q = (img8[y0:y0 + BAND_ROWS] // step).astype(np.int32)
        index[y0:y0 + BAND_ROWS] = (q[..., 0] * LLR_LEVELS + q[..., 1]) * LLR_LEVELS + q[..., 2]
        progress.report(0.6 * min(1.0, (y0 + BAND_ROWS) / h))
    cells = np.flatnonzero(np.bincount(index.ravel(), minlength=LLR_LEVELS ** 3))
    progress.report(0.8)
    levels = np.stack([cells // (LLR_LEVELS * LLR_LEVELS), cells // LLR_LEVELS % LLR_LEVELS, cells % LLR_LEVELS], -1)
    cube = levels.astype(np.float64) * step + (step - 1) / 2.0  # cell centres
    values = gmm_loglik(cube, bgd) - gmm_loglik(cube, fgd)
    values = np.clip(np.nan_to_num(values, nan=0.0, posinf=LLR_LIMIT, neginf=-LLR_LIMIT), -LLR_LIMIT, LLR_LIMIT)
    table = np.zeros(LLR_LEVELS ** 3, np.float32)
    table[cells] = values
    return table[index]
