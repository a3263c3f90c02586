"""DDIM steps over sparse regions whose per-step work follows the band, not the image.

The whole-image sampler (diffusion.ddim_sample, and tiled_sampler's dense path) touches
every pixel at every step: the std of x_t, the x0 assembly and the update. With sparse
decoding most pixels are known and far from the band; nothing reads them and their x0 is
their known value f (bg -1, fg +1). DDIM with eta = 0 and a fixed x0 keeps such a pixel
on the forward process in closed form: x_t = a(t) f + s(t) e with e = (x_T - a(1) f) /
s(1) for every step. So:

- x_t is kept only on the *live* pixels R: the pixels some region's decoder reads (its
  plan's ``read`` set) and the output mask (where x0 is the network's). The update runs
  on R alone, with the whole-image sampler's operations, element for element.
- The std of x_t over the whole image (one number per step, as the official sampler)
  comes from sums: the live pixels' own, plus, for the rest, sums of f and e fixed at the
  start (sum x = a sum f + s sum e; sum x^2 = a^2 sum f^2 + 2 a s sum f e + s^2 sum e^2),
  each in float32 chunks accumulated in float64. It differs from the iterated float32
  std by float rounding only.
- At t = 0, s = 0, so a pixel outside R ends at a(0) f: the same value the iteration
  gives, bit for bit.
- Each region keeps its decoder input (conditioning + x_t channel, ``input_buffer``) for
  the whole refine, and only x_t / std on its read set is written per step.
- The whole-image x0 is kept for ``on_step`` (previews) and updated on R only.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np
import torch

from ..diffusion import time_grid
from ..errors import Cancelled
from .sparse_decoder import input_buffer, sparse_decoder_for
from .sparse_plan import SparsePlan
from ..util import digest
from .tile_cache import StepRecord, TileCache, TileRecord, snap_std
from .tiling import PlanStats, TilePlan

CL = torch.channels_last


@dataclass
class _Region:
    """One sparse region's fixed per-step inputs and index maps (built once per refine)."""

    splan: SparsePlan
    dimages: torch.Tensor        # decoder input, (1, C + 1, h, w) channels-last
    cond: object                 # Conditioning whose ``cond`` is a view of ``dimages``
    feats: torch.Tensor          # feature crop
    read_live: torch.Tensor      # positions in the live list of the pixels the decoder reads
    read_yx: tuple               # the same pixels as (y, x) in the region
    out_live: torch.Tensor       # positions in the live list of its output (mask) pixels
    out_yx: tuple                # the same pixels as (y, x) in the region (row-major in ``out``)
    weight: torch.Tensor         # cross-fade weight at those pixels
    key: Optional[bytes] = None  # cache key (None: cache disabled)


def _yx(ys: np.ndarray, xs: np.ndarray, dev) -> tuple:
    return torch.from_numpy(ys.astype(np.int64)).to(dev), torch.from_numpy(xs.astype(np.int64)).to(dev)


