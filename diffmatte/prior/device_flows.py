"""Information flow's neighbour searches and weights in torch, on the device of a
:class:`~.cg.TorchCG` with ``flows=True`` (issue #23): the work the numpy path does with
scipy KD-trees (flows.py), done as exact brute-force searches, so it runs on a GPU.

- :func:`knn`: exact k nearest neighbours, the squared distances of a chunk of queries to
  every point by one matrix product plus ``topk``, chunks sized so that the distances
  stay within DISTANCE_BYTES. The candidates (k + RERANK of them) are re-ranked by their
  distances computed directly (sum of squared differences in float64, as the KD-tree
  computes them), ties by the lower index.
- :func:`mix_neighbours` (colour-mixture flow), :func:`intra_u` and
  :class:`DeviceSamples` (K-to-U flow): the searches, then the flows' rules of flow_rules.py (the same code as
  the numpy path) on the device; the results come back as numpy arrays, and the sparse
  rows are assembled by flows.py as on the numpy path.

What differs from the numpy path:

- Ties (points at exactly the same distance, common with 8-bit colours and a pixel grid):
  the KD-tree keeps whichever it met first in its walk; here the lower index wins. The
  neighbours' distances are the same; which of two equidistant pixels is taken may differ.
- The candidates are ranked by float32 distances (COARSE; the re-ranking is float64): a
  neighbour whose squared distance is within float32's rounding of the k-th's (~1e-7 of
  the squared feature norms, after centring) can be missed; RERANK spare candidates make
  this rare (none in the tests' and the dev photos' checks; ``coarse=torch.float64`` is exact).
- The K-to-U search is always exact (the numpy path searches pixels more than FAR_PX from
  every known one approximately in windows, a KD-tree's saving; brute force costs the same).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

from .cg import TorchCG
from .flow_rules import intra_u_weights, ku_mix, lle_weights
from .progress import Progress, ignore, span

DISTANCE_BYTES = 256 * 2**20   # a chunk's distance matrix at most (a few such buffers live at once)
RERANK = 8                     # spare candidates re-ranked by their directly computed distances
#: the candidates' distances: float32 on every device (consumer GPUs run float64 at 1/32 to
#: 1/64 of float32's rate; the CPU runs the same arithmetic, so the tests cover the GPU's)
COARSE = torch.float32


def knn(data: torch.Tensor, queries: torch.Tensor, k: int, coarse: torch.dtype = COARSE,
        budget: int = DISTANCE_BYTES, check: Progress = ignore) -> torch.Tensor:
    """Indices (Q, k) int64 of the ``k`` nearest ``data`` points (N, C) of each query
    (Q, C), nearest first (ties: lower index first); ``k`` <= N. The distances of each
    chunk of queries are ranked in ``coarse``, the best
    k + RERANK re-ranked in ``data``'s dtype (ties: the lower index among those candidates);
    ``check(fraction)`` after each chunk."""
    n, nq = len(data), len(queries)
    take = min(n, k + RERANK)
    # Centred: the expanded distance |q|^2 - 2 q.x + |x|^2 loses less to rounding.
    centre = data.mean(0)
    x = (data - centre).to(coarse)
    x2 = (x * x).sum(1)
    rows = max(1, budget // (3 * n * x.element_size()))
    out = torch.empty((nq, k), dtype=torch.int64, device=data.device)
    for s in range(0, nq, rows):
        q = queries[s:s + rows]
        # |q|^2 is the same for a query's every candidate: left out of the ranking.
        d2 = torch.addmm(x2[None], (q - centre).to(coarse), x.T, alpha=-2.0)
        cand = d2.topk(take, dim=1, largest=False, sorted=False).indices
        del d2
        cand = cand.sort(1).values                                  # by index: ties keep it
        exact = ((data[cand] - q[:, None, :]) ** 2).sum(-1)
        order = exact.sort(dim=1, stable=True).indices[:, :k]
        out[s:s + rows] = cand.gather(1, order)
        check(min(nq, s + rows) / max(nq, 1))
    return out


def _tensor(dev: TorchCG, a: np.ndarray) -> torch.Tensor:
    """Features and colours on the device in float64 (the weights' arithmetic; the
    searches' coarse stage casts for itself)."""
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64, device=dev.device)


def _host(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def mix_neighbours(dev: TorchCG, feat: np.ndarray, col: np.ndarray, which: np.ndarray, k: int,
                   check: Progress = ignore) -> Tuple[np.ndarray, np.ndarray]:
    """Colour-mixture flow: (the ``k`` nearest neighbours of the points ``which`` among all of
    ``feat`` (the point itself left out), their LLE weights over ``col``), as numpy."""
    f = _tensor(dev, feat)
    nb = knn(f, f[torch.as_tensor(which, device=f.device)], k + 1, check=span(check, 0.0, 0.5))[:, 1:]
    c = _tensor(dev, col)
    w = lle_weights(c[torch.as_tensor(which, device=c.device)], c[nb], check=span(check, 0.5, 1.0))
    return _host(nb), _host(w)


def intra_u(dev: TorchCG, fu: np.ndarray, k: int, check: Progress = ignore) -> Tuple[np.ndarray, np.ndarray]:
    """Intra-U flow: (the ``k`` nearest other points of each point of ``fu``, their
    weights), as numpy."""
    f = _tensor(dev, fu)
    nb = knn(f, f, k + 1, check=check)[:, 1:]
    return _host(nb), _host(intra_u_weights(f, nb))


class DeviceSamples:
    """The known pixels of a K-to-U flow on the device: their features (ku_features) and
    colours, foreground and background apart (what KnownSamples holds in KD-trees)."""

    def __init__(self, dev: TorchCG, feat_f: np.ndarray, feat_b: np.ndarray, col_f: np.ndarray,
                 col_b: np.ndarray) -> None:
        self.dev = dev
        self.feat_f, self.feat_b = _tensor(dev, feat_f), _tensor(dev, feat_b)
        self.col_f, self.col_b = _tensor(dev, col_f), _tensor(dev, col_b)

    def flow(self, q: np.ndarray, col_u: np.ndarray, kk: int,
             check: Progress = ignore) -> Tuple[np.ndarray, np.ndarray]:
        """(confidence before S_KU, foreground share) of each unknown pixel (features ``q``,
        colours ``col_u``) from its ``kk`` nearest foreground and background pixels."""
        qt = _tensor(self.dev, q)
        nf = knn(self.feat_f, qt, kk, check=span(check, 0.0, 0.35))
        nb = knn(self.feat_b, qt, kk, check=span(check, 0.35, 0.7))
        cf, cb = self.col_f[nf], self.col_b[nb]
        cu = _tensor(self.dev, col_u)
        wk = lle_weights(cu, torch.cat([cf, cb], 1), check=span(check, 0.7, 1.0))
        h, wf = ku_mix(cu, cf, cb, wk)
        return _host(h), _host(wf)
