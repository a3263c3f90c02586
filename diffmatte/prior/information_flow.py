"""Information-flow matting (Aksoy, Aydin and Pollefeys, CVPR 2017), numpy + scipy, or torch
on a device (``TorchCG``: the CG, and with ``flows=True`` the neighbour searches and weights).

The alpha prior of the default model (``ModelConfig.prior == "ifm"``). On the real
photographs of ``alphamatting-real`` it beats closed-form matting clearly (see
docs/MODEL_CARD.md), because besides closed-form's 3 x 3 local flow it connects every
unknown pixel to pixels of similar colour further away:

- colour-mixture flow: each unknown pixel is written as an affine mix (LLE weights) of its
  K nearest neighbours in (r, g, b, x/W, y/H), and its alpha must be the same mix;
- K-to-U flow: the same mix over its nearest known-foreground and known-background pixels
  gives a direct alpha estimate, trusted by how different the two colour estimates are;
- intra-U flow: unknown pixels of similar colour nearby get similar alphas;
- local flow: Levin et al.'s matting Laplacian (3 x 3 windows) keeps the matte smooth;
- known-region expansion first: an unknown pixel right next to a known one of nearly the
  same colour takes its label.

Written from the paper (no code of the authors' toolbox is used). The flows are assembled
in flows.py (the local flow's Laplacian in laplacian.py, shared with closed-form matting);
this module expands the known region, numbers the search region, and solves the system
for the unknown pixels only, matrix-free for the colour-mixture term, with
Jacobi-preconditioned conjugate gradients started from the K-to-U estimate. Work and memory
follow the unknown band: everything is computed on the band's bounding box grown by a
margin.
"""
from __future__ import annotations

from concurrent.futures import ALL_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Optional, Tuple

import numpy as np
import scipy.sparse as sp
from scipy import ndimage as ndi

from .cg import TorchCG, pcg
from .flows import S_CM, KnownSamples, Region, colour_mixture, known_to_unknown, local_and_intra_u
from .progress import Progress, Relay, ignore, span

EXPAND_RADIUS = 9                     # known-region expansion: pixels, and colour (0..255) slack
SEARCH_MARGIN = 20                    # neighbours are searched within this many px of the band
MAX_UNKNOWN = 600_000                 # larger bands are solved in windows (about 2.3 KB per unknown
                                      # pixel in one solve: 600k ~ 1.4 GB)
STAGE_THREADS = 2                     # the flows are assembled side by side in threads and CG's
                                      # products split in two row halves (1: all in one thread)
RELAY_SECONDS = 0.25                 # how often the workers' progress is passed on
SPLIT_MIN = 20_000                    # fewer unknown pixels: CG's products unsplit (thread overhead)
RTOL, MAXITER = 1e-5, 1500    # 1e-5 vs 1e-6: alpha differs by < 1e-3 on the dev photos


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
                 check: Progress = ignore, threads: Optional[int] = None) -> np.ndarray:
    """Give an unknown pixel (label -1) the label (0/1) of a known pixel closer than ``radius``
    px whose colour differs by less than ``radius - distance`` (on a 0..255 scale); the
    closest match wins. Returns a new label map; ``check(fraction)`` after each row of
    offsets. ``threads`` (default STAGE_THREADS): the candidates are split between that many
    threads (each pixel's answer is its own, so the labels are the same)."""
    h, w = label.shape
    # Only unknown pixels within reach of a known one can change (chessboard distance <= r-1
    # covers every Euclidean distance < r): those with a known pixel in the (2r - 1)-square
    # around them, a separable maximum filter (the same set as a chessboard distance
    # transform, 7x faster).
    reach = ndi.maximum_filter((label >= 0).view(np.uint8), size=2 * radius - 1, mode="constant", cval=0) > 0
    uy, ux = np.nonzero((label < 0) & reach)
    # The labels padded with "unknown" by the reach: an offset never leaves the padded map,
    # and a pixel outside the image is never taken.
    labp = np.pad(label, radius - 1, constant_values=-1).ravel()
    parts = np.array_split(np.arange(len(uy)), max(1, STAGE_THREADS if threads is None else threads))
    if len(parts) > 1 and len(uy) >= SPLIT_MIN:
        # numpy's gathers and arithmetic on large arrays release the GIL: the parts run side
        # by side; progress comes from this thread's part only
        with ThreadPoolExecutor(len(parts) - 1) as pool:
            jobs = [pool.submit(_closest_labels, image, labp, uy[p], ux[p], radius) for p in parts[1:]]
            out_lab = np.concatenate([_closest_labels(image, labp, uy[parts[0]], ux[parts[0]], radius, check)]
                                     + [j.result() for j in jobs])
    else:
        out_lab = _closest_labels(image, labp, uy, ux, radius, check)
    out = label.copy()
    out[uy, ux] = out_lab
    return out


