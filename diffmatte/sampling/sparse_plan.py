"""Sparse decoding plans: which cells each DUNet stage computes, in which blocks.

A dense tile decodes its whole rectangle at every resolution, so a thin band pays for the
decoder's full context (64-96 px) at full resolution too. Here the output pixels wanted
(``need``: the unknown band) are propagated back through the decoder, stage by stage and
pixel by pixel, to the cells each stage must produce at its own resolution
(``stage_needs``): the full-resolution stages need only a few pixels of context, the
coarse ones the wide context (but they are cheap). Each stage then covers its need with
blocks (the cheapest of a few sizes and row / column runs, by a multiply-add count),
each with just enough halo that the block is exact: 1 coarse cell for an up block
(transposed conv 4/2/1 and bilinear x2 read cells m-1..m+1), 2 output cells before and 1
after for a down block (3x3/2 then 3x3: fine pixels 2o-3..2o+3, the crop starting on the
stride-2 grid), 1 for the head's 3x3 (3 with a prior fusion head). sparse_decoder.py
runs the plans.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

Rect = Tuple[int, int, int, int]

#: Output block sizes tried per stage (level pixels). Small blocks follow the band closely
#: but pay their halo and a fixed cost per block; each stage takes the cheapest.
BLOCK_SIZES = (4, 8, 16, 32, 64, 128)
#: Fixed cost of one block (crop, copy back) and of one module call, in multiply-adds
#: (measured on the CPU: ~60 us per block at ~40 GMAC/s per thread).
BLOCK_COST = 2.0e6
CALL_COST = 4.0e6


@dataclass
class Stage:
    kind: str                 # "down", "mid", "up", "head"
    index: int                # module index in down_blks / up_blks
    level: int                # output level (0 = full resolution)
    groups: List[Tuple[List[Rect], List[Rect]]] = field(default_factory=list)  # (crops, blocks) per crop shape
    pixels: int = 0           # output pixels computed (crops' outputs, halos included)
    macs: float = 0.0


@dataclass
class SparsePlan:
    """What one region's sparse decode computes (fixed over the steps)."""

    size: Tuple[int, int]     # region (level 0) height, width; multiples of 2 ** levels
    stages: List[Stage]
    valid: torch.Tensor       # (h, w) bool: the output pixels that are exact (``need``)
    macs: float               # multiply-adds per call
    dense_macs: float         # the same for a dense decode of the region
    feature_need: np.ndarray  # feature cells the decode reads (stride 2 ** (levels + 1))
    read: Optional[np.ndarray] = None  # (h, w) bool: input pixels the decode reads (x_t there only)

    @property
    def blocks(self) -> int:
        return sum(len(b) for s in self.stages for _, b in s.groups)


def _levels(model) -> int:
    return len(model.decoder.down_blks)


def _conv_macs(module) -> float:
    """Multiply-adds per output pixel of a module's convolutions (at its output resolution)."""
    total = 0.0
    for m in module.modules():
        if isinstance(m, torch.nn.ConvTranspose2d):
            total += m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1] / 4
        elif isinstance(m, torch.nn.Conv2d):
            s = m.stride[0] * m.stride[1]
            total += m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1] / (1 if s == 1 else 1)
    return total


