"""The rules information flow's flows share between their two paths: numpy + scipy (flows.py,
KD-tree searches) and torch on a device (device_flows.py, brute-force searches). Each rule
is written once, on operations numpy arrays and torch tensors both have, so the two paths
compute the same features, weights and mixes:

- the feature spaces the neighbours are searched in (colour plus weighted position);
- the LLE weights (:func:`lle_weights`, through the Woodbury identity);
- the K-to-U mix of the nearest known pixels (:func:`ku_mix`), trusted less where no known
  neighbour has the pixel's colour (:func:`explained`, our addition to the paper);
- the intra-U weights (:func:`intra_u_weights`).
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple

import numpy as np

from . import sym3
from .progress import Progress, ignore

#: an array: a numpy array or a torch tensor (on any device)
Array = Any

# K-to-U trust in colours the known pixels do not have (not in the paper): where an unknown
# pixel's colour is farther than UNEXPLAINED_TAU (RGB distance, 0..1) from every one of its
# known neighbours' colours, their mix is an extrapolation, so the flow's confidence falls
# off as a Gaussian of width UNEXPLAINED_SIGMA beyond that, and the local and colour-mixture
# flows decide. Without it a region of such colours (a blue flag held by a plush toy) came
# out transparent. Dev photos, mean SAD of the 26 trimap cases 4.122 -> 4.025 (0.05: 4.016).
UNEXPLAINED_TAU = 0.1
UNEXPLAINED_SIGMA = 0.1


def _is_numpy(a: Array) -> bool:
    return isinstance(a, np.ndarray)


def _cat(parts: Sequence[Array]) -> Array:
    """Columns side by side, numpy or torch."""
    if _is_numpy(parts[0]):
        return np.concatenate(parts, 1)
    import torch
    return torch.cat(list(parts), 1)


def _stack(parts: Sequence[Array]) -> Array:
    """Arrays of equal shape stacked along a new last axis, numpy or torch."""
    if _is_numpy(parts[0]):
        return np.stack(parts, -1)
    import torch
    return torch.stack(list(parts), -1)


def _where(cond: Array, a: float, b: Array) -> Array:
    if _is_numpy(b):
        return np.where(cond, a, b)
    import torch
    return torch.where(cond, a, b)


def cm_features(col: Array, xy: Array) -> Array:
    """Colour-mixture search space: (r, g, b, x / W, y / H)."""
    return _cat([col, xy])


def ku_features(col: Array, xy: Array) -> Array:
    """K-to-U search space: positions weighted x10 (the paper's)."""
    return _cat([col, xy * 10.0])


def uu_features(col: Array, xy: Array) -> Array:
    """Intra-U search space (and the intra-U weights' space): positions weighted / 20."""
    return _cat([col, xy / 20.0])


def lle_weights(fp: Array, fq: Array, reg: float = 1e-3, chunk: int = 16384,
                check: Progress = ignore) -> Array:
    """Affine weights (rows sum to 1) that best rebuild each colour ``fp`` (N, 3) from its
    neighbours' colours ``fq`` (N, K, 3); the K x K Gram matrix D D^T (D: the K differences) is
    regularised by ``reg`` x its trace. numpy arrays in, float64 numpy out; torch tensors
    in, tensors of their dtype out (on their device).

    The Gram matrix has rank at most C (3 colours) plus the ridge, so the K x K system is
    solved through the Woodbury identity with a C x C one: (lam I + D D^T)^-1 1 =
    (1 - D (lam I + D^T D)^-1 D^T 1) / lam, and the 1 / lam goes in the normalisation.
    Same weights to ~1e-13; 8-10x faster than K x K solves for K = 20. The 3 x 3 systems
    are solved by cofactors (sym3.py), elementwise over the chunk. ``check(fraction)``
    after each chunk of pixels."""
    n, k, c = fq.shape
    if c != 3:
        raise ValueError(f"lle_weights: colours of 3 channels expected, got {c}")
    out = np.empty((n, k)) if _is_numpy(fq) else fq.new_empty((n, k))
    for s in range(0, n, chunk):
        d = fq[s:s + chunk] - fp[s:s + chunk, None, :]
        g = d.swapaxes(1, 2) @ d                                # D^T D, (m, 3, 3)
        ridge = (reg * (g[:, 0, 0] + g[:, 1, 1] + g[:, 2, 2]) + 1e-9) / k   # reg x trace(D D^T) / K
        # no determinant floor within float32's range: a flat patch's ridge alone gives ~1e-31
        inv = sym3.inverse(g[:, 0, 0] + ridge, g[:, 0, 1], g[:, 0, 2], g[:, 1, 1] + ridge, g[:, 1, 2],
                           g[:, 2, 2] + ridge, floor=1e-37)
        t = d.sum(1)                                            # D^T 1
        y = _stack(sym3.apply(inv, t[:, 0], t[:, 1], t[:, 2]))  # (lam I + D^T D)^-1 D^T 1
        w = 1.0 - (d @ y[..., None])[..., 0]
        out[s:s + chunk] = w / w.sum(1, keepdims=True)
        check(min(n, s + chunk) / max(n, 1))
    return out


def ku_mix(col_u: Array, cf: Array, cb: Array, wk: Array) -> Tuple[Array, Array]:
    """The K-to-U flow from the LLE weights ``wk`` (N, 2 kk) of each unknown pixel's
    ``kk`` nearest foreground colours ``cf`` and background colours ``cb`` (N, kk, 3), in
    that order: (confidence before the flow's weight S_KU: how different the mixed
    foreground and background colours are, foreground share w_f), both clipped to [0, 1]."""
    kk = cf.shape[1]
    wf = wk[:, :kk].sum(1)
    safe = lambda v: _where(abs(v) < 1e-6, 1e-6, v)  # noqa: E731
    f_col = (wk[:, :kk, None] * cf).sum(1) / safe(wf)[:, None]
    b_col = (wk[:, kk:, None] * cb).sum(1) / safe(1 - wf)[:, None]
    confidence = (((f_col - b_col) ** 2).sum(1) / 3.0).clip(0, 1) * explained(col_u, _cat([cf, cb]))
    return confidence, wf.clip(0, 1)


def explained(col: Array, known: Array) -> Array:
    """How far the K-to-U flow may trust its mix for each pixel colour ``col`` (N, 3), given
    its known neighbours' colours ``known`` (N, K, 3): 1 where one of them is within
    UNEXPLAINED_TAU, falling off as a Gaussian beyond (see UNEXPLAINED_TAU)."""
    d2 = ((known - col[:, None, :]) ** 2).sum(-1)
    nearest = (d2.min(1) if _is_numpy(d2) else d2.amin(1)) ** 0.5
    g = -(((nearest - UNEXPLAINED_TAU).clip(min=0) / UNEXPLAINED_SIGMA) ** 2)
    return np.exp(g) if _is_numpy(g) else g.exp()


def intra_u_weights(fu: Array, nbu: Array) -> Array:
    """Intra-U weights (N, K) of each unknown pixel's neighbours ``nbu`` in the intra-U
    space ``fu``: max(0, 1 - the L1 distance)."""
    return (1 - abs(fu[:, None, :] - fu[nbu]).sum(-1)).clip(min=0)
