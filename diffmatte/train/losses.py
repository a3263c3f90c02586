"""DiffMatte training losses (spec section 3.5), computed in [-1, 1] space.

``pred`` and ``target`` are B x 1 x H x W tensors in [-1, 1]; ``trimap`` holds
{0, 0.5, 1}. The official masked terms divide by the number of unknown (or known)
pixels scaled to a 512 x 512 crop; here they are plain per-masked-pixel means, which is
what that normaliser computes for the 512-px crops it was written for and keeps the
loss balance independent of the crop size we train at.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..trimap_codes import unknown

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_GAUSS_1D = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])


def unknown_mask(trimap: torch.Tensor) -> torch.Tensor:
    """1 where the trimap is unknown (0.5), else 0."""
    return unknown(trimap).to(trimap.dtype)


def _masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    denom = mask.sum()
    if denom <= 0:
        return pred.sum() * 0.0  # keeps the graph (and DDP) happy when a batch has no pixels
    return (torch.abs(pred - target) * mask).sum() / denom


def sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel x and y derivatives with zero padding 1."""
    kx = _SOBEL_X.to(x.device, x.dtype).view(1, 1, 3, 3)
    ky = kx.transpose(2, 3)
    return F.conv2d(x, kx, padding=1), F.conv2d(x, ky, padding=1)


def gradient_penalty(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 between Sobel gradients in the unknown region, plus 0.01 x |predicted gradient|."""
    px, py = sobel(pred)
    tx, ty = sobel(target)
    return (_masked_l1(px, tx, mask) + _masked_l1(py, ty, mask)
            + 0.01 * _masked_l1(px, torch.zeros_like(px), mask)
            + 0.01 * _masked_l1(py, torch.zeros_like(py), mask))


def _gauss_kernel(x: torch.Tensor) -> torch.Tensor:
    k = torch.outer(_GAUSS_1D, _GAUSS_1D) / 256.0
    return k.to(x.device, x.dtype).view(1, 1, 5, 5)


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel)


def laplacian_pyramid(x: torch.Tensor, levels: int = 5) -> list[torch.Tensor]:
    """Band-pass levels (finest first) plus the low-pass residual as the last entry.

    Levels whose input would be smaller than 4 px (too small for the reflect-padded
    5x5 blur) are left out, so tiny crops get fewer band-pass levels.
    """
    kernel = _gauss_kernel(x)
    out = []
    cur = x
    for _ in range(levels):
        h, w = cur.shape[-2:]
        if min(h, w) < 4:
            break
        cur = cur[..., : h - h % 2, : w - w % 2]  # odd sizes are cropped to even
        down = _blur(cur, kernel)[..., ::2, ::2]
        up = torch.zeros_like(cur)
        up[..., ::2, ::2] = down * 4  # zero-insert, x4, blur
        out.append(cur - _blur(up, kernel))
        cur = down
    out.append(cur)
    return out


def laplacian_loss(pred: torch.Tensor, target: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """sum_l 2^l * L1(level_l) / levels over the band-pass levels, whole crop."""
    pp, tp = laplacian_pyramid(pred, levels), laplacian_pyramid(target, levels)
    total = pred.new_zeros(())
    for lvl in range(len(pp) - 1):
        total = total + (2 ** lvl) * F.l1_loss(pp[lvl], tp[lvl])
    return total / levels


def matting_losses(pred: torch.Tensor, target: torch.Tensor, trimap: torch.Tensor) -> dict[str, torch.Tensor]:
    """The five DiffMatte loss terms (unit weights in the official recipe)."""
    pred = pred.float()
    target = target.float()
    u = unknown_mask(trimap).float()
    k = 1.0 - u
    return {
        "mse": ((pred - target) ** 2).flatten(1).mean(1).mean(),
        "unknown_l1": _masked_l1(pred, target, u),
        "known_l1": _masked_l1(pred, target, k),
        "grad": gradient_penalty(pred, target, u),
        "laplacian": laplacian_loss(pred, target),
    }


def total_loss(terms: dict[str, torch.Tensor], weights: dict[str, float] | None = None) -> torch.Tensor:
    """Weighted sum of the terms; missing weights default to 1."""
    weights = weights or {}
    return sum(weights.get(k, 1.0) * v for k, v in terms.items())
