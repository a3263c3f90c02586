"""Memory budget of a refine: how much it may use, what it needs, which tile sizes fit.

The estimates are per pixel, from the architecture (channel counts), checked against
measured peaks in docs/TILING.md. They err on the large side: a refine that the model says
fits should fit; one that cannot fit even with the smallest tiles is refused before any
work starts, with the numbers in the message.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from ..modeling.config import ModelConfig

GiB = 2 ** 30
MiB = 2 ** 20
#: Largest decoder core tried (the quadtree splits it further where that saves work).
DECODER_TILES: Sequence[int] = (512, 384, 256, 128, 64)
ENCODER_TILES: Sequence[int] = (1536, 1024, 768, 512, 256, 128)
#: Share of the free memory an automatic budget takes (the rest is left to the system).
AUTO_FRACTION = 0.7
#: Bytes per pixel of whole-image buffers: input and float copies of image (3+12) and
#: trimap (1+4), x_t, x0, the known-region base, a temporary, the sample sum and the output.
FULL_IMAGE_BYTES = 48


class MemoryBudgetError(MemoryError):
    """The refine cannot fit in the memory budget, even with the smallest tiles."""


def parse_bytes(value: Union[int, float, str, None]) -> Optional[int]:
    """``4e9``, ``"4G"``, ``"4GB"``, ``"512M"``, ``"1.5GiB"`` -> bytes; None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"max_memory must be positive, got {value}")
        return int(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", str(value).lower())
    if not m:
        raise ValueError(f"max_memory must be bytes or a size like '4G' or '512MB', got {value!r}")
    n = float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " ")
    if n <= 0:
        raise ValueError(f"max_memory must be positive, got {value!r}")
    return int(n)


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device`` now: CUDA free + this process's reusable cache, or the
    system's available RAM (MemAvailable on Linux)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil  # optional

        return int(psutil.virtual_memory().available)
    except ImportError:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def decoder_bytes_per_px(cfg: ModelConfig) -> int:
    """Peak activation bytes per decoded pixel: the last up block's full-resolution tensors
    (its bilinear input copy and about nine maps of its output width) dominate."""
    cin = cfg.upsample_in[-2] + cfg.downsample_in[1]
    return 4 * (cin + 9 * cfg.upsample_in[-1]) + 64


def encoder_bytes_per_px(cfg: ModelConfig) -> int:
    """ResNet encoders: peak per input pixel of a tile (stem at stride 2)."""
    return 4 * (cfg.in_chans + 2 * cfg.stem[0]) + 16


