"""A classical alpha prior: closed-form matting (Levin et al. 2008) solved in torch.
(``solve.solve_prior`` is the one entry point that picks a model's prior by name.)

The prior-conditioned models (``ModelConfig.prior == "cf"``) take this alpha as an extra
input and learn corrections to it. The same function runs in training (batched, on the
GPU) and in the engine (CPU or GPU), so the network sees at inference exactly the kind
of prior it was trained on.

Why a matrix-free solver instead of pymatting: the matting Laplacian of 3 x 3 windows
(laplacian.py, the one implementation information flow's local flow uses too) is applied
with box sums (``laplacian.MatrixFree``), so nothing sparse is ever built, batches run on
a GPU, and memory is a few dozen image-sized maps over the unknown region's bounding box
only. The system
L_UU x_U = -L_UK x_K is solved with Jacobi-preconditioned conjugate gradients (cg.py), started
from the solution one pyramid level coarser (coarse-to-fine), which converges in far
fewer iterations than CG from a flat start.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from .. import trimap_codes as tc
from .cg import pcg
from .laplacian import MatrixFree

EPS = 1e-6           # regulariser of the window covariance (Levin et al., pymatting and
                     # information flow's local flow use 1e-7; laplacian.py)
COARSEST = 48        # stop the pyramid when the shorter side falls below this
ITERS_COARSE = 150   # CG iterations at the coarsest level
ITERS_FINE = 40      # CG iterations at every finer level


def _dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Each image's inner product, shaped (B, 1, 1, 1) to broadcast over (B, 1, H, W)."""
    return (u * v).flatten(1).sum(1).view(-1, 1, 1, 1)


def _cg(lap: MatrixFree, x: torch.Tensor, unknown: torch.Tensor, iters: int) -> torch.Tensor:
    """``iters`` iterations of Jacobi-preconditioned CG (cg.py) on the unknown pixels of
    every image of the batch; known pixels of ``x`` stay fixed."""
    u = unknown.to(lap.image.dtype)
    diag = lap.diagonal().clamp(min=1e-8)
    return pcg(lambda v: lap.apply(v) * u, None, x.to(lap.image.dtype), lambda r: r / diag,
               maxiter=iters, dot=_dot, select=torch.where)


def _downsample(image: torch.Tensor, trimap: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Half resolution: area-averaged image; a coarse pixel is known only if all its fine pixels agree."""
    h, w = image.shape[-2:]
    h2, w2 = h - h % 2, w - w % 2
    img = F.avg_pool2d(image[..., :h2, :w2], 2)
    t = F.avg_pool2d(trimap[..., :h2, :w2], 2)
    tri = torch.where(t <= 0.0, torch.zeros_like(t), torch.where(t >= 1.0, torch.ones_like(t), torch.full_like(t, 0.5)))
    return img, tri


def _solve(image: torch.Tensor, trimap: torch.Tensor, eps: float) -> torch.Tensor:
    """Coarse-to-fine closed-form alpha over a whole (already cropped) batch."""
    levels: List[Tuple[torch.Tensor, torch.Tensor]] = [(image, trimap)]
    while min(levels[-1][0].shape[-2:]) >= 2 * COARSEST:
        levels.append(_downsample(*levels[-1]))
    x: Optional[torch.Tensor] = None
    for depth, (img, tri) in enumerate(reversed(levels)):
        unknown = tc.unknown(tri)
        known = tc.foreground(tri).to(img.dtype)
        if x is None:
            start = torch.where(unknown, torch.full_like(known, 0.5), known)
            iters = ITERS_COARSE
        else:
            up = F.interpolate(x.to(img.dtype), size=img.shape[-2:], mode="bilinear", align_corners=False)
            start = torch.where(unknown, up.clamp(0, 1), known)
            iters = ITERS_FINE
        x = _cg(MatrixFree(img, eps), start, unknown, iters)
    assert x is not None
    return x


def closed_form_prior(image: torch.Tensor, trimap: torch.Tensor, eps: float = EPS,
                      margin: int = 8) -> torch.Tensor:
    """Closed-form alpha (B,1,H,W) float32 in [0, 1] for ``image`` (B,3,H,W) in [0, 1] and a
    {0, 0.5, 1} ``trimap`` (B,1,H,W). Known pixels keep their trimap value.

    Only the bounding box of the batch's unknown pixels (plus ``margin`` px) is solved:
    the Laplacian couples pixels at most 2 px apart, so the rest cannot change the result.
    """
    if image.dim() != 4 or image.shape[1] != 3 or trimap.shape[1] != 1 or image.shape[-2:] != trimap.shape[-2:]:
        raise ValueError(f"closed_form_prior needs image (B,3,H,W) and trimap (B,1,H,W), got "
                         f"{tuple(image.shape)} and {tuple(trimap.shape)}")
    out = tc.foreground(trimap).float()
    unknown = tc.unknown(trimap)
    if not bool(unknown.any()):
        return out
    h, w = trimap.shape[-2:]
    if h < 3 or w < 3:
        # No 3 x 3 window fits: solve on the image grown by repeating its edge pixels (the
        # same colours and labels, so the same matte), then cut the grown rows away.
        py, px = max(0, 3 - h), max(0, 3 - w)
        pad = (0, px, 0, py)
        grown = closed_form_prior(F.pad(image.float(), pad, mode="replicate"),
                                  F.pad(trimap.float(), pad, mode="replicate"), eps, margin)
        return grown[..., :h, :w].contiguous()
    ys = torch.nonzero(unknown.any(dim=3).any(dim=0).any(dim=0)).flatten()
    xs = torch.nonzero(unknown.any(dim=2).any(dim=0).any(dim=0)).flatten()
    h, w = trimap.shape[-2:]
    y0, y1 = max(int(ys[0]) - margin, 0), min(int(ys[-1]) + margin + 1, h)
    x0, x1 = max(int(xs[0]) - margin, 0), min(int(xs[-1]) + margin + 1, w)
    if y1 - y0 < 3 or x1 - x0 < 3:
        y0, y1, x0, x1 = 0, h, 0, w
    with torch.no_grad():
        sol = _solve(image[..., y0:y1, x0:x1].float(), trimap[..., y0:y1, x0:x1].float(), eps)
    # A degenerate system (e.g. a constant crop) must not hand NaN to the network.
    sol = torch.nan_to_num(sol.float(), nan=0.5).clamp(0, 1)
    crop = torch.where(unknown[..., y0:y1, x0:x1], sol, out[..., y0:y1, x0:x1])
    out[..., y0:y1, x0:x1] = crop
    return out
