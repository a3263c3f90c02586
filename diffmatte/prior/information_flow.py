"""Information-flow matting (Aksoy, Aydin and Pollefeys, CVPR 2017), numpy + scipy.

The alpha prior of the default model (``ModelConfig.prior == "ifm"``). On the real
photographs of ``alphamatting-real`` it beats closed-form matting clearly (see
docs/MODEL_CARD.md), because besides closed-form's 3 x 3 local flow it connects every
unknown pixel to pixels of similar colour further away:

- colour-mixture flow: each unknown pixel is written as an affine mix (LLE weights) of its
  K nearest neighbours in (r, g, b, x/W, y/H), and its alpha must be the same mix;
- K-to-U flow: the same mix over its nearest known-foreground and known-background pixels
  gives a direct alpha estimate, trusted by how different the two colour estimates are;
- intra-U flow: unknown pixels of similar colour nearby get similar alphas;
- local flow: Levin et al.'s matting Laplacian (3 x 3 windows, laplacian.py: the one
  closed-form matting applies matrix-free) keeps the matte smooth;
- known-region expansion first: an unknown pixel right next to a known one of nearly the
  same colour takes its label.

Written from the paper (no code of the authors' toolbox is used). The system is solved for
the unknown pixels only, matrix-free for the colour-mixture term, with Jacobi-preconditioned
conjugate gradients started from the K-to-U estimate. Work and memory follow the unknown
band: everything is computed on the band's bounding box grown by a margin.
"""
from __future__ import annotations

from concurrent.futures import ALL_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
import scipy.sparse as sp
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from .cg import TorchCG, pcg
from .laplacian import sparse_laplacian
from .progress import Progress, Relay, ignore, span

K_CM, K_KU, K_U = 20, 7, 5            # neighbours per flow (the paper's values)
S_CM, S_L, S_UU, S_KU = 1.0, 1.0, 0.01, 0.05   # flow weights (the paper's values)
EXPAND_RADIUS = 9                     # known-region expansion: pixels, and colour (0..255) slack
SEARCH_MARGIN = 20                    # neighbours are searched within this many px of the band
EPS_LOCAL = 1e-7                      # the local flow's window regulariser (Levin et al.;
                                      # closed-form's prior uses 1e-6: laplacian.py)
MAX_UNKNOWN = 600_000                 # larger bands are solved in windows (about 2.3 KB per unknown
                                      # pixel in one solve: 600k ~ 1.4 GB)
KU_LEAF = 128                         # K-to-U KD-tree leaf size (see KnownSamples)
FAR_PX = 64                           # windows: K-to-U searched approximately beyond this distance
STAGE_THREADS = 2                     # the flows are assembled side by side in threads and CG's
                                      # products split in two row halves (1: all in one thread)
RELAY_SECONDS = 0.25                 # how often the workers' progress is passed on
SPLIT_MIN = 20_000                    # fewer unknown pixels: CG's products unsplit (thread overhead)
RTOL, MAXITER = 1e-5, 1500    # 1e-5 vs 1e-6: alpha differs by < 1e-3 on the dev photos
QUERY_CHUNK = 20_000          # neighbour queries per KD-tree call: progress between calls

def _query(tree: cKDTree, points: np.ndarray, k: int, check: Progress = ignore,
           eps: float = 0.0) -> np.ndarray:
    """Indices (N, k) of the ``k`` nearest neighbours of ``points`` in ``tree``, asked in
    chunks of QUERY_CHUNK with ``check(fraction)`` after each (the same neighbours as one
    query)."""
    n = len(points)
    out = np.empty((n, k), np.int64)
    for s in range(0, n, QUERY_CHUNK):
        out[s:s + QUERY_CHUNK] = tree.query(points[s:s + QUERY_CHUNK], k=k, eps=eps,
                                            workers=-1)[1].reshape(-1, k)
        check(min(n, s + QUERY_CHUNK) / n)
    return out