def vit_encoder_bytes(cfg: ModelConfig, hp: int, wp: int, attention_bytes: int) -> int:
    """Whole-image ViT encoder: token activations (about 12 maps of ``embed_dim`` per token,
    the MLP's 4x included), its input, and the chunked global attention's working set."""
    tokens = (hp // cfg.patch_size) * (wp // cfg.patch_size)
    return tokens * cfg.embed_dim * 4 * 12 + hp * wp * 4 * (cfg.in_chans + 1) + attention_bytes


def attention_chunk(cfg: ModelConfig, hp: int, wp: int, budget: int) -> int:
    """Query tokens per chunk of global attention so that bias + scores + probabilities
    (3 x heads x chunk x tokens x 4 bytes) stay within ``budget`` (at least one token row)."""
    w_tok = wp // cfg.patch_size
    tokens = (hp // cfg.patch_size) * w_tok
    per_query = 3 * cfg.num_heads * tokens * 4
    return max(w_tok, min(tokens, budget // max(per_query, 1)))


def prior_bytes(kind: str, h: int, w: int, unknown: int) -> int:
    """Peak working set of a prior model's prior solve for an H x W image with ``unknown``
    unknown pixels (measured, docs/TILING.md "The default model's prior"). Information flow:
    about 2.3 KB per unknown pixel of one solve plus ~40 B per image pixel; a band larger
    than one solve is solved in windows, so its peak is that of the windows solved at once
    (or the coarse solve's), plus a few whole-crop maps, plus the memo's kept solves. Closed form (torch, bounding box): estimated from
    its float maps (about 30 per pixel), not measured."""
    px = h * w
    if kind == "ifm":
        from ..prior.information_flow import MAX_UNKNOWN
        from ..prior.windows import COARSE_UNKNOWN, PARALLEL_WINDOWS, TILE_CORE, TILE_MARGIN

        from ..prior.memo import ENTRIES

        # the engine's prior memo keeps ENTRIES earlier solves of the image between refines
        # (5 bytes per pixel each: trimap codes + float32 alpha)
        kept = 5 * ENTRIES * px
        if unknown <= MAX_UNKNOWN:
            return kept + 48 * px + 2400 * unknown
        return kept + 64 * px + 2400 * max(COARSE_UNKNOWN, PARALLEL_WINDOWS * (TILE_CORE + 2 * TILE_MARGIN) ** 2)
    if kind == "cf":
        return 120 * px
    return 0


@dataclass
class MemoryPlan:
    budget: int
    fixed: int            # weights + whole-image buffers + feature map (+ ViT encoder)
    tile: int             # largest decoder core
    encoder_tile: int
    attention_chunk: int  # ViT only (0 otherwise)
    cache: int            # bytes the tile cache may hold
    estimate: int         # predicted peak of this refine
    whole_fits: bool      # the whole image as one decoder tile would fit too
    batch: int = 1        # decoder tiles per call (CUDA: as many as fit, up to 32)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("budget", "fixed", "tile", "encoder_tile", "attention_chunk",
                                              "cache", "estimate", "whole_fits", "batch")}


def plan_memory(cfg: ModelConfig, n_params: int, h: int, w: int, device: torch.device, halo: int,
                enc_halo: int, budget: Optional[int] = None, cache: int = 512 * MiB,
                tile: Optional[int] = None, element: int = 4, has_prior: bool = False,
                prior_peak: int = 0) -> MemoryPlan:
    """Pick tile sizes for an H x W refine within ``budget`` (None: automatic from free memory).

    ``tile`` forces the largest decoder core (0: whole image). ``cache`` is shrunk to what
    is left. ``prior_peak`` (:func:`prior_bytes`) is the prior solve's working set, which
    comes and goes before the network runs. Raises :class:`MemoryBudgetError` when even the
    smallest tiles, or the prior solve, do not fit.
    """
    from ..modeling.model import padded_size

    auto = budget is None
    if auto:
        budget = int(available_bytes(device) * AUTO_FRACTION)
    hp, wp = padded_size(h, w)
    px = h * w
    full = px * (FULL_IMAGE_BYTES + (4 if has_prior else 0))
    if device.type == "cuda":
        full = px * 20  # x, x0, base and a temporary live on the GPU; image crops go over per tile
    stride = cfg.stride
    features = (hp // stride) * (wp // stride) * cfg.feature_channels * 4
    fixed = n_params * element + full + features
    how = "free memory (automatic budget)" if auto else "max_memory"
    if prior_peak and n_params * element + full + prior_peak > budget:
        need = n_params * element + full + prior_peak
        raise MemoryBudgetError(
            f"a {w}x{h} refine with {cfg.name} needs about {need / GiB:.2f} GB for its "
            f"{cfg.prior} prior solve ({prior_peak / GiB:.2f} GB of it the solve's working set), but "
            f"{how} allows {budget / GiB:.2f} GB; free memory, raise max_memory, narrow the "
            f"unknown band or use a smaller image")
    chunk = 0
    if cfg.backbone == "vit":
        attn = max(64 * MiB, min(1 * GiB, (budget - fixed) // 4))
        chunk = attention_chunk(cfg, hp, wp, attn)
        tokens = (hp // cfg.patch_size) * (wp // cfg.patch_size)
        fixed += vit_encoder_bytes(cfg, hp, wp, 3 * cfg.num_heads * chunk * tokens * 4)
    dec_px = decoder_bytes_per_px(cfg) * element // 4
    enc_px = encoder_bytes_per_px(cfg) * element // 4
    candidates = [tile] if tile is not None else list(DECODER_TILES)
    for t in candidates:
        whole = t == 0 or max(hp, wp) <= t
        region = hp * wp if whole else (t + 2 * halo) ** 2
        dec = region * dec_px
        enc_t, enc = 0, 0
        if cfg.backbone != "vit":
            for e in ENCODER_TILES:
                enc_region = hp * wp if max(hp, wp) <= e else (e + 2 * enc_halo) ** 2
                if fixed + max(dec, enc_region * enc_px) <= budget or e == ENCODER_TILES[-1]:
                    enc_t, enc = e, enc_region * enc_px
                    break
        if whole:
            enc = hp * wp * enc_px if cfg.backbone != "vit" else 0
        need = fixed + max(dec, enc)
        if need <= budget:
            whole_need = fixed + hp * wp * max(dec_px, enc_px if cfg.backbone != "vit" else 0)
            batch = 1
            if device.type == "cuda" and not whole:  # many small kernels: batch same-shaped tiles
                batch = int(max(1, min(32, 1 + (budget - need) // 2 // max(dec, 1))))
            need += (batch - 1) * dec
            cache_bytes = max(0, min(cache, (budget - need) // 2))
            estimate = max(need + cache_bytes, n_params * element + full + prior_peak)
            return MemoryPlan(budget, fixed, t, enc_t, chunk, cache_bytes, estimate, whole_need <= budget,
                              batch)
    smallest = candidates[-1]
    region = hp * wp if smallest == 0 or max(hp, wp) <= smallest else (smallest + 2 * halo) ** 2
    need = fixed + region * dec_px
    raise MemoryBudgetError(
        f"a {w}x{h} refine with {cfg.name} on {device.type} needs about {need / GiB:.2f} GB even with "
        f"{'the whole image as one tile' if smallest == 0 else f'{smallest}-pixel tiles'} "
        f"({fixed / GiB:.2f} GB for the model and whole-image buffers), but {how} allows "
        f"{budget / GiB:.2f} GB; free memory, raise max_memory or use a smaller image")
