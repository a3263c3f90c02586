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
- local flow: Levin et al.'s matting Laplacian (3 x 3 windows) keeps the matte smooth;
- known-region expansion first: an unknown pixel right next to a known one of nearly the
  same colour takes its label.

Written from the paper (no code of the authors' toolbox is used). The system is solved for
the unknown pixels only, matrix-free for the colour-mixture term, with Jacobi-preconditioned
conjugate gradients started from the K-to-U estimate. Work and memory follow the unknown
band: everything is computed on the band's bounding box grown by a margin.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np
import scipy.sparse as sp
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

K_CM, K_KU, K_U = 20, 7, 5            # neighbours per flow (the paper's values)
S_CM, S_L, S_UU, S_KU = 1.0, 1.0, 0.01, 0.05   # flow weights (the paper's values)
EXPAND_RADIUS = 9                     # known-region expansion: pixels, and colour (0..255) slack
SEARCH_MARGIN = 20                    # neighbours are searched within this many px of the band
EPS_LOCAL = 1e-7                      # closed-form window regulariser (Levin et al.)
MAX_UNKNOWN = 600_000                 # larger bands are solved at a lower resolution (about 2.3 KB
                                      # per unknown pixel: 600k ~ 1.4 GB) and the alpha upsampled
RTOL, MAXITER = 1e-5, 1500    # 1e-5 vs 1e-6: alpha differs by < 1e-3 on the dev photos


def information_flow_alpha(image: np.ndarray, trimap: np.ndarray,
                           check: Optional[Callable[[float], None]] = None) -> np.ndarray:
    """Alpha (H, W) float32 in [0, 1] of ``image`` (H, W, 3) in [0, 1] given ``trimap``.

    ``check(fraction)`` is called between stages and every few CG iterations with the share
    of the solve done so far (0..1; CG's share from its residual's decay); it may raise to
    stop the solve (the engine raises ``Cancelled`` there and reports progress from it).

    ``trimap`` is (H, W): {0, 0.5, 1} floats or 0/128/255 uint8; below a quarter of the
    range is background, above three quarters foreground, the rest unknown.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3, got shape {img.shape}")
    t = np.asarray(trimap)
    if t.shape != img.shape[:2]:
        raise ValueError(f"trimap shape {t.shape} differs from the image's {img.shape[:2]}")
    scale = 255.0 if t.dtype == np.uint8 or (t.size and float(t.max()) > 1.0) else 1.0
    fg = t > 0.75 * scale   # the project's binning rule (trimap.as_trimap)
    bg = t < 0.25 * scale
    alpha = fg.astype(np.float32)
    unknown = ~(fg | bg)
    if not unknown.any():
        return alpha
    if not (fg.any() or bg.any()):
        alpha[:] = 0.5  # nothing known: no information to propagate
        return alpha
    (y0, y1), (x0, x1) = _bbox(unknown, SEARCH_MARGIN + EXPAND_RADIUS)
    label = np.where(fg, 1, np.where(bg, 0, -1)).astype(np.int8)[y0:y1, x0:x1]
    crop = np.asarray(img[y0:y1, x0:x1], dtype=np.float32)
    factor = int(np.ceil(np.sqrt(int(unknown.sum()) / MAX_UNKNOWN)))
    check = check or (lambda f: None)
    if factor > 1:
        alpha[y0:y1, x0:x1] = _solve_reduced(crop, label, factor, check)
        return alpha
    label = expand_known(crop, label)
    check(0.05)
    alpha[y0:y1, x0:x1] = _solve(crop, label, check)
    return alpha


def _solve_reduced(image: np.ndarray, label: np.ndarray, factor: int,
                   check: Callable[[float], None]) -> np.ndarray:
    """Solve at 1/``factor`` resolution (block means; a block is known only when all of its
    pixels agree) and upsample the alpha bilinearly; known pixels keep their labels."""
    from PIL import Image

    h, w = label.shape
    hs, ws = -(-h // factor), -(-w // factor)
    ph, pw = hs * factor - h, ws * factor - w
    img = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
    lab = np.pad(label, ((0, ph), (0, pw)), mode="edge")
    small = img.reshape(hs, factor, ws, factor, 3).mean((1, 3))
    blocks = lab.reshape(hs, factor, ws, factor)
    lo, hi = blocks.min((1, 3)), blocks.max((1, 3))
    small_lab = np.where((lo == hi) & (lo >= 0), lo, -1).astype(np.int8)
    small_lab = expand_known(small, small_lab)
    a_small = _solve(small, small_lab, check)
    big = Image.fromarray(a_small.astype(np.float32)).resize((ws * factor, hs * factor), Image.BILINEAR)
    up = np.asarray(big)[:h, :w]
    return np.where(label == 1, 1.0, np.where(label == 0, 0.0, np.clip(up, 0, 1))).astype(np.float32)


def _bbox(mask: np.ndarray, margin: int) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    ys = np.flatnonzero(mask.any(1))
    xs = np.flatnonzero(mask.any(0))
    h, w = mask.shape
    return ((max(0, ys[0] - margin), min(h, ys[-1] + 1 + margin)),
            (max(0, xs[0] - margin), min(w, xs[-1] + 1 + margin)))


def expand_known(image: np.ndarray, label: np.ndarray, radius: int = EXPAND_RADIUS) -> np.ndarray:
    """Give an unknown pixel (label -1) the label (0/1) of a known pixel closer than ``radius``
    px whose colour differs by less than ``radius - distance`` (on a 0..255 scale); the
    closest match wins. Returns a new label map."""
    h, w = label.shape
    # Only unknown pixels within reach of a known one can change (chessboard distance <= r-1
    # covers every Euclidean distance < r).
    reach = ndi.distance_transform_cdt(label < 0, metric="chessboard") <= radius - 1
    uy, ux = np.nonzero((label < 0) & reach)
    c = image * 255.0
    cu = c[uy, ux]
    best = np.full(len(uy), np.inf)
    out_lab = np.full(len(uy), -1, np.int8)
    for dy in range(-radius + 1, radius):
        for dx in range(-radius + 1, radius):
            d = float(np.hypot(dy, dx))
            if d >= radius or (dy == 0 and dx == 0):
                continue
            qy, qx = uy + dy, ux + dx
            inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
            qy, qx = np.clip(qy, 0, h - 1), np.clip(qx, 0, w - 1)
            lq = label[qy, qx]
            diff = np.sqrt(((c[qy, qx] - cu) ** 2).sum(1))
            score = diff - (radius - d)
            take = inside & (lq >= 0) & (score < 0) & (score < best)
            best[take] = score[take]
            out_lab[take] = lq[take]
    out = label.copy()
    out[uy, ux] = out_lab
    return out


def _lle_weights(fp: np.ndarray, fq: np.ndarray, reg: float = 1e-3, chunk: int = 16384) -> np.ndarray:
    """Affine weights (rows sum to 1) that best rebuild each ``fp`` (N, C) from its
    neighbours ``fq`` (N, K, C); the Gram matrix is regularised by ``reg`` x its trace.
    Chunked: the N x K x K Gram matrices of a large band would take gigabytes at once."""
    n, k, _ = fq.shape
    out = np.empty((n, k))
    diag = np.arange(k)
    for s in range(0, n, chunk):
        d = fq[s:s + chunk] - fp[s:s + chunk, None, :]
        # Sum of per-channel outer products: much faster than a batched matmul of tiny matrices.
        gram = d[:, :, None, 0] * d[:, None, :, 0]
        for c in range(1, d.shape[2]):
            gram += d[:, :, None, c] * d[:, None, :, c]
        tr = gram[:, diag, diag].sum(1)
        gram[:, diag, diag] += ((reg * tr + 1e-9) / k)[:, None]
        w = np.linalg.solve(gram, np.ones((len(d), k, 1)))[..., 0]
        out[s:s + chunk] = w / w.sum(1, keepdims=True)
    return out


def _local_laplacian(flat: np.ndarray, width: int, centres: np.ndarray, compact: np.ndarray, size: int,
                     eps: float = EPS_LOCAL, chunk: int = 100_000) -> sp.csr_matrix:
    """Levin et al.'s matting Laplacian (3 x 3 windows) over the windows centred on
    ``centres`` (flat indices of interior pixels of an image ``width`` wide whose colours are
    ``flat``), in the compact numbering ``compact`` (flat index -> row, ``size`` rows)."""
    offs = np.array([dy * width + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    parts = []
    for s in range(0, len(centres), chunk):
        idx = centres[s:s + chunk, None] + offs[None]                # (M, 9)
        xc = flat[idx].astype(np.float64)
        xc -= xc.mean(1, keepdims=True)
        cov = xc.transpose(0, 2, 1) @ xc / 9 + (eps / 9) * np.eye(3)[None]
        vals = (1 + xc @ np.linalg.inv(cov) @ xc.transpose(0, 2, 1)) / 9   # (M, 9, 9) affinities
        cidx = compact[idx]
        rows = np.repeat(cidx, 9, 1).ravel()
        cols = np.tile(cidx, (1, 9)).ravel()
        aff = sp.csr_matrix((vals.ravel(), (rows, cols)), shape=(size, size))
        parts.append(sp.diags(np.asarray(aff.sum(1)).ravel()) - aff)
    return sum(parts[1:], parts[0]).tocsr()


def _solve(image: np.ndarray, label: np.ndarray,
           check: Callable[[float], None] = lambda f: None) -> np.ndarray:
    """Alpha over one crop whose labels are -1 unknown, 0 background, 1 foreground.

    Everything is numbered compactly over the search region (the unknown pixels grown by
    SEARCH_MARGIN), so memory follows the band, not the crop."""
    h, w, _ = image.shape
    flat = image.reshape(-1, 3)
    lab = label.ravel()
    alpha = (label == 1).astype(np.float32)
    unk = label < 0
    region = ndi.maximum_filter(unk.astype(np.uint8), size=2 * SEARCH_MARGIN + 1).ravel() > 0
    r_idx = np.flatnonzero(region)                                   # region pixels, flat indices
    compact = np.full(h * w, -1, np.int64 if h * w >= 2**31 else np.int32)
    compact[r_idx] = np.arange(len(r_idx))
    col = flat[r_idx].astype(np.float64)                             # region colours
    ry, rx = np.divmod(r_idx, w)
    xy = np.stack([rx / w, ry / h], 1)
    rlab = lab[r_idx]
    u = np.flatnonzero(rlab < 0)                                     # compact indices
    known = np.flatnonzero(rlab >= 0)
    nu = len(u)

    # Colour-mixture flow: rows of R = I - W for the unknown pixels, applied matrix-free.
    k = min(K_CM, len(r_idx) - 1)
    feat = np.concatenate([col, xy], 1)
    _, nb = cKDTree(feat).query(feat[u], k=k + 1, workers=-1)
    nb = nb[:, 1:]
    wcm = _lle_weights(col[u], col[nb])
    rows = np.concatenate([np.arange(nu), np.repeat(np.arange(nu), k)])
    r_all = sp.csr_matrix((np.concatenate([np.ones(nu), -wcm.ravel()]), (rows, np.concatenate([u, nb.ravel()]))),
                          shape=(nu, len(r_idx)))
    r_u = r_all[:, u].tocsr()
    r_k = r_all[:, known].tocsr()
    del feat, nb, wcm, r_all
    check(0.35)

    # Local flow (closed-form windows touching the unknown pixels) and intra-U flow.
    near = ndi.binary_dilation(unk)
    near[[0, -1], :] = False
    near[:, [0, -1]] = False
    lap = S_L * _local_laplacian(flat, w, np.flatnonzero(near), compact, len(r_idx))
    lap_u = lap[u][:, u]
    lap_k = lap[u][:, known]
    del lap
    fu = np.concatenate([col[u], xy[u] / 20.0], 1)
    ku = min(K_U, nu - 1)
    if ku > 0:
        _, nbu = cKDTree(fu).query(fu, k=ku + 1, workers=-1)
        nbu = nbu[:, 1:]
        wuu = np.maximum(1 - np.abs(fu[:, None, :] - fu[nbu]).sum(-1), 0)
        a_uu = sp.csr_matrix((wuu.ravel(), (np.repeat(np.arange(nu), ku), nbu.ravel())), shape=(nu, nu))
        a_uu = a_uu + a_uu.T
        lap_u = lap_u + S_UU * (sp.diags(np.asarray(a_uu.sum(1)).ravel()) - a_uu)

    check(0.45)
    # K-to-U flow: the affine mix over the nearest known fg and bg pixels (xy weighted x10).
    h_ku = np.zeros(nu)
    w_f = np.full(nu, 0.5)
    f_idx = np.flatnonzero(rlab == 1)
    b_idx = np.flatnonzero(rlab == 0)
    kk = min(K_KU, len(f_idx), len(b_idx))
    if kk > 0:
        feat = np.concatenate([col, xy * 10.0], 1)
        _, nf = cKDTree(feat[f_idx]).query(feat[u], k=kk, workers=-1)
        _, nbk = cKDTree(feat[b_idx]).query(feat[u], k=kk, workers=-1)
        nf, nbk = f_idx[nf.reshape(nu, kk)], b_idx[nbk.reshape(nu, kk)]
        wk = _lle_weights(col[u], col[np.concatenate([nf, nbk], 1)])
        wf = wk[:, :kk].sum(1)
        safe = lambda v: np.where(np.abs(v) < 1e-6, 1e-6, v)  # noqa: E731
        f_col = (wk[:, :kk, None] * col[nf]).sum(1) / safe(wf)[:, None]
        b_col = (wk[:, kk:, None] * col[nbk]).sum(1) / safe(1 - wf)[:, None]
        h_ku = S_KU * np.clip(((f_col - b_col) ** 2).sum(1) / 3.0, 0, 1)
        w_f = np.clip(wf, 0, 1)

    a_known = (rlab[known] == 1).astype(np.float64)
    rhs = -(S_CM * (r_u.T @ (r_k @ a_known)) + lap_k @ a_known) + h_ku * w_f
    r_ut = r_u.T.tocsr()
    a_loc = (lap_u + sp.diags(h_ku)).tocsr()
    diag = S_CM * np.asarray(r_u.multiply(r_u).sum(0)).ravel() + a_loc.diagonal()
    diag[diag <= 1e-12] = 1.0
    check(0.55)
    x = _pcg(lambda v: S_CM * (r_ut @ (r_u @ v)) + a_loc @ v, rhs, 1.0 / diag, w_f.copy(),
             check=lambda f: check(0.55 + 0.45 * f))
    alpha.ravel()[r_idx[u]] = np.clip(np.nan_to_num(x, nan=0.5), 0, 1)
    return alpha


def _pcg(apply, b: np.ndarray, inv_diag: np.ndarray, x: np.ndarray,
         rtol: float = RTOL, maxiter: int = MAXITER,
         check: Callable[[float], None] = lambda f: None) -> np.ndarray:
    """Jacobi-preconditioned conjugate gradients for the SPD operator ``apply``, started at
    ``x``, until the residual norm falls below ``rtol`` x |b|; ``check(fraction)`` every 10
    iterations. Written out because scipy's
    ``cg`` spent as long in its Python wrappers as in the matrix products here."""
    r = b - apply(x)
    z = inv_diag * r
    p = z.copy()
    rz = float(r @ z)
    stop = rtol * max(float(np.linalg.norm(b)), 1e-30)
    r0 = max(float(np.linalg.norm(r)), stop * (1 + 1e-9))
    for it in range(maxiter):
        rn = float(np.linalg.norm(r))
        if rn <= stop:
            break
        if it % 10 == 0:  # progress: how far the residual has fallen on a log scale
            check(min(1.0, max(0.0, np.log(r0 / max(rn, 1e-300)) / np.log(r0 / stop))))
        ap = apply(p)
        pap = float(p @ ap)
        if pap <= 0:
            break  # numerically singular direction: keep what we have
        step = rz / pap
        x += step * p
        r -= step * ap
        z = inv_diag * r
        rz_new = float(r @ z)
        p *= rz_new / rz
        p += z
        rz = rz_new
    return x