def _solve_reduced(image: np.ndarray, label: np.ndarray, factor: int, check: Progress,
                   torch_cg: Optional[TorchCG] = None) -> np.ndarray:
    """Solve at 1/``factor`` resolution (block means; a block is known only when all of its
    pixels agree) and upsample the alpha bilinearly; known pixels keep their labels. The
    coarse level of a windowed solve."""
    from PIL import Image

    h, w = label.shape
    hs, ws = -(-h // factor), -(-w // factor)
    small = np.empty((hs, ws, 3), np.float32)
    small_lab = np.empty((hs, ws), np.int8)
    rows = max(1, 256 // factor)  # block rows per strip: copies of a strip, never of the image
    for r0 in range(0, hs, rows):
        r1 = min(hs, r0 + rows)
        y0, y1 = r0 * factor, min(h, r1 * factor)
        pad = ((0, (r1 - r0) * factor - (y1 - y0)), (0, ws * factor - w))
        img = np.pad(image[y0:y1], pad + ((0, 0),), mode="edge")
        lab = np.pad(label[y0:y1], pad, mode="edge").reshape(r1 - r0, factor, ws, factor)
        small[r0:r1] = img.reshape(r1 - r0, factor, ws, factor, 3).mean((1, 3))
        lo, hi = lab.min((1, 3)), lab.max((1, 3))
        small_lab[r0:r1] = np.where((lo == hi) & (lo >= 0), lo, -1)
        check(0.05 * r1 / hs)   # block means: a few seconds at 24 MP
    small_lab = expand_known(small, small_lab, check=span(check, 0.05, 0.07))
    a_small = _solve(small, small_lab, span(check, 0.07, 1.0), torch_cg=torch_cg)
    big = Image.fromarray(a_small.astype(np.float32)).resize((ws * factor, hs * factor), Image.BILINEAR)
    up = np.clip(np.array(big)[:h, :w], 0, 1)
    up[label == 1] = 1.0
    up[label == 0] = 0.0
    return up


def _bbox(mask: np.ndarray, margin: int) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    ys = np.flatnonzero(mask.any(1))
    xs = np.flatnonzero(mask.any(0))
    h, w = mask.shape
    return ((max(0, ys[0] - margin), min(h, ys[-1] + 1 + margin)),
            (max(0, xs[0] - margin), min(w, xs[-1] + 1 + margin)))


def expand_known(image: np.ndarray, label: np.ndarray, radius: int = EXPAND_RADIUS,
                 check: Progress = ignore) -> np.ndarray:
    """Give an unknown pixel (label -1) the label (0/1) of a known pixel closer than ``radius``
    px whose colour differs by less than ``radius - distance`` (on a 0..255 scale); the
    closest match wins. Returns a new label map; ``check(fraction)`` after each row of
    offsets."""
    h, w = label.shape
    # Only unknown pixels within reach of a known one can change (chessboard distance <= r-1
    # covers every Euclidean distance < r).
    reach = ndi.distance_transform_cdt(label < 0, metric="chessboard") <= radius - 1
    uy, ux = np.nonzero((label < 0) & reach)
    cu = image[uy, ux] * 255.0   # scaled after gathering: no full-size copy, same values
    best = np.full(len(uy), np.inf)
    out_lab = np.full(len(uy), -1, np.int8)
    # The labels padded with "unknown" by the reach: an offset never leaves the padded map,
    # and a pixel outside the image is never taken. Only the known neighbours' colours are
    # compared (most neighbours of a band pixel are unknown): the same scores as comparing
    # every neighbour, 3-4x less work.
    pad = radius - 1
    wp = w + 2 * pad
    labp = np.pad(label, pad, constant_values=-1).ravel()
    base = (uy + pad) * wp + (ux + pad)
    for dy in range(-radius + 1, radius):
        for dx in range(-radius + 1, radius):
            d = float(np.hypot(dy, dx))
            if d >= radius or (dy == 0 and dx == 0):
                continue
            lq = labp[base + (dy * wp + dx)]
            i = np.flatnonzero(lq >= 0)
            if not len(i):
                continue
            diff = np.sqrt(((image[uy[i] + dy, ux[i] + dx] * 255.0 - cu[i]) ** 2).sum(1))
            score = diff - (radius - d)
            take = (score < 0) & (score < best[i])
            i = i[take]
            best[i] = score[take]
            out_lab[i] = lq[i]
        check((dy + radius) / (2 * radius - 1))
    out = label.copy()
    out[uy, ux] = out_lab
    return out


def _lle_weights(fp: np.ndarray, fq: np.ndarray, reg: float = 1e-3, chunk: int = 65536,
                 check: Progress = ignore) -> np.ndarray:
    """Affine weights (rows sum to 1) that best rebuild each ``fp`` (N, C) from its
    neighbours ``fq`` (N, K, C); the K x K Gram matrix D D^T (D: the K differences) is
    regularised by ``reg`` x its trace.

    The Gram matrix has rank at most C (3 colours) plus the ridge, so the K x K system is
    solved through the Woodbury identity with a C x C one: (lam I + D D^T)^-1 1 =
    (1 - D (lam I + D^T D)^-1 D^T 1) / lam, and the 1 / lam goes in the normalisation.
    Same weights to ~1e-13; 8-10x faster than K x K solves for K = 20. ``check(fraction)``
    after each chunk of pixels."""
    n, k, c = fq.shape
    out = np.empty((n, k))
    diag = np.arange(c)
    for s in range(0, n, chunk):
        d = fq[s:s + chunk] - fp[s:s + chunk, None, :]
        small = np.matmul(d.transpose(0, 2, 1), d)              # D^T D, (m, C, C)
        tr = small[:, diag, diag].sum(1)                        # = trace(D D^T)
        small[:, diag, diag] += ((reg * tr + 1e-9) / k)[:, None]
        y = np.linalg.solve(small, d.sum(1)[..., None])         # (lam I + D^T D)^-1 D^T 1
        w = 1.0 - np.matmul(d, y)[..., 0]
        out[s:s + chunk] = w / w.sum(1, keepdims=True)
        check(min(n, s + chunk) / max(n, 1))
    return out


class KnownSamples:
    """The known pixels a K-to-U flow draws its foreground and background mixes from:
    colours ``col`` (N, 3), positions ``xy`` (N, 2, normalised) and labels ``lab`` (1 / 0;
    others are ignored), with their KD-trees. A windowed solve builds it once for the whole
    crop, so every window draws from the same known pixels as one whole solve would."""

    def __init__(self, col: np.ndarray, xy: np.ndarray, lab: np.ndarray, eps: float = 0.0) -> None:
        feat = np.concatenate([col, xy * 10.0], 1)   # positions weighted x10 (the paper's)
        #: approximate search for pixels far from every known one (``flow(far=...)``):
        #: neighbours within (1 + eps) x the true distances
        self.eps = eps
        f, b = lab == 1, lab == 0
        self.col_f, self.col_b = col[f], col[b]
        self.kk = min(K_KU, len(self.col_f), len(self.col_b))
        # The queries are unknown pixels, away from every known one: a search then opens
        # many leaves, and bigger leaves cost fewer node visits (leafsize 128 vs scipy's 16:
        # 2.06 -> 1.17 s for 151k queries of 7 neighbours among 55k pixels; same neighbours).
        self.tree_f = cKDTree(feat[f], leafsize=KU_LEAF) if self.kk else None
        self.tree_b = cKDTree(feat[b], leafsize=KU_LEAF) if self.kk else None

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
        q = np.concatenate([col_u, xy_u * 10.0], 1)
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
        wk = _lle_weights(col_u, np.concatenate([cf, cb], 1), check=span(check, 0.7, 1.0))
        wf = wk[:, :kk].sum(1)
        safe = lambda v: np.where(np.abs(v) < 1e-6, 1e-6, v)  # noqa: E731
        f_col = (wk[:, :kk, None] * cf).sum(1) / safe(wf)[:, None]
        b_col = (wk[:, kk:, None] * cb).sum(1) / safe(1 - wf)[:, None]
        return S_KU * np.clip(((f_col - b_col) ** 2).sum(1) / 3.0, 0, 1), np.clip(wf, 0, 1)


@dataclass
class _Region:
    """One crop's search region (the unknown pixels grown by SEARCH_MARGIN), numbered
    compactly: what the flows and the system are built over."""
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

    @property
    def nu(self) -> int:
        return len(self.u)


def _free_pixels(label: np.ndarray, pinned: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha with the known and pinned pixels set, the pixels to solve for, ``fixed``: the
    alpha of every pixel (flat) that is not solved for)."""
    h, w = label.shape
    lab = label.ravel()
    alpha = (label == 1).astype(np.float32)
    unk = label < 0
    fixed = np.zeros(h * w)          # alpha of every pixel that is not solved for
    fixed[lab == 1] = 1.0
    if pinned is not None:
        pin = unk & np.isfinite(pinned)
        unk = unk & ~pin
        fixed[pin.ravel()] = pinned[pin]
        alpha[pin] = pinned[pin]
    return alpha, unk, fixed


def _region(image: np.ndarray, label: np.ndarray, unk: np.ndarray, scale: Optional[Tuple[int, int]],
            origin: Tuple[int, int]) -> _Region:
    """Number the search region around ``unk`` compactly (memory follows the band)."""
    h, w, _ = image.shape
    sh, sw = scale or (h, w)
    flat = image.reshape(-1, 3)
    region = ndi.maximum_filter(unk.astype(np.uint8), size=2 * SEARCH_MARGIN + 1).ravel() > 0
    r_idx = np.flatnonzero(region)                                   # region pixels, flat indices
    compact = np.full(h * w, -1, np.int64 if h * w >= 2**31 else np.int32)
    compact[r_idx] = np.arange(len(r_idx))
    col = flat[r_idx].astype(np.float64)                             # region colours
    ry, rx = np.divmod(r_idx, w)
    xy = np.stack([(rx + origin[1]) / sw, (ry + origin[0]) / sh], 1)
    rlab = label.ravel()[r_idx]
    u = np.flatnonzero(unk.ravel()[r_idx])                           # compact indices
    known = np.flatnonzero(~unk.ravel()[r_idx])
    return _Region(image, flat, unk, r_idx, compact, col, xy, rlab, u, known)


def _colour_mixture(rg: _Region, check: Progress) -> Tuple[sp.csr_matrix, sp.csr_matrix]:
    """Rows of R = I - W for the unknown pixels (applied matrix-free), split into the
    unknown columns (r_u) and the known ones (r_k). ``check`` runs from 0.02 to 0.3 and is
    called from this (the calling) thread only."""
    u, known, nu, col = rg.u, rg.known, rg.nu, rg.col
    k = min(K_CM, len(rg.r_idx) - 1)
    feat = np.concatenate([col, rg.xy], 1)
    if k > 0:
        nb = _query_in_tree_order(cKDTree(feat), feat, u, k + 1, span(check, 0.02, 0.14))[:, 1:]
        # Progress comes from this (the calling) thread only: the other stages run in
        # worker threads, and the caller's callback need not be thread-safe.
        wcm = _lle_weights(col[u], col[nb], check=span(check, 0.14, 0.3))
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


def _local_and_intra_u(rg: _Region, report: Progress = ignore) -> Tuple[sp.csr_matrix, sp.csr_matrix]:
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
    fu = np.concatenate([col[u], xy[u] / 20.0], 1)
    ku = min(K_U, nu - 1)
    if ku > 0:
        nbu = _query_in_tree_order(cKDTree(fu), fu, None, ku + 1, span(report, 0.5, 1.0))[:, 1:]
        wuu = np.maximum(1 - np.abs(fu[:, None, :] - fu[nbu]).sum(-1), 0)
        a_uu = sp.csr_matrix((wuu.ravel(), (np.repeat(np.arange(nu), ku), nbu.ravel())), shape=(nu, nu))
        a_uu = a_uu + a_uu.T
        lap_u = lap_u + S_UU * (sp.diags(np.asarray(a_uu.sum(1)).ravel()) - a_uu)
    return lap_u, lap_k


def _known_to_unknown(rg: _Region, label: np.ndarray, samples: Optional[KnownSamples],
                      report: Progress = ignore) -> Tuple[np.ndarray, np.ndarray]:
    """K-to-U flow: (its weights h, the foreground share w_f) per unknown pixel."""
    smp = KnownSamples(rg.col, rg.xy, rg.rlab) if samples is None else samples
    far = None
    if smp.eps:
        far = ndi.distance_transform_cdt(label < 0, metric="chessboard").ravel()[rg.r_idx[rg.u]] > FAR_PX
    return smp.flow(rg.col[rg.u], rg.xy[rg.u], far, check=report)


def _flows(rg: _Region, label: np.ndarray, samples: Optional[KnownSamples], check: Progress) -> tuple:
    """The three flows, (r_u, r_k, lap_u, lap_k, h_ku, w_f); ``check`` from 0.02 to 0.75.

    They are independent: the K-to-U flow and the local + intra-U flows run in threads
    beside the colour-mixture flow (the KD-tree queries, numpy's large loops and the LAPACK
    calls release the GIL), so both cores work through the whole assembly. Same
    arithmetic as one after the other, so the same system."""
    if STAGE_THREADS > 1:
        # The workers' progress is relayed: only this thread calls ``check`` (it may raise
        # Cancelled, and the caller's callback need not be thread-safe).
        relay = Relay((0.1, 0.35), 0.3, check)
        with ThreadPoolExecutor(2) as pool:
            ku_job = pool.submit(_known_to_unknown, rg, label, samples, relay.stage(1))
            loc_job = pool.submit(_local_and_intra_u, rg, relay.stage(0))
            r_u, r_k = _colour_mixture(rg, check)
            while True:
                wait([loc_job, ku_job], timeout=RELAY_SECONDS, return_when=ALL_COMPLETED)
                relay.replay()
                if loc_job.done() and ku_job.done():
                    break
            lap_u, lap_k = loc_job.result()
            h_ku, w_f = ku_job.result()
    else:
        r_u, r_k = _colour_mixture(rg, check)
        lap_u, lap_k = _local_and_intra_u(rg, span(check, 0.3, 0.4))
        h_ku, w_f = _known_to_unknown(rg, label, samples, span(check, 0.4, 0.75))
    return r_u, r_k, lap_u, lap_k, h_ku, w_f


def _cg(r_u: sp.csr_matrix, r_ut: sp.csr_matrix, a_loc: sp.csr_matrix, rhs: np.ndarray, start: np.ndarray,
        inv_diag: np.ndarray, check: Progress, torch_cg: Optional[TorchCG]) -> np.ndarray:
    """Solve (S_CM R^T R + A) x = rhs by Jacobi-preconditioned CG from ``start``: numpy
    (its products split in two threads for a large system) or, with ``torch_cg``, the same
    CG in torch on its device."""
    if torch_cg is not None:   # the same CG in torch, on torch_cg's device
        t, csr = torch_cg.vector, torch_cg.csr
        ru, rut, al, inv = csr(r_u), csr(r_ut), csr(a_loc), t(inv_diag)
        return torch_cg.numpy(pcg(lambda v: S_CM * (rut @ (ru @ v)) + al @ v, t(rhs), t(start), lambda r: inv * r,
                                  rtol=RTOL, maxiter=MAXITER, dot=torch_cg.dot, check=check))
    with ThreadPoolExecutor(1) as pool:
        if STAGE_THREADS > 1 and len(rhs) >= SPLIT_MIN:
            apply = _split_operator(r_u, r_ut, a_loc, pool)
        else:
            apply = lambda v: S_CM * (r_ut @ (r_u @ v)) + a_loc @ v  # noqa: E731
        return pcg(apply, rhs, start, lambda r: inv_diag * r, rtol=RTOL, maxiter=MAXITER, check=check)


def _solve(image: np.ndarray, label: np.ndarray,
           check: Progress = ignore,
           pinned: Optional[np.ndarray] = None, scale: Optional[Tuple[int, int]] = None,
           init: Optional[np.ndarray] = None, origin: Tuple[int, int] = (0, 0),
           samples: Optional[KnownSamples] = None, torch_cg: Optional[TorchCG] = None) -> np.ndarray:
    """Alpha over one crop whose labels are -1 unknown, 0 background, 1 foreground.

    Everything is numbered compactly over the search region (the unknown pixels grown by
    SEARCH_MARGIN), so memory follows the band, not the crop. For a window of a tiled solve
    (information_flow_tiles.py): ``pinned`` (float map, NaN = free) fixes unknown pixels to
    given alphas (the window's rim), ``scale`` = (H, W) normalises positions by the whole
    crop's size instead of the window's (the same features as one whole solve), and
    ``init`` starts CG from a given alpha instead of the K-to-U estimate, ``origin`` is the
    window's top-left corner in the crop and ``samples`` the crop's known pixels. With
    ``torch_cg`` the system is solved by the same CG in torch on its device.

    ``check(fraction)`` is called at least every QUERY_CHUNK neighbour queries, chunk of
    weights or windows, and CG iteration; each stage's share is its measured share of the
    time (a 1 MP photo, 23 % unknown): colour-mixture flow 20 %, local and intra-U flow 15 %,
    K-to-U flow 35 %, CG 25 %."""
    alpha, unk, fixed = _free_pixels(label, pinned)
    if not unk.any():
        # Nothing left to solve: every unknown pixel was labelled by known-region expansion
        # (a flat-colour band) or pinned. The system below would be empty (issue #25).
        return alpha
    rg = _region(image, label, unk, scale, origin)
    check(0.02)
    r_u, r_k, lap_u, lap_k, h_ku, w_f = _flows(rg, label, samples, check)

    # The system over the unknown pixels: (S_CM R_u^T R_u + L_u + diag(h)) x = rhs.
    a_known = fixed[rg.r_idx[rg.known]]
    rhs = -(S_CM * (r_u.T @ (r_k @ a_known)) + lap_k @ a_known) + h_ku * w_f
    r_ut = r_u.T.tocsr()
    a_loc = (lap_u + sp.diags(h_ku)).tocsr()
    diag = S_CM * np.bincount(r_u.indices, weights=r_u.data ** 2, minlength=rg.nu) + a_loc.diagonal()
    diag[diag <= 1e-12] = 1.0
    check(0.75)
    start = w_f.copy() if init is None else init.ravel()[rg.r_idx[rg.u]].astype(np.float64)
    inv_diag = 1.0 / diag
    x = _cg(r_u, r_ut, a_loc, rhs, start, inv_diag, span(check, 0.75, 1.0), torch_cg)
    alpha.ravel()[rg.r_idx[rg.u]] = np.clip(np.nan_to_num(x, nan=0.5), 0, 1)
    return alpha


def _split_operator(r_u: sp.csr_matrix, r_ut: sp.csr_matrix, a_loc: sp.csr_matrix,
                    pool: ThreadPoolExecutor) -> Callable[[np.ndarray], np.ndarray]:
    """CG's operator v -> S_CM R^T R v + A v with each sparse product split into two row
    halves, one computed in ``pool``'s thread while this thread computes the other
    (scipy's sparse products release the GIL). Every row is computed as in one product,
    so the result is bit-identical to the unsplit operator."""
    n = r_u.shape[0]
    m = n // 2
    ru = (r_u[:m], r_u[m:])
    ut = (r_ut[:m], r_ut[m:])
    al = (a_loc[:m], a_loc[m:])

    def halves(first, second):
        other = pool.submit(first)
        mine = second()
        return np.concatenate([other.result(), mine])

    def apply(v: np.ndarray) -> np.ndarray:
        t = halves(lambda: ru[0] @ v, lambda: ru[1] @ v)
        return halves(lambda: S_CM * (ut[0] @ t) + al[0] @ v, lambda: S_CM * (ut[1] @ t) + al[1] @ v)
    return apply


def _query_in_tree_order(tree: cKDTree, data: np.ndarray, which: Optional[np.ndarray], k: int,
                         check: Progress = ignore) -> np.ndarray:
    """Indices (n, k) of the ``k`` nearest neighbours in ``tree`` (built on ``data``) of the
    data points ``which`` (all when None), in the order of ``which``. The points are
    queried in the tree's own order, so consecutive queries walk the same nodes (fewer
    cache misses): the same neighbours, 15-40 % less time (1 MP, 40 % band: colour
    mixture 3.4 -> 2.9 s, intra-U 2.1 -> 1.2 s CPU). Asked in chunks (:func:`_query`),
    with ``check(fraction)`` after each."""
    n = len(data)
    pos = np.empty(n, np.int64)
    pos[tree.indices] = np.arange(n)
    which = np.arange(n) if which is None else which
    order = np.argsort(pos[which], kind="stable")
    out = np.empty((len(which), k), np.int64)
    out[order] = _query(tree, data[which[order]], k, check)
    return out