def _runs(grid: np.ndarray, max_run: int) -> np.ndarray:
    """(row, start, end) of the True runs along each row of ``grid``, split to <= max_run."""
    d = np.diff(np.pad(grid, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    starts, ends = np.argwhere(d == 1), np.argwhere(d == -1)[:, 1]
    if not len(starts):
        return np.zeros((0, 3), np.int64)
    rows, j, k = starts[:, 0], starts[:, 1], ends
    pieces = -(-(k - j) // max_run)              # split long runs into max_run pieces
    rep = np.repeat(np.arange(len(j)), pieces)
    off = np.arange(len(rep)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    s0 = j[rep] + off * max_run
    return np.stack([rows[rep], s0, np.minimum(k[rep], s0 + max_run)], axis=1)


def _grid(mask: np.ndarray, b: int) -> np.ndarray:
    """Which ``b`` x ``b`` blocks of ``mask`` hold a True pixel."""
    h, w = mask.shape
    nby, nbx = -(-h // b), -(-w // b)
    if nby * b != h or nbx * b != w:
        pad = np.zeros((nby * b, nbx * b), bool)
        pad[:h, :w] = mask
        mask = pad
    return mask.reshape(nby, b, nbx, b).any(axis=(1, 3))


def _blocks(mask: np.ndarray, b: int, run: str = "", max_run: int = 8,
            grid: Optional[np.ndarray] = None) -> np.ndarray:
    """Blocks (n x 4 rects) of ``b`` x ``b`` (clipped at the edge) holding a True pixel.
    ``run`` "x" / "y" merges consecutive blocks along that axis (up to ``max_run``), "xy"
    takes the x runs of two or more blocks and merges the rest along y: fewer halos to
    recompute where the band runs along an axis. ``grid``: ``_grid(mask, b)`` if known."""
    h, w = mask.shape
    any_ = (grid if grid is not None else _grid(mask, b)).copy()

    def rects(y0, y1, x0, x1):
        return np.stack([y0 * b, np.minimum(h, y1 * b), x0 * b, np.minimum(w, x1 * b)], axis=1)
    if not run:
        y, x = np.nonzero(any_)
        return rects(y, y + 1, x, x + 1)
    out = [np.zeros((0, 4), np.int64)]
    if run in ("x", "xy"):
        r = _runs(any_, max_run)
        if run == "xy":
            r = r[r[:, 2] - r[:, 1] >= 2]
            for i, j, k in r:
                any_[i, j:k] = False
        out.append(rects(r[:, 0], r[:, 0] + 1, r[:, 1], r[:, 2]))
    if run in ("y", "xy"):
        r = _runs(any_.T, max_run)
        out.append(rects(r[:, 1], r[:, 2], r[:, 0], r[:, 0] + 1))
    return np.concatenate(out).astype(np.int64)


def _crops(blocks: np.ndarray, halo_in, scale: float, in_shape: Tuple[int, int]) -> np.ndarray:
    """Input crops (n x 4, input level) of output blocks: scaled, grown by the halo (an int,
    or (before, after)), clipped."""
    ih, iw = in_shape
    if scale >= 1:
        c = blocks * int(scale)
    else:
        c = blocks // int(round(1 / scale))
    lo, hi = halo_in if isinstance(halo_in, tuple) else (halo_in, halo_in)
    c = c + np.array([-lo, hi, -lo, hi])
    return np.stack([np.maximum(c[:, 0], 0), np.minimum(c[:, 1], ih), np.maximum(c[:, 2], 0),
                     np.minimum(c[:, 3], iw)], axis=1)


def _group(blocks: np.ndarray, crops: np.ndarray):
    """(crops, blocks) lists of rect tuples, one pair per crop and block shape."""
    groups: Dict[tuple, Tuple[List[Rect], List[Rect]]] = {}
    for c, b in zip(crops.tolist(), blocks.tolist()):
        g = groups.setdefault((c[1] - c[0], c[3] - c[2], b[1] - b[0], b[3] - b[2]), ([], []))
        g[0].append(tuple(c))
        g[1].append(tuple(b))
    return list(groups.values())


def _cost(blocks: np.ndarray, crops: np.ndarray, scale: float, per_px: Tuple[float, float]) -> Tuple[int, float, int]:
    """(output pixels computed, multiply-adds, shape groups) of a stage: ``per_px[0]`` is
    paid on every crop's output (halo included; an up block's transposed conv computes
    all but its outer ring), ``per_px[1]`` only on the block (the up blocks' 3x3
    convolutions run unpadded on interior blocks, see _up_valid)."""
    if not len(blocks):
        return 0, 0.0, 0
    f, ring = 1 / scale, (2 if scale < 1 else 0)
    full = (((crops[:, 1] - crops[:, 0]) * f).astype(np.int64) - ring) * (
        ((crops[:, 3] - crops[:, 2]) * f).astype(np.int64) - ring)
    inner = (blocks[:, 1] - blocks[:, 0]) * (blocks[:, 3] - blocks[:, 2])
    shapes = np.stack([crops[:, 1] - crops[:, 0], crops[:, 3] - crops[:, 2],
                       blocks[:, 1] - blocks[:, 0], blocks[:, 3] - blocks[:, 2]], axis=1)
    n_groups = len(np.unique(((shapes[:, 0] * 8192 + shapes[:, 1]) * 8192 + shapes[:, 2]) * 8192 + shapes[:, 3]))
    return int(full.sum()), float(full.sum() * per_px[0] + inner.sum() * per_px[1]), n_groups


def _choose(mask: np.ndarray, halo_in, scale: float, in_shape, per_px: Tuple[float, float]):
    """(crops, blocks) groups of the cheapest blocking for one stage (multiply-adds of the
    computed pixels, halos included, plus the fixed costs per block and per call)."""
    h, w = mask.shape
    grids: Dict[int, np.ndarray] = {}
    costs: Dict[tuple, float] = {}
    found: Dict[tuple, tuple] = {}

    def try_(b: int, run: str) -> None:
        if b not in grids:  # from the largest finer grid that divides it (cheaper than the mask)
            finer = [s for s in grids if b % s == 0]
            grids[b] = _grid(grids[max(finer)], b // max(finer)) if finer else _grid(mask, b)
        blocks = _blocks(mask, b, run, grid=grids[b])
        crops = _crops(blocks, halo_in, scale, in_shape)
        _, macs, n_groups = _cost(blocks, crops, scale, per_px)
        costs[(b, run)] = macs + len(blocks) * BLOCK_COST + n_groups * CALL_COST
        found[(b, run)] = (blocks, crops)
    sizes = [b for b in BLOCK_SIZES if b < max(h, w)]
    for b in sizes + [max(h, w)]:      # square blocks first, then runs of the best two sizes
        try_(b, "")
    for b in sorted(sizes, key=lambda b: costs[(b, "")])[:2]:
        for run in ("x", "y", "xy"):
            try_(b, run)
    return found[min(costs, key=costs.get)]


def _split_macs(module) -> Tuple[float, float]:
    """Per output pixel multiply-adds of a stage's module, as (on the crop, on the block):
    an up block's 3x3 convolutions (conv2 and the shortcut's) are on the block only."""
    total = _conv_macs(module)
    if hasattr(module, "upsample") and hasattr(module, "conv2"):
        post = _conv_macs(module.conv2) + _conv_macs(module.upsample)
        return total - post, post
    return total, 0.0


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Chebyshev dilation by ``r`` pixels (separable running max)."""
    if r <= 0 or not mask.any():
        return mask.copy()
    from scipy.ndimage import maximum_filter1d

    out = maximum_filter1d(mask.view(np.uint8), 2 * r + 1, axis=0, mode="constant")
    return maximum_filter1d(out, 2 * r + 1, axis=1, mode="constant").view(bool)


def dense_macs_per_px(model) -> float:
    """Multiply-adds of a dense decode per full-resolution pixel."""
    dec = model.decoder
    L = _levels(model)
    total = _conv_macs(dec.matting_head) + (_conv_macs(model.fusion) if model.fusion is not None else 0.0)
    for lv in range(L + 1):
        total += _conv_macs(dec.mid_blk if lv == L else dec.up_blks[L - 1 - lv]) / 4 ** lv
    for lv in range(1, L + 1):
        total += _conv_macs(dec.down_blks[lv - 1]) / 4 ** lv
    return total


def _pool2(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    return mask.reshape(h // 2, 2, w // 2, 2).any(axis=(1, 3))


def _even2(mask: np.ndarray) -> np.ndarray:
    """Cell o of ``mask`` at pixel 2 o of a grid twice as fine (the other pixels False)."""
    h, w = mask.shape
    out = np.zeros((2 * h, 2 * w), bool)
    out[::2, ::2] = mask
    return out


def stage_needs(model, need: np.ndarray) -> Tuple[List[np.ndarray], List[Optional[np.ndarray]]]:
    """The cells each decoder stage must produce for the output pixels ``need``:
    (up[lv]: output cells of the up stage producing level lv, lv = 0..L, and up[L + 1]
    the feature cells read; down[lv]: output cells of the down block producing level lv,
    lv = 1..L), each stage's exact receptive field (checked against the input gradient's
    support in tests/diffmatte/sampling/test_sparse_decoder.py)."""
    L = _levels(model)
    # Up path, fine to coarse: an up block's output cell o reads (transposed conv 4/2/1,
    # bilinear x2, each then a 3x3) the coarse cells within 1 of o // 2.
    up = [dilate(need, 3 if model.fusion is not None else 1)]  # the head's 3x3 (fusion: more)
    for _ in range(L + 1):
        up.append(dilate(_pool2(up[-1]), 1))
    # Down path, coarse to fine: a down block's output cell o reads (3x3/2 then 3x3) the
    # fine cells within 3 of 2 o; level l's down output is read by the up stage there and
    # by the next down block.
    down: List[Optional[np.ndarray]] = [None] * (L + 1)
    for lv in range(L, 0, -1):
        down[lv] = up[lv] if lv == L else up[lv] | dilate(_even2(down[lv + 1]), 3)
    return up, down


def plan_sparse(model, need: np.ndarray) -> SparsePlan:
    """Stages and blocks for decoding the pixels ``need`` (h x w bool, a region whose sides
    are multiples of the feature stride) with ``model``'s decoder.

    Needs are propagated per pixel (each stage's exact receptive field), so a stage's
    blocks only have to *cover* its need: a block's pixels outside the need may read
    unset inputs and are never read by a needed pixel in turn."""
    dec = model.decoder
    L = _levels(model)
    h, w = need.shape
    if h % (2 ** (L + 1)) or w % (2 ** (L + 1)):
        raise ValueError(f"region {h}x{w} is not a multiple of {2 ** (L + 1)}")
    shape = [(h >> lv, w >> lv) for lv in range(L + 2)]
    head_halo = 3 if model.fusion is not None else 1
    fusion = _conv_macs(model.fusion) if model.fusion is not None else 0.0
    head_blocks = _choose(need, head_halo, 1, shape[0], (_conv_macs(dec.matting_head) + fusion, 0.0))
    need_u, need_d = stage_needs(model, need)
    up_blocks = {lv: _choose(need_u[lv], 1, 0.5, shape[lv + 1],
                             _split_macs(dec.mid_blk if lv == L else dec.up_blks[L - 1 - lv])) for lv in range(L + 1)}
    # A down block's output o reads fine pixels 2 o - 3 .. 2 o + 3; its crop starts on an
    # even pixel (the stride-2 grid), so 4 before and 2 after the block.
    down_blocks = {lv: _choose(need_d[lv], (4, 2), 2, shape[lv - 1], (_conv_macs(dec.down_blks[lv - 1]), 0.0))
                   for lv in range(1, L + 1)}
    stages: List[Stage] = []
    for lv in range(1, L + 1):
        s = Stage("down", lv - 1, lv, _group(*down_blocks[lv]))
        stages.append(s)
    stages.append(Stage("mid", 0, L, _group(*up_blocks[L])))
    for i, lv in enumerate(range(L - 1, -1, -1)):
        stages.append(Stage("up", i, lv, _group(*up_blocks[lv])))
    stages.append(Stage("head", 0, 0, _group(*head_blocks)))
    macs = 0.0
    dense = 0.0
    chosen = [down_blocks[lv] for lv in range(1, L + 1)] + [up_blocks[lv] for lv in range(L, -1, -1)] + [head_blocks]
    for st, (blocks, crops) in zip(stages, chosen):
        mod = _module(model, st)
        per = _split_macs(mod)
        if st.kind == "head" and model.fusion is not None:
            per = (per[0] + _conv_macs(model.fusion), per[1])
        st.pixels, st.macs, _ = _cost(blocks, crops, {"down": 2, "head": 1}.get(st.kind, 0.5), per)
        macs += st.macs
        dense += shape[st.level][0] * shape[st.level][1] * sum(per)
    # The input pixels read: the first down stage's crops (and the fusion head's, which
    # reads the image, the prior and x_t): x_t need only be written there at each step.
    read = np.zeros((h, w), bool)
    for st in [stages[0]] + ([stages[-1]] if model.fusion is not None else []):
        for crops, _ in st.groups:
            for y0, y1, x0, x1 in crops:
                read[y0:y1, x0:x1] = True
    return SparsePlan((h, w), stages, torch.from_numpy(need.copy()), macs, dense, need_u[L + 1], read)


def _module(model, s: Stage):
    dec = model.decoder
    return {"down": lambda: dec.down_blks[s.index], "mid": lambda: dec.mid_blk,
            "up": lambda: dec.up_blks[s.index], "head": lambda: dec.matting_head}[s.kind]()
