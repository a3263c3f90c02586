"""The local-window matting Laplacian (Levin, Lischinski and Weiss 2008): the priors' one
implementation.

Over 3 x 3 windows k with colour mean mu_k and covariance Sigma_k,

    L_ij = sum over the windows k holding i and j of
           delta_ij - (1 + (I_i - mu_k)^T (Sigma_k + eps / 9 I)^-1 (I_j - mu_k)) / 9.

:func:`window_coefficients` is the one place a window's coefficients are computed: the
inverse of its regularised covariance, from the means of its colours and of their
products. Both priors use it, each in the form its solver needs:

- :class:`MatrixFree` (torch, a batch, every window inside the image): ``L @ p`` and
  ``diag(L)`` with box sums, nothing sparse built; closed-form matting (closed_form.py).
- :func:`sparse_laplacian` (numpy / scipy, the windows centred on given pixels): L as a
  sparse matrix, information flow's local flow, added to its other flows.

The two priors differ only in ``eps``: closed-form uses 1e-6 (``closed_form.EPS``),
information flow Levin et al.'s 1e-7 (its ``EPS_LOCAL``); window size, normalisation and
the regulariser's scale (eps / 9) are the same.
"""
from __future__ import annotations

from typing import Any, List, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from . import sym3
from .progress import Progress, ignore
from .sym3 import FULL, PAIRS

WINDOW = 9                       # pixels per 3 x 3 window

#: an array of per-window values: a numpy array or a torch tensor (only + - * / and
#: ``clip(min=)`` are used)
Values = Any


def window_coefficients(mean: Sequence[Values], moment: Sequence[Values], eps: float) -> List[Values]:
    """The six entries (PAIRS order) of (Sigma + eps / 9 I)^-1 per window, from the window's
    colour means ``mean`` (3 arrays) and the means of the colour products ``moment``
    (6 arrays, PAIRS order): Sigma = E[I I^T] - mu mu^T. Inverted by cofactors (a symmetric
    3 x 3 per window, sym3.py); works on numpy arrays and torch tensors alike.

    Computed in float64 by both callers: Sigma's cancellation error in float32 (~1e-7) is
    as large as the regulariser in flat windows, and the inverse (~1e7) multiplies it."""
    a, b, c, d, e, f = [m - mean[i] * mean[j] for m, (i, j) in zip(moment, PAIRS)]
    reg = eps / WINDOW
    return list(sym3.inverse(a + reg, b, c, d + reg, e, f + reg))


# --- matrix-free, torch: closed-form matting -------------------------------------------------

