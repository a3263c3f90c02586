"""Tile plans for band-limited inference: which rectangles to decode and how to stitch them.

Everything is in *padded* image coordinates (the model pads H x W to ``padded_size``), and
every tile edge sits on a multiple of 32 so that encoder feature cells (stride 16 or 32)
line up with the whole-image feature grid.

- A decoder tile has a *core* (the tiles' cores partition the padded image), a *region*
  (core + halo: what the decoder sees) and an *out* rectangle (core + ``blend``: what it
  contributes). Its weight on ``out`` is the box-blurred indicator of its core, a product of
  two 1-D linear ramps of half-width ``blend``; box-blurred indicators of a partition sum to
  exactly 1 everywhere, so overlapping outputs cross-fade with no seam and no gap.
- Cores come from a quadtree over a grid of ``tile`` x ``tile`` roots: a core is split in
  four while that lowers the decoded area (sum of active regions), down to ``min_tile``.
- A tile is *active* when its ``out`` rectangle holds an unknown pixel; inactive tiles are
  never decoded (their pixels are all known).
- One tile covering the whole padded image has no halo: it is exactly the whole-image path.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..modeling.model import Conditioning, padded_size
from ..util import ramp

ALIGN = 32
Rect = Tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open)


@dataclass(frozen=True)
class Tile:
    core: Rect
    region: Rect
    out: Rect


@dataclass
class TilePlan:
    """Decoder tiles of one image (only the active ones are kept) and their geometry."""

    size: Tuple[int, int]            # unpadded (H, W)
    padded: Tuple[int, int]          # (Hp, Wp)
    tiles: List[Tile]                # active tiles, in a fixed order
    halo: int
    blend: int
    n_cores: int = 0                 # active + inactive leaves
    decoded_px: int = 0              # sum of active region areas (work per step)

    @property
    def single(self) -> bool:
        """One tile over the whole padded image: the whole-image path, bit for bit."""
        return len(self.tiles) == 1 and self.tiles[0].region == (0, self.padded[0], 0, self.padded[1])

    def weight(self, tile: Tile) -> torch.Tensor:
        """Cross-fade weight of ``tile`` over its ``out`` rectangle, (1, 1, h, w) float32."""
        hp, wp = self.padded
        (y0, y1, x0, x1), (oy0, oy1, ox0, ox1) = tile.core, tile.out
        wy = ramp(oy0, oy1, y0, y1, hp, self.blend)
        wx = ramp(ox0, ox1, x0, x1, wp, self.blend)
        return (wy[:, None] * wx[None, :])[None, None]


class _Integral:
    """O(1) 'any unknown pixel in this rectangle' queries on a padded mask, for rectangles
    whose edges are multiples of ``cell`` (a divisor of hp and wp): the integral image is
    taken over cells (256 times smaller for 16-px cells at 24 MP)."""

    def __init__(self, mask: np.ndarray, hp: int, wp: int, cell: int = 1) -> None:
        full = np.zeros((hp, wp), bool)
        full[:mask.shape[0], :mask.shape[1]] = mask
        if cell > 1:
            full = full.reshape(hp // cell, cell, wp // cell, cell).any(axis=(1, 3))
        m = np.zeros((full.shape[0] + 1, full.shape[1] + 1), np.int64)
        m[1:, 1:] = full
        self.s = m.cumsum(0).cumsum(1)
        self.cell = cell

    def any(self, r: Rect) -> bool:
        y0, y1, x0, x1 = (v // self.cell for v in r)
        s = self.s
        return bool(s[y1, x1] - s[y0, x1] - s[y1, x0] + s[y0, x0] > 0)


def _grow(r: Rect, m: int, hp: int, wp: int) -> Rect:
    return max(0, r[0] - m), min(hp, r[1] + m), max(0, r[2] - m), min(wp, r[3] + m)


def _area(r: Rect) -> int:
    return (r[1] - r[0]) * (r[3] - r[2])


def _halves(a: int, b: int) -> List[Tuple[int, int]]:
    """Split [a, b) at a multiple of ALIGN near the middle (or not at all)."""
    if b - a <= ALIGN:
        return [(a, b)]
    mid = a + max(ALIGN, ((b - a) // 2) // ALIGN * ALIGN)
    return [(a, mid), (mid, b)] if mid < b else [(a, b)]


def plan_tiles(unknown: np.ndarray, tile: int, halo: int, blend: int = 16, min_tile: int = 32) -> TilePlan:
    """Quadtree decoder tiles over the unknown mask (H x W bool), largest core ``tile``.

    ``halo`` and ``tile`` are multiples of 32; ``blend`` <= min(halo, min_tile / 2).
    """
    h, w = unknown.shape
    hp, wp = padded_size(h, w)
    if tile % ALIGN or min_tile % ALIGN or halo % ALIGN or tile < min_tile:
        raise ValueError(f"tile ({tile}), min_tile ({min_tile}) and halo ({halo}) must be multiples of {ALIGN}, "
                         f"tile >= min_tile")
    if max(hp, wp) <= tile:
        whole = (0, hp, 0, wp)
        active = [Tile(whole, whole, whole)] if unknown.any() else []
        return TilePlan((h, w), (hp, wp), active, 0, 0, 1, _area(whole) if active else 0)
    if not 0 <= blend <= min(halo, min_tile // 2):
        raise ValueError(f"blend ({blend}) must be between 0 and min(halo, min_tile / 2)")
    integral = _Integral(unknown, hp, wp, math.gcd(ALIGN, blend))  # queries: cores (32 px) grown by blend
    leaves: List[Tuple[Rect, bool]] = []

    def cost(core: Rect) -> Tuple[int, List[Tuple[Rect, bool]]]:
        """Decoded area of the best subdivision of ``core`` and its leaves (active flag)."""
        active = integral.any(_grow(core, blend, hp, wp))
        if not active:
            return 0, [(core, False)]
        own = _area(_grow(core, halo, hp, wp))
        ys, xs = _halves(core[0], core[1]), _halves(core[2], core[3])
        if min(core[1] - core[0], core[3] - core[2]) <= min_tile or (len(ys) == 1 and len(xs) == 1):
            return own, [(core, True)]
        total, kids = 0, []
        for a, b in ys:
            for c, d in xs:
                k_cost, k_leaves = cost((a, b, c, d))
                total += k_cost
                kids += k_leaves
                if total >= own:
                    return own, [(core, True)]
        return total, kids

    decoded = 0
    for y in range(0, hp, tile):
        for x in range(0, wp, tile):
            c, lv = cost((y, min(hp, y + tile), x, min(wp, x + tile)))
            decoded += c
            leaves += lv
    tiles = [Tile(core, _grow(core, halo, hp, wp), _grow(core, blend, hp, wp)) for core, act in leaves if act]
    return TilePlan((h, w), (hp, wp), tiles, halo, blend, len(leaves), decoded)


@dataclass(frozen=True)
class EncoderTile:
    core: Rect
    region: Rect


def plan_encoder(plan: TilePlan, stride: int, tile: int, halo: int,
                 need: Optional[np.ndarray] = None) -> List[EncoderTile]:
    """Encoder tiles (core ``tile``, ``halo`` of context) whose cores hold a feature cell that
    the decoder reads: ``need`` (feature cells, e.g. what sparse decoding reads) or else
    every cell of an active decoder region. One whole-image tile when the decoder plan is
    single or the padded image fits in ``tile``."""
    hp, wp = plan.padded
    whole = (0, hp, 0, wp)
    if plan.single or max(hp, wp) <= tile:
        return [EncoderTile(whole, whole)] if plan.tiles else []
    if need is None:
        need = np.zeros((hp // stride, wp // stride), bool)
        for t in plan.tiles:
            y0, y1, x0, x1 = t.region
            need[y0 // stride:y1 // stride, x0 // stride:x1 // stride] = True
    out = []
    for y in range(0, hp, tile):
        for x in range(0, wp, tile):
            core = (y, min(hp, y + tile), x, min(wp, x + tile))
            if need[core[0] // stride:core[1] // stride, core[2] // stride:core[3] // stride].any():
                out.append(EncoderTile(core, _grow(core, halo, hp, wp)))
    return out


def condition_region(model, image: torch.Tensor, trimap: torch.Tensor, prior: Optional[torch.Tensor],
                     region: Rect) -> Conditioning:
    """The whole image's padded conditioning cropped to ``region`` (padded coordinates),
    built from the crop alone: per-pixel inputs (image, trimap, optional prior) are cropped
    and passed to ``model.condition``; the zero padding beyond the image is rebuilt."""
    h, w = trimap.shape[-2:]
    y0, y1, x0, x1 = region
    ry1, rx1 = min(y1, h), min(x1, w)
    # Crops go to the model's device here: the whole image stays in host memory (a GPU
    # engine failed with "found at least two devices, cuda:0 and cpu" before this).
    dev = model.pixel_mean.device
    args = (image[..., y0:ry1, x0:rx1].to(dev), trimap[..., y0:ry1, x0:rx1].to(dev))
    if prior is not None:
        c = model.condition(*args, prior=prior[..., y0:ry1, x0:rx1].to(dev))
    else:
        c = model.condition(*args)
    rh, rw = ry1 - y0, rx1 - x0
    pad = (0, (x1 - x0) - rw, 0, (y1 - y0) - rh)
    # Every padded per-pixel tensor of the conditioning (backbone_in, cond, a prior model's
    # prior) is cut to the real crop and zero-padded to the region, like the whole image's.
    # (A region inside the image needs no padding: the crop's view, no copy.)
    crops = {f.name: getattr(c, f.name)[..., :rh, :rw] for f in dataclasses.fields(c)
             if isinstance(getattr(c, f.name), torch.Tensor) and getattr(c, f.name).dim() == 4}
    changes = {k: F.pad(v, pad) if any(pad) else v for k, v in crops.items()}
    return dataclasses.replace(c, size=(rh, rw), **changes)


@dataclass
class PlanStats:
    """What a tiled refine did; kept on the engine as ``engine.last_stats``."""

    tiles: int = 0                 # active decoder tiles
    cores: int = 0                 # all quadtree leaves
    decoded_px: int = 0            # decoder pixels per step (regions, halos included)
    image_px: int = 0              # padded image pixels
    encoder_tiles: int = 0
    encoder_reused: int = 0
    tile_steps: int = 0            # active tiles x steps x samples
    decoded: int = 0               # tile-steps actually run
    reused: int = 0                # tile-steps taken from the cache
    tile: int = 0
    halo: int = 0
    sparse: bool = False           # decoded sparsely (sparse_decoder.py); decoded_px is then
                                   # the dense-equivalent count (multiply-adds / per-pixel cost)
    memory: dict = field(default_factory=dict)


def tile_batches(plan: TilePlan, h: int, w: int, size: int) -> List[List[int]]:
    """Tile indices in plan order, grouped into batches of up to ``size`` tiles whose
    regions (padded and real) have the same shape; the order is fixed for a plan."""
    groups: dict = {}
    for i, t in enumerate(plan.tiles):
        ry0, ry1, rx0, rx1 = clip_rect(t.region, h, w)
        shape = (t.region[1] - t.region[0], t.region[3] - t.region[2], ry1 - ry0, rx1 - rx0)
        groups.setdefault(shape, []).append(i)
    out = []
    for idxs in groups.values():
        out += [idxs[j:j + max(1, size)] for j in range(0, len(idxs), max(1, size))]
    return sorted(out, key=lambda b: b[0])


def clip_rect(r, h: int, w: int):
    return r[0], min(r[1], h), r[2], min(r[3], w)


def region_crops(region, img, tri, prior):
    y0, y1, x0, x1 = region
    out = [img[..., y0:y1, x0:x1], tri[..., y0:y1, x0:x1]]
    if prior is not None:
        out.append(prior[..., y0:y1, x0:x1])
    return out


def stack_conditions(conds: list):
    """Batch same-shaped tile conditionings along dim 0."""
    first = conds[0]
    changes = {f.name: torch.cat([getattr(c, f.name) for c in conds]).contiguous(memory_format=torch.channels_last)
               for f in dataclasses.fields(first)
               if isinstance(getattr(first, f.name), torch.Tensor) and getattr(first, f.name).dim() == 4
               and getattr(first, f.name).shape[-1] > 0}
    return dataclasses.replace(first, **changes)


def conditioning_to(c, dev: torch.device, backbone: bool):
    """Move a tile's conditioning to the device in the layout the convolutions like; the
    decoder never reads ``backbone_in``, so decoder tiles drop it, and the encoder reads
    nothing else, so encoder tiles move only that."""
    for f in dataclasses.fields(c):
        v = getattr(c, f.name)
        if isinstance(v, torch.Tensor) and f.name != "backbone_in" and not backbone:
            setattr(c, f.name, v.to(dev).contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v.to(dev))
    # A fresh empty tensor, not a view: a view would keep the crop's storage alive for
    # the whole refine (measured: +0.5 GB at 24 MP with sparse tiles).
    c.backbone_in = (c.backbone_in.to(dev).contiguous(memory_format=torch.channels_last) if backbone
                     else c.backbone_in.new_zeros(tuple(c.backbone_in.shape[:2]) + (0, 0)))
    return c
