"""Information flow's neighbour searches and weights in torch, on the device of a
:class:`~.cg.TorchCG` with ``flows=True`` (issue #23): the work the numpy path does with
scipy KD-trees (flows.py), done as exact brute-force searches, so it runs on a GPU.

- :func:`knn`: exact k nearest neighbours, the squared distances of a chunk of queries to
  every point by one matrix product plus ``topk``, chunks sized so that the distances
  stay within :func:`distance_budget`. The candidates (k + RERANK of them) are re-ranked
  by their distances computed directly (sum of squared differences in float64, as the
  KD-tree computes them), ties by the lower index.
- :func:`mix_neighbours` (colour-mixture flow), :func:`intra_u` and :class:`DeviceSamples`
  (K-to-U flow): the searches, then the flows' rules of flow_rules.py (the same code as
  the numpy path) on the device; the results come back as numpy arrays, and the sparse
  rows are assembled by flows.py as on the numpy path.

What differs from the numpy path:

- Ties (points at exactly the same distance, common with 8-bit colours and a pixel grid):
  the KD-tree keeps whichever it met first in its walk; here the lower index wins. The
  neighbours' distances are the same; which of two equidistant pixels is taken may differ.
- The candidates are ranked by float32 distances (COARSE), re-ranked in float64; where
  float32's rounding (~1e-7 of the squared feature norms) could have hidden a nearer
  point, the query is searched again in float64 (pixels of one 8-bit colour in the
  intra-U space, whose positions weigh 1/20: 0.02 % of GT12's trimap2 queries missed a
  neighbour without it). The result is exact.
- The K-to-U search is always exact (the numpy path searches pixels more than FAR_PX from
  every known one approximately in windows, a KD-tree's saving; brute force costs the same).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

from .cg import TorchCG
from .flow_rules import intra_u_weights, ku_mix, lle_weights
from .progress import Progress, ignore, span

DISTANCE_BYTES = 256 * 2**20   # a chunk's distance buffers at most, on the CPU
GPU_DISTANCE_BYTES = (256 * 2**20, 4 * 2**30)   # on a GPU: 1/16 of the free memory, within these
RERANK = 8                     # spare candidates re-ranked by their directly computed distances
#: the candidates' distances: float32 on every device (consumer GPUs run float64 at 1/32 to
#: 1/64 of float32's rate; the CPU runs the same arithmetic, so the tests cover the GPU's)
COARSE = torch.float32


def distance_budget(device: torch.device) -> int:
    """Bytes a search's distance chunk may take on ``device``. On a GPU as much as is free
    within GPU_DISTANCE_BYTES: each chunk costs ~10 kernel launches, and a 24 MP window's
    search (400k queries x 400k points) in 256 MiB chunks would be ~7000 chunks, 0.5 s of
    launches alone; up to six searches run at once (three flows x two windows)."""
    if device.type != "cuda":
        return DISTANCE_BYTES
    free = torch.cuda.mem_get_info(device)[0]
    return int(min(max(free // 16, GPU_DISTANCE_BYTES[0]), GPU_DISTANCE_BYTES[1]))


def knn(data: torch.Tensor, queries: torch.Tensor, k: int, coarse: torch.dtype = COARSE,
        budget: Optional[int] = None, check: Progress = ignore) -> torch.Tensor:
    """Indices (Q, k) int64 of the ``k`` nearest ``data`` points (N, C) of each query
    (Q, C), nearest first (ties: lower index first); ``k`` <= N. The distances of each
    chunk of queries (at most ``budget`` bytes, default ``distance_budget``) are ranked in
    ``coarse``, the best k + RERANK re-ranked in ``data``'s dtype (ties: the lower index
    among those candidates); a query whose k-th neighbour is too close to the candidates'
    edge for ``coarse``'s rounding is searched again in ``data``'s dtype, so the result is
    exact. ``check(fraction)`` after each chunk."""
    n, nq = len(data), len(queries)
    centre = data.mean(0)
    # Centred: the expanded distance |q|^2 - 2 q.x + |x|^2 loses less to rounding.
    space = {dt: _Space(data, centre, dt) for dt in {coarse, data.dtype}}
    budget = distance_budget(data.device) if budget is None else budget
    rows = max(1, budget // (3 * n * space[coarse].x.element_size()))
    out = torch.empty((nq, k), dtype=torch.int64, device=data.device)
    for s in range(0, nq, rows):
        q = queries[s:s + rows]
        nb, sure = space[coarse].nearest(q, k)
        if coarse != data.dtype and not bool(sure.all()):
            again = (~sure).nonzero()[:, 0]
            nb[again] = space[data.dtype].nearest(q[again], k)[0]
        out[s:s + rows] = nb
        check(min(nq, s + rows) / max(nq, 1))
    return out


class _Space:
    """``data`` centred and cast to ``dtype`` for :func:`knn`'s expanded distances."""

    def __init__(self, data: torch.Tensor, centre: torch.Tensor, dtype: torch.dtype) -> None:
        self.data, self.centre = data, centre
        self.x = (data - centre).to(dtype)
        self.x2 = (self.x * self.x).sum(1)
        self.x2max = float(self.x2.max())
        self.eps = torch.finfo(dtype).eps

    def nearest(self, q: torch.Tensor, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """(the ``k`` nearest of each query, whether that is certain despite rounding)."""
        take = min(len(self.data), k + RERANK)
        qc = q - self.centre
        # |q|^2 is the same for a query's every candidate: left out of the ranking.
        d2 = torch.addmm(self.x2[None], qc.to(self.x.dtype), self.x.T, alpha=-2.0)
        top = d2.topk(take, dim=1, largest=False, sorted=False)
        del d2
        cand = top.indices.sort(1).values                           # by index: ties keep it
        exact = ((self.data[cand] - q[:, None, :]) ** 2).sum(-1)    # as the KD-tree computes it
        order = exact.sort(dim=1, stable=True).indices[:, :k]
        # Every other point's ranked value is >= the last candidate's, its true one
        # >= that less the rounding (a few eps of the terms' size): certain when the k-th
        # is nearer still, or when every point was a candidate.
        q2 = (qc * qc).sum(1)
        err = 8 * self.eps * (self.x2max + q2 + 2 * (self.x2max * q2).sqrt())
        kth = exact.gather(1, order[:, -1:])[:, 0] - q2
        sure = (kth < top.values.max(1).values.to(kth.dtype) - err) | (take == len(self.data))
        return cand.gather(1, order), sure


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
