"""Information flow's flows (Aksoy, Aydin and Pollefeys, CVPR 2017): each one assembled over
a crop's search region (:class:`Region`, numbered by ``information_flow._region``), as the
sparse rows and per-pixel terms that ``information_flow._solve`` adds into one system.

- colour-mixture flow (:func:`colour_mixture`): each unknown pixel is an affine mix (LLE
  weights, :func:`lle_weights`) of its K_CM nearest neighbours in (r, g, b, x/W, y/H);
- K-to-U flow (:func:`known_to_unknown`, :class:`KnownSamples`): the same mix over its
  nearest known-foreground and known-background pixels, trusted less where no known
  neighbour has the pixel's colour (``flow_rules.explained``, our addition to the paper);
- intra-U flow and local flow (:func:`local_and_intra_u`): unknown pixels of similar colour
  nearby, and the matting Laplacian of the 3 x 3 windows touching the unknown pixels
  (laplacian.py, the implementation closed-form matting applies matrix-free).

The neighbour searches go through KD-trees (pykdtree: 1.4x scipy's cKDTree on the
colour-mixture search and 3-6x on the K-to-U one, whose queries lie far from the known
pixels; README, "Dependencies and why") in chunks of QUERY_CHUNK queries, with progress
between chunks; with a region's ``dev`` (a ``TorchCG`` with ``flows=True``) the searches and
the weights run in torch on its device instead (device_flows.py). The feature spaces and the
weights' rules are shared by both paths (flow_rules.py); the sparse rows are built here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sp
from scipy import ndimage as ndi
from pykdtree.kdtree import KDTree

from .cg import TorchCG
from .device_flows import DeviceSamples, intra_u, mix_neighbours
from .flow_rules import cm_features, intra_u_weights, ku_features, ku_mix, lle_weights, uu_features
from .laplacian import sparse_laplacian
from .progress import Progress, ignore, span

__all__ = ["KnownSamples", "Region", "colour_mixture", "known_to_unknown", "lle_weights", "local_and_intra_u"]

K_CM, K_KU, K_U = 20, 7, 5            # neighbours per flow (the paper's values)
S_CM, S_L, S_UU, S_KU = 1.0, 1.0, 0.01, 0.05   # flow weights (the paper's values)
EPS_LOCAL = 1e-7                      # the local flow's window regulariser (Levin et al.;
                                      # closed-form's prior uses 1e-6: laplacian.py)
FAR_PX = 64                           # windows: K-to-U searched approximately beyond this distance
#: the colour-mixture and intra-U searches' dtype: float32 (see _tree)
SEARCH_DTYPE = np.float32
QUERY_CHUNK = 20_000                  # neighbour queries per KD-tree call: progress between calls


def _tree(points: np.ndarray, dtype: type = np.float64) -> KDTree:
    """A KD-tree over ``points`` (N, d) in ``dtype`` (pykdtree's default leaves of 16 points:
    on a 1 MP, 40 % band, 8-128 cost within 15 % of each other). float32 where a neighbour
    a rounding away from another changes little: the colour-mixture and intra-U searches
    (SEARCH_DTYPE)."""
    return KDTree(np.ascontiguousarray(points, dtype))


def _query(tree: KDTree, points: np.ndarray, k: int, check: Progress = ignore,
           eps: float = 0.0) -> np.ndarray:
    """Indices (N, k) of the ``k`` nearest neighbours of ``points`` in ``tree``, asked in
    chunks of QUERY_CHUNK with ``check(fraction)`` after each (the same neighbours as one
    query). ``eps`` > 0: approximate, each neighbour within (1 + eps) x the true k-th
    distance. The queries are spread over the cores by pykdtree (OpenMP), in the tree's dtype."""
    pts = np.ascontiguousarray(points, tree.data_pts.dtype)
    n = len(pts)
    out = np.empty((n, k), np.int64)
    for s in range(0, n, QUERY_CHUNK):
        out[s:s + QUERY_CHUNK] = tree.query(pts[s:s + QUERY_CHUNK], k=k, eps=eps)[1].reshape(-1, k)
        check(min(n, s + QUERY_CHUNK) / n)
    return out