def _closest_labels(image: np.ndarray, labp: np.ndarray, uy: np.ndarray, ux: np.ndarray, radius: int,
                    check: Progress = ignore) -> np.ndarray:
    """expand_known's answer for the candidates (uy, ux): the label of the best known
    neighbour, or -1; ``labp``: the labels padded by ``radius - 1``, flat."""
    w = image.shape[1]
    flat = image.reshape(-1, 3)
    at = uy * w + ux                                 # flat image index of each candidate
    cu = np.take(flat, at, axis=0) * 255.0           # scaled after gathering: no full-size copy
    best = np.full(len(uy), np.inf)
    out_lab = np.full(len(uy), -1, np.int8)
    pad = radius - 1
    wp = w + 2 * pad
    base = (uy + pad) * wp + (ux + pad)
    for dy in range(-radius + 1, radius):
        for dx in range(-radius + 1, radius):
            d = float(np.hypot(dy, dx))
            if d >= radius or (dy == 0 and dx == 0):
                continue
            lq = labp[base + (dy * wp + dx)]
            # Every candidate's neighbour colour at once (np.take: 3x faster than fancy
            # indexing rows): a neighbour off the image or across a row's end is clipped or
            # wrapped to some pixel, and its label (-1 in the padded map) drops it below.
            # Scores are compared only where the colour is close enough to count: the same
            # scores and labels as comparing every known neighbour, 2.2x faster (24 MP, 2 % band).
            near = np.clip(at + (dy * w + dx), 0, len(flat) - 1)
            diff = np.take(flat, near, axis=0)
            diff *= 255.0
            diff -= cu
            d2 = np.einsum("ij,ij->i", diff, diff)
            i = np.flatnonzero((d2 < (radius - d) ** 2) & (lq >= 0))
            score = np.sqrt(d2[i]) - (radius - d)
            take = (score < 0) & (score < best[i])
            i = i[take]
            best[i] = score[take]
            out_lab[i] = lq[i]
        check((dy + radius) / (2 * radius - 1))
    return out_lab


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
            origin: Tuple[int, int], dev: Optional[TorchCG] = None) -> Region:
    """Number the search region around ``unk`` compactly (memory follows the band); ``dev``:
    the flows' searches and weights in torch there."""
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
    return Region(image, flat, unk, r_idx, compact, col, xy, rlab, u, known, dev)


def _flows(rg: Region, label: np.ndarray, samples: Optional[KnownSamples], check: Progress,
           threads: int) -> tuple:
    """The three flows, (r_u, r_k, lap_u, lap_k, h_ku, w_f); ``check`` from 0.02 to 0.75.

    They are independent: the K-to-U flow and the local + intra-U flows run in threads
    beside the colour-mixture flow (the KD-tree queries and numpy's and scipy's large loops
    release the GIL), so both cores work through the whole assembly. Same
    arithmetic as one after the other, so the same system. ``threads`` 1: one after the
    other in this thread."""
    if threads > 1:
        # The workers' progress is relayed: only this thread calls ``check`` (it may raise
        # Cancelled, and the caller's callback need not be thread-safe).
        relay = Relay((0.1, 0.35), 0.3, check)
        with ThreadPoolExecutor(2) as pool:
            ku_job = pool.submit(known_to_unknown, rg, label, samples, relay.stage(1))
            loc_job = pool.submit(local_and_intra_u, rg, relay.stage(0))
            try:
                r_u, r_k = colour_mixture(rg, check)
                while True:
                    wait([loc_job, ku_job], timeout=RELAY_SECONDS, return_when=ALL_COMPLETED)
                    relay.replay()
                    if loc_job.done() and ku_job.done():
                        break
            except BaseException:
                relay.stop()   # a cancel: the workers end at their next report, not at their end
                raise
            lap_u, lap_k = loc_job.result()
            h_ku, w_f = ku_job.result()
    else:
        r_u, r_k = colour_mixture(rg, check)
        lap_u, lap_k = local_and_intra_u(rg, span(check, 0.3, 0.4))
        h_ku, w_f = known_to_unknown(rg, label, samples, span(check, 0.4, 0.75))
    return r_u, r_k, lap_u, lap_k, h_ku, w_f


