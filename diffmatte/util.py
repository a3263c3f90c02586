"""Two small rules shared by the samplers and the prior (the lowest layer of diffmatte):
``ramp``, the one cross-fade of overlapping tiles and windows, and ``digest``, the content
hash that keys the tile cache and the prior memo."""
from __future__ import annotations

import hashlib

import numpy as np
import torch

__all__ = ["digest", "ramp"]


def ramp(o0: int, o1: int, c0: int, c1: int, limit: int, b: int) -> torch.Tensor:
    """The engine's one cross-fade rule (the sampler's tiles, the prior's windows): the 1-D
    box-blurred indicator of [c0, c1) sampled at pixel centres o0..o1-1 (no ramp at the
    image border, which behaves as if the edge tile went on forever)."""
    pos = torch.arange(o0, o1, dtype=torch.float32) + 0.5
    w = torch.ones(o1 - o0)
    if b > 0 and c0 > 0:
        w = torch.minimum(w, ((pos - (c0 - b)) / (2 * b)).clamp(0, 1))
    if b > 0 and c1 < limit:
        w = torch.minimum(w, (((c1 + b) - pos) / (2 * b)).clamp(0, 1))
    return w


def digest(*parts) -> bytes:
    """Content hash of tensors, arrays and small Python values."""
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        if isinstance(p, torch.Tensor):
            p = p.detach()
            h.update(str((tuple(p.shape), p.dtype)).encode())
            h.update(p.contiguous().cpu().view(-1).view(torch.uint8).numpy().tobytes()
                     if p.dtype == torch.bfloat16 else p.contiguous().cpu().numpy().tobytes())
        elif isinstance(p, np.ndarray):
            h.update(str((p.shape, p.dtype)).encode())
            h.update(np.ascontiguousarray(p).data.cast("B"))  # read in place, no copy
        else:
            h.update(repr(p).encode())
    return h.digest()