class KnownSamples:
    """The known pixels a K-to-U flow draws its foreground and background mixes from:
    colours ``col`` (N, 3), positions ``xy`` (N, 2, normalised) and labels ``lab`` (1 / 0;
    others are ignored), with their KD-trees. A windowed solve builds it once for the whole
    crop, so every window draws from the same known pixels as one whole solve would."""

    def __init__(self, col: np.ndarray, xy: np.ndarray, lab: np.ndarray, eps: float = 0.0,
                 dev: Optional[TorchCG] = None) -> None:
        feat = ku_features(col, xy)
        #: approximate search for pixels far from every known one (``flow(far=...)``):
        #: neighbours within (1 + eps) x the true distances
        self.eps = eps
        f, b = lab == 1, lab == 0
        self.col_f, self.col_b = col[f], col[b]
        self.kk = min(K_KU, len(self.col_f), len(self.col_b))
        #: with ``dev`` (TorchCG, flows=True): the searches in torch there, no KD-trees
        self.device = DeviceSamples(dev, feat[f], feat[b], self.col_f, self.col_b) if dev and self.kk else None
        if self.device is not None:
            self.eps = 0.0     # brute force: exact at no extra cost
            return
        self.tree_f = _tree(feat[f]) if self.kk else None
        self.tree_b = _tree(feat[b]) if self.kk else None

    def flow(self, col_u: np.ndarray, xy_u: np.ndarray, far: Optional[np.ndarray] = None,
             check: Progress = ignore) -> Tuple[np.ndarray, np.ndarray]:
        """(confidence h, foreground share) of the affine mix over the nearest known fg and
        bg pixels of each unknown pixel; (0, 0.5) where a side has no pixel. Pixels marked
        ``far`` are searched approximately (``eps``): deep in a wide band every known pixel
        is nearly as far as the nearest, and an exact search visits most of them.
        ``check(fraction)`` as the searches (70 %) and the weights (30 %) go."""
        nu, kk = len(col_u), self.kk
        if kk == 0:
            return np.zeros(nu), np.full(nu, 0.5)
        q = ku_features(col_u, xy_u)
        if self.device is not None:
            h, wf = self.device.flow(q, col_u, kk, check)
            return S_KU * h, wf
        assert self.tree_f is not None and self.tree_b is not None   # built whenever kk > 0
        nf = np.empty((nu, kk), np.int64)
        nb = np.empty((nu, kk), np.int64)
        groups = [(np.ones(nu, bool) if far is None or not self.eps else ~far, 0.0)]
        if far is not None and self.eps:
            groups.append((far, self.eps))
        done = 0.0
        for sel, eps in groups:
            n = int(sel.sum())
            if n:
                share = 0.35 * n / nu
                nf[sel] = _query(self.tree_f, q[sel], kk, span(check, done, done + share), eps)
                nb[sel] = _query(self.tree_b, q[sel], kk, span(check, done + share, done + 2 * share), eps)
                done += 2 * share
        cf, cb = self.col_f[nf.reshape(nu, kk)], self.col_b[nb.reshape(nu, kk)]
        wk = lle_weights(col_u, np.concatenate([cf, cb], 1), check=span(check, 0.7, 1.0))
        h, wf = ku_mix(col_u, cf, cb, wk)
        return S_KU * h, wf


@dataclass
class Region:
    """One crop's search region (the unknown pixels grown by
    ``information_flow.SEARCH_MARGIN``), numbered compactly: what the flows and the system
    are built over."""
    image: np.ndarray         # the crop (H, W, 3)
    flat: np.ndarray          # the crop's colours, (H * W, 3)
    unk: np.ndarray           # (H, W) bool: the pixels solved for (unknown and not pinned)
    r_idx: np.ndarray         # region pixels, flat indices into the crop
    compact: np.ndarray       # crop flat index -> region index (-1 outside)
    col: np.ndarray           # region colours (float64)
    xy: np.ndarray            # region positions, normalised by the crop's (or ``scale``'s) size
    rlab: np.ndarray          # region labels
    u: np.ndarray             # the unknown pixels, region indices
    known: np.ndarray         # the other region pixels, region indices
    dev: Optional[TorchCG] = None   # searches and weights in torch there (flows=True)

    @property
    def nu(self) -> int:
        return len(self.u)