def _box_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over each 3x3 window inside ``x``: (B,C,H,W) -> (B,C,H-2,W-2). Shifted slices, not
    a pooling kernel: several times faster on CPU (pooling has no fast fp64 path)."""
    r = x[..., :-2] + x[..., 1:-1] + x[..., 2:]
    return r[..., :-2, :] + r[..., 1:-1, :] + r[..., 2:, :]


def _box_valid(x: torch.Tensor) -> torch.Tensor:
    """Mean over every 3x3 window lying fully inside the image: (B,C,H,W) -> (B,C,H-2,W-2)."""
    return _box_sum(x) / 9.0


def _sum_back(x: torch.Tensor) -> torch.Tensor:
    """Adjoint of the window grid: sum over the windows that contain each pixel -> (B,C,H,W)."""
    return _box_sum(F.pad(x, (2, 2, 2, 2)))


class MatrixFree:
    """The matting Laplacian of one (batched) image (B,3,H,W), applied matrix-free with box
    sums (He et al. 2010, "Fast matting using large kernel matting Laplacian matrices")."""

    def __init__(self, image: torch.Tensor, eps: float) -> None:
        img = image.double()   # float64 throughout (see window_coefficients)
        self.image = img
        mu = _box_valid(img)                                           # (B,3,h,w)
        prods = torch.cat([img[:, i:i + 1] * img[:, j:j + 1] for i, j in PAIRS], 1)
        moment = _box_valid(prods)                                     # (B,6,h,w)
        self.inv = torch.stack(window_coefficients([mu[:, k] for k in range(3)],
                                                   [moment[:, k] for k in range(6)], eps), 1)
        self.mu = mu
        self.count = _sum_back(torch.ones_like(mu[:, :1]))             # windows per pixel (9 inside)

    def _mat(self, v: torch.Tensor) -> torch.Tensor:
        """inv @ v per window, v: (B,3,h,w)."""
        s = self.inv
        return torch.stack([s[:, 0] * v[:, 0] + s[:, 1] * v[:, 1] + s[:, 2] * v[:, 2],
                            s[:, 1] * v[:, 0] + s[:, 3] * v[:, 1] + s[:, 4] * v[:, 2],
                            s[:, 2] * v[:, 0] + s[:, 4] * v[:, 1] + s[:, 5] * v[:, 2]], 1)

    def apply(self, p: torch.Tensor) -> torch.Tensor:
        """L @ p for p (B,1,H,W)."""
        p_mean = _box_valid(p)
        ip_mean = _box_valid(self.image * p)
        a_k = self._mat(ip_mean - self.mu * p_mean)
        b_k = p_mean - (a_k * self.mu).sum(1, keepdim=True)
        return self.count * p - _sum_back(b_k) - (self.image * _sum_back(a_k)).sum(1, keepdim=True)

    def diagonal(self) -> torch.Tensor:
        """diag(L) (B,1,H,W), for the Jacobi preconditioner."""
        img, s, mu = self.image, self.inv, self.mu
        inv_mu = self._mat(mu)
        mu_q = (mu * inv_mu).sum(1, keepdim=True)
        sum_s = _sum_back(s)
        sum_inv_mu = _sum_back(inv_mu)
        r, g, b = img[:, 0:1], img[:, 1:2], img[:, 2:3]
        quad = (sum_s[:, 0:1] * r * r + sum_s[:, 3:4] * g * g + sum_s[:, 5:6] * b * b
                + 2 * (sum_s[:, 1:2] * r * g + sum_s[:, 2:3] * r * b + sum_s[:, 4:5] * g * b))
        q = quad - 2 * (img * sum_inv_mu).sum(1, keepdim=True) + _sum_back(mu_q)
        return self.count - (self.count + q) / 9.0


# --- sparse, numpy: information flow's local flow -------------------------------------------

def sparse_laplacian(flat: np.ndarray, width: int, centres: np.ndarray, compact: np.ndarray, size: int,
                     eps: float, chunk: int = 100_000, check: Progress = ignore) -> sp.csr_matrix:
    """The matting Laplacian over the windows centred on ``centres`` (flat indices of
    interior pixels of an image ``width`` wide whose colours are ``flat``), in the compact
    numbering ``compact`` (flat index -> row, ``size`` rows); ``check(fraction)`` after each
    chunk of windows."""
    offs = np.array([dy * width + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    parts = []
    for s in range(0, len(centres), chunk):
        idx = centres[s:s + chunk, None] + offs[None]                # (M, 9)
        win = flat[idx].astype(np.float64)                           # (M, 9, 3)
        mu = win.sum(1) / 9.0
        moment = [(win[..., i] * win[..., j]).sum(1) / 9.0 for i, j in PAIRS]
        inv = window_coefficients([mu[:, k] for k in range(3)], moment, eps)
        inv33 = np.stack([np.stack([inv[k] for k in row], 1) for row in FULL], 1)   # (M, 3, 3)
        xc = win - mu[:, None]
        vals = (1 + xc @ inv33 @ xc.transpose(0, 2, 1)) / 9          # (M, 9, 9) affinities
        cidx = compact[idx]
        rows = np.repeat(cidx, 9, 1).ravel()
        cols = np.tile(cidx, (1, 9)).ravel()
        aff = sp.csr_matrix((vals.ravel(), (rows, cols)), shape=(size, size))
        parts.append(sp.diags(np.asarray(aff.sum(1)).ravel()) - aff)
        check(0.9 * min(len(centres), s + chunk) / len(centres))
    if not parts:  # no window fits (an image under 3 px on a side): no local flow
        return sp.csr_matrix((size, size))
    return sum(parts[1:], parts[0]).tocsr()