def _cg(r_u: sp.csr_matrix, r_ut: sp.csr_matrix, a_loc: sp.csr_matrix, rhs: np.ndarray, start: np.ndarray,
        inv_diag: np.ndarray, check: Progress, torch_cg: Optional[TorchCG], rtol: float,
        threads: int) -> np.ndarray:
    """Solve (S_CM R^T R + A) x = rhs by Jacobi-preconditioned CG from ``start``: numpy in
    float32 (its products split in two threads for a large system) or, with ``torch_cg``,
    the same CG in torch on its device."""
    if torch_cg is not None:   # the same CG in torch, on torch_cg's device
        t, csr = torch_cg.vector, torch_cg.csr
        ru, rut, al, inv = csr(r_u), csr(r_ut), csr(a_loc), t(inv_diag)
        return torch_cg.numpy(pcg(lambda v: S_CM * (rut @ (ru @ v)) + al @ v, t(rhs), t(start), lambda r: inv * r,
                                  rtol=rtol, maxiter=MAXITER, dot=torch_cg.dot, check=check))
    # float32 on the CPU: CG's sparse products are memory-bound, and single precision moves a
    # third less data (a 1 MP, 40 % band: CG 2.34 -> 1.67 s, the same 141 iterations, alpha
    # within 6e-5 of float64's); the inner products still add up in float64 (cg.dot).
    r_u, r_ut, a_loc = (m.astype(np.float32) for m in (r_u, r_ut, a_loc))
    rhs, start, inv_diag = (v.astype(np.float32) for v in (rhs, start, inv_diag))
    with ThreadPoolExecutor(1) as pool:
        if threads > 1 and len(rhs) >= SPLIT_MIN:
            apply = _split_operator(r_u, r_ut, a_loc, pool)
        else:
            apply = lambda v: S_CM * (r_ut @ (r_u @ v)) + a_loc @ v  # noqa: E731
        return pcg(apply, rhs, start, lambda r: inv_diag * r, rtol=rtol, maxiter=MAXITER, check=check)


def _solve(image: np.ndarray, label: np.ndarray,
           check: Progress = ignore,
           pinned: Optional[np.ndarray] = None, scale: Optional[Tuple[int, int]] = None,
           init: Optional[np.ndarray] = None, origin: Tuple[int, int] = (0, 0),
           samples: Optional[KnownSamples] = None, torch_cg: Optional[TorchCG] = None,
           rtol: float = RTOL, threads: Optional[int] = None) -> np.ndarray:
    """Alpha over one crop whose labels are -1 unknown, 0 background, 1 foreground.

    Everything is numbered compactly over the search region (the unknown pixels grown by
    SEARCH_MARGIN), so memory follows the band, not the crop. For a window of a tiled solve
    (information_flow_tiles.py): ``pinned`` (float map, NaN = free) fixes unknown pixels to
    given alphas (the window's rim), ``scale`` = (H, W) normalises positions by the whole
    crop's size instead of the window's (the same features as one whole solve), and
    ``init`` starts CG from a given alpha instead of the K-to-U estimate, ``origin`` is the
    window's top-left corner in the crop and ``samples`` the crop's known pixels. With
    ``torch_cg`` the system is solved by the same CG in torch on its device, and with
    ``torch_cg.flows`` the neighbour searches and weights run there too (device_flows.py).
    ``rtol``: CG's stop rule (relative residual). ``threads``: the stages' threads (default
    STAGE_THREADS; 1 where other solves already run beside this one).

    ``check(fraction)`` is called at least every ``flows.QUERY_CHUNK`` neighbour queries, chunk of
    weights or windows, and CG iteration; each stage's share is its measured share of the
    time (a 1 MP photo, 23 % unknown): colour-mixture flow 20 %, local and intra-U flow 15 %,
    K-to-U flow 35 %, CG 25 %."""
    alpha, unk, fixed = _free_pixels(label, pinned)
    if not unk.any():
        # Nothing left to solve: every unknown pixel was labelled by known-region expansion
        # (a flat-colour band) or pinned. The system below would be empty (issue #25).
        return alpha
    rg = _region(image, label, unk, scale, origin, torch_cg if torch_cg is not None and torch_cg.flows else None)
    check(0.02)
    threads = STAGE_THREADS if threads is None else threads
    r_u, r_k, lap_u, lap_k, h_ku, w_f = _flows(rg, label, samples, check, threads)

    # The system over the unknown pixels: (S_CM R_u^T R_u + L_u + diag(h)) x = rhs.
    a_known = fixed[rg.r_idx[rg.known]]
    rhs = -(S_CM * (r_u.T @ (r_k @ a_known)) + lap_k @ a_known) + h_ku * w_f
    check(0.75)   # a cancel is seen between the assembly's steps (each up to a second in a 24 MP window)
    r_ut = r_u.T.tocsr()
    check(0.75)
    a_loc = (lap_u + sp.diags(h_ku)).tocsr()
    diag = S_CM * np.bincount(r_u.indices, weights=r_u.data ** 2, minlength=rg.nu) + a_loc.diagonal()
    diag[diag <= 1e-12] = 1.0
    check(0.75)
    start = w_f.copy() if init is None else init.ravel()[rg.r_idx[rg.u]].astype(np.float64)
    inv_diag = 1.0 / diag
    x = _cg(r_u, r_ut, a_loc, rhs, start, inv_diag, span(check, 0.75, 1.0), torch_cg, rtol, threads)
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