def colour_mixture(rg: Region, check: Progress) -> Tuple[sp.csr_matrix, sp.csr_matrix]:
    """Rows of R = I - W for the unknown pixels (applied matrix-free), split into the
    unknown columns (r_u) and the known ones (r_k). ``check`` runs from 0.02 to 0.3 and is
    called from this (the calling) thread only."""
    u, known, nu, col = rg.u, rg.known, rg.nu, rg.col
    k = min(K_CM, len(rg.r_idx) - 1)
    feat = cm_features(col, rg.xy)
    if k > 0 and rg.dev is not None:
        nb, wcm = mix_neighbours(rg.dev, feat, col, u, k, span(check, 0.02, 0.3))
    elif k > 0:
        nb = _query(_tree(feat, SEARCH_DTYPE), feat[u], k + 1, span(check, 0.02, 0.14))[:, 1:]  # [0]: the pixel itself
        # Progress comes from this (the calling) thread only: the other stages run in
        # worker threads, and the caller's callback need not be thread-safe.
        wcm = lle_weights(col[u], col[nb], check=span(check, 0.14, 0.3))
    else:  # a region of one pixel: no neighbour to mix from
        k, nb, wcm = 0, np.zeros((nu, 0), np.int64), np.zeros((nu, 0))
    # Row i: 1 at pixel i, -w at its neighbours, split into the unknown columns (r_u)
    # and the known ones (r_k); built straight as CSR, entries in the same order as a
    # COO build then column slices gave (no sort, no duplicate sums: the same matrices).
    cols = np.concatenate([u[:, None], nb], 1)
    vals = np.concatenate([np.ones((nu, 1)), -wcm], 1)
    where = np.full(len(rg.r_idx), -1, np.int64)
    where[u] = np.arange(nu)
    where_k = np.full(len(rg.r_idx), -1, np.int64)
    where_k[known] = np.arange(len(known))
    to_u = where[cols]
    in_u = to_u >= 0

    def rows(mask, index, ncols):
        indptr = np.concatenate([[0], np.cumsum(mask.sum(1))])
        return sp.csr_matrix((vals[mask], index[mask], indptr), shape=(nu, ncols))
    return rows(in_u, to_u, nu), rows(~in_u, where_k[cols], len(known))


def local_and_intra_u(rg: Region, report: Progress = ignore) -> Tuple[sp.csr_matrix, sp.csr_matrix]:
    """Local flow (closed-form windows touching the unknown pixels) plus intra-U flow:
    (the unknown pixels' rows over the unknown columns, the same rows over the known ones)."""
    u, known, nu, col, xy = rg.u, rg.known, rg.nu, rg.col, rg.xy
    near = ndi.binary_dilation(rg.unk)
    near[[0, -1], :] = False
    near[:, [0, -1]] = False
    lap = S_L * sparse_laplacian(rg.flat, rg.image.shape[1], np.flatnonzero(near), rg.compact, len(rg.r_idx),
                                 EPS_LOCAL, check=span(report, 0.0, 0.5))
    lap_u = lap[u][:, u]
    lap_k = lap[u][:, known]
    del lap
    fu = uu_features(col[u], xy[u])
    ku = min(K_U, nu - 1)
    if ku > 0:
        if rg.dev is not None:
            nbu, wuu = intra_u(rg.dev, fu, ku, span(report, 0.5, 1.0))
        else:
            nbu = _query(_tree(fu, SEARCH_DTYPE), fu, ku + 1, span(report, 0.5, 1.0))[:, 1:]
            wuu = intra_u_weights(fu, nbu)
        a_uu = sp.csr_matrix((wuu.ravel(), (np.repeat(np.arange(nu), ku), nbu.ravel())), shape=(nu, nu))
        a_uu = a_uu + a_uu.T
        lap_u = lap_u + S_UU * (sp.diags(np.asarray(a_uu.sum(1)).ravel()) - a_uu)
    return lap_u, lap_k


def known_to_unknown(rg: Region, label: np.ndarray, samples: Optional[KnownSamples],
                      report: Progress = ignore) -> Tuple[np.ndarray, np.ndarray]:
    """K-to-U flow: (its weights h, the foreground share w_f) per unknown pixel."""
    smp = KnownSamples(rg.col, rg.xy, rg.rlab, dev=rg.dev) if samples is None else samples
    far = None
    if smp.eps:
        far = ndi.distance_transform_cdt(label < 0, metric="chessboard").ravel()[rg.r_idx[rg.u]] > FAR_PX
    return smp.flow(rg.col[rg.u], rg.xy[rg.u], far, check=report)