def build_regions(model, plan: TilePlan, splans: List[SparsePlan], mask: np.ndarray, feats: torch.Tensor,
                  conds: List[object], dev: torch.device, keys: List[bytes]):
    """(live pixel indices (flat, sorted), regions): R is the union of every region's read
    set and ``mask`` (the output pixels); ``conds[i]`` is region i's conditioning (its
    ``cond`` moves into the region's decoder input)."""
    h, w = mask.shape
    s = model.cfg.stride
    live = mask.copy()
    for t, sp in zip(plan.tiles, splans):
        ry0, ry1, rx0, rx1 = t.region
        rh, rw = min(ry1, h) - ry0, min(rx1, w) - rx0
        live[ry0:ry0 + rh, rx0:rx0 + rw] |= sp.read[:rh, :rw]
    live_idx = np.flatnonzero(live)
    del live
    regions = []
    for i, (t, sp) in enumerate(zip(plan.tiles, splans)):
        ry0, ry1, rx0, rx1 = t.region
        rh, rw = min(ry1, h) - ry0, min(rx1, w) - rx0
        ys, xs = np.nonzero(sp.read[:rh, :rw])
        read_live = np.searchsorted(live_idx, (ys + ry0) * w + (xs + rx0))
        oy0, oy1, ox0, ox1 = t.out[0], min(t.out[1], h), t.out[2], min(t.out[3], w)
        m = mask[oy0:oy1, ox0:ox1]
        oys, oxs = np.nonzero(m)                  # row-major: the order of pred[mask]
        out_live = np.searchsorted(live_idx, (oys + oy0) * w + (oxs + ox0))
        wt = plan.weight(t)[0, 0, :oy1 - oy0, :ox1 - ox0][torch.from_numpy(oys), torch.from_numpy(oxs)]
        c = conds[i]
        dimages = input_buffer(c.cond.to(dev))
        c.cond = dimages[:, :-1]                  # one copy of the conditioning, in the input
        y0, y1, x0, x1 = t.region
        regions.append(_Region(
            sp, dimages, c, feats[..., y0 // s:y1 // s, x0 // s:x1 // s].contiguous(memory_format=CL),
            torch.from_numpy(read_live).to(dev), _yx(ys, xs, dev), torch.from_numpy(out_live).to(dev),
            _yx(oys + oy0 - ry0, oxs + ox0 - rx0, dev), wt.to(dev), keys[i] if keys else None))
    return torch.from_numpy(live_idx).to(dev), regions


def _sums(*parts: torch.Tensor, chunk: int = 1 << 20) -> float:
    """Sums of the products of ``parts`` (same-length 1-D float32 tensors; one part: its
    sum), each over chunks of ``chunk`` values in float32 (cascade summation, ~1e-7
    relative) accumulated in float64: 10x faster than a float64 reduction, no big
    temporaries."""
    total = 0.0
    n = parts[0].numel()
    for i in range(0, n, chunk):
        p = parts[0][i:i + chunk]
        for q in parts[1:]:
            p = p * q[i:i + chunk]
        total += float(p.sum())
    return total


class _KnownSums:
    """Sums over the pixels outside R that give their share of the std in closed form."""

    def __init__(self, x_T: torch.Tensor, forced: torch.Tensor, live_idx: torch.Tensor, a0, s0) -> None:
        s0 = s0.clamp(min=1e-10)
        f, x = forced.flatten(), x_T.flatten()
        fl = f[live_idx]
        el = (x[live_idx] - a0 * fl) / s0          # e at the live pixels, as below
        every = [0.0] * 5
        for i in range(0, x.numel(), 1 << 20):     # e over the image, a chunk at a time
            fc = f[i:i + (1 << 20)]
            ec = (x[i:i + (1 << 20)] - a0 * fc) / s0
            for j, v in enumerate((_sums(fc), _sums(ec), _sums(fc, ec), _sums(ec, ec), _sums(fc, fc))):
                every[j] += v
        on_live = (_sums(fl), _sums(el), _sums(fl, el), _sums(el, el), _sums(fl, fl))
        self.f, self.e, self.fe, self.ee, self.ff = (a - b for a, b in zip(every, on_live))
        self.n = x.numel()

    def std(self, x_live: torch.Tensor, a, s) -> torch.Tensor:
        """Population std of x_t over the whole image, (1,) float32 like Tensor.std."""
        a, s = float(a), float(s)
        s1 = _sums(x_live) + a * self.f + s * self.e
        s2 = _sums(x_live, x_live) + a * a * self.ff + 2 * a * s * self.fe + s * s * self.ee
        mean = s1 / self.n
        var = max(s2 / self.n - mean * mean, 0.0)
        return torch.tensor([var ** 0.5], dtype=torch.float32, device=x_live.device)


def sample_sparse(sampler, plan: TilePlan, regions: List[_Region], live_idx: torch.Tensor, tri_t: torch.Tensor,
                  starts: List[Callable[[], torch.Tensor]], steps: int, stats: PlanStats,
                  on_step: Optional[Callable], tick: Callable[[], None], cancel: Optional[threading.Event],
                  settings) -> torch.Tensor:
    """The mean alpha (H, W) over ``starts`` (tiled_sampler.TiledSampler.run's contract)."""
    dev, schedule = sampler.device, sampler.schedule
    cache: TileCache = sampler.cache
    decoder = sparse_decoder_for(sampler.model)
    h, w = tri_t.shape[-2:]
    forced = (tri_t * 2 - 1).to(dev)
    forced_live = forced.flatten()[live_idx]
    # (1 - w_active) * f, accumulated as the dense path does (tiles in order, +0 elsewhere).
    w_active = torch.zeros_like(forced_live)
    for r in regions:
        w_active.index_add_(0, r.out_live, r.weight)
    base_live = (1 - w_active) * forced_live
    del w_active
    grid = time_grid(steps, device=dev)
    keys = [r.key for r in regions if r.key is not None]
    total = 0.0
    for si, start in enumerate(starts):
        x_T = start().to(dev)
        a0, s0 = schedule.alpha_sigma(grid[0])
        known = _KnownSums(x_T, forced, live_idx, a0, s0)
        x = x_T.flatten()[live_idx]
        del x_T
        run_key = digest("run", sampler.tag, plan.size, steps, settings, x) if keys else None
        track = cache.get("std", run_key) if run_key is not None else None
        stds: List[float] = []
        old = [cache.get("dec", r.key) for r in regions] if keys else []
        new = [TileRecord() for _ in keys]
        x0_whole = forced.clone() if on_step is not None else None
        x0, tmp = torch.empty_like(x), torch.empty_like(x)   # reused every step (no page faults)
        for k in range(steps):
            t, t_next = grid[k], grid[k + 1]
            a, sg = schedule.alpha_sigma(t)
            std = known.std(x, a, sg).clamp(min=1e-5)
            std = snap_std(std, track[k] if track is not None and k < len(track) else None)
            std_f = float(std)
            stds.append(std_f)
            x0.copy_(base_live)
            for i, r in enumerate(regions):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("refine cancelled")
                x_read = x[r.read_live]
                pred = None
                if keys:
                    x_hash = digest(x_read)
                    rec = old[i].steps[k] if old[i] is not None and k < len(old[i].steps) else None
                    if rec is not None and rec.x_hash == x_hash and rec.std == std_f:
                        pred = rec.x0.to(dev)
                        new[i].steps.append(rec)
                        stats.reused += 1
                if pred is None:
                    r.dimages[0, -1].index_put_(r.read_yx, (x_read / std).to(r.dimages.dtype))
                    with sampler.autocast():
                        logit = decoder.decode_input(r.splan, r.feats, r.cond, r.dimages, t.reshape(1))
                    pred = (torch.sigmoid(logit[0, 0][r.out_yx]) * 2 - 1).clamp(-1.0, 1.0)
                    stats.decoded += 1
                    if keys:
                        new[i].steps.append(StepRecord(x_hash, std_f, pred.to("cpu", copy=True)))
                x0.index_add_(0, r.out_live, r.weight * pred)
                tick()
            x = schedule.ddim_step(x, x0, t, t_next, tmp=tmp)   # in place: the dense path's operations
            if on_step is not None:
                x0_whole.view(-1)[live_idx] = x0
                on_step(si, k, float(t), x0_whole)
        if run_key is not None:
            cache.put("std", run_key, stds, 64 * steps)
            for r, rec in zip(regions, new):
                cache.put("dec", r.key, rec, rec.nbytes())
        # t = 0: s = 0, so a pixel outside R ends at a(0) f, as the iteration gives.
        x_end = schedule.alpha_sigma(grid[-1])[0] * forced
        x_end.view(-1)[live_idx] = x
        out = (x_end / schedule.scale + 1.0) / 2.0
        total = total + out[0, 0].clamp(0, 1).float()
    decoder.release()  # level buffers: only while a refine runs
    return total / len(starts)
