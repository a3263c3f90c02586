"""Sparse decoding: runs the plans of sparse_plan.py, every DUNet stage only where the
requested output pixels need it.

Each stage runs the model's own module (a BatchNorm-folded copy) on a batch of block
crops; on interior blocks an up block's 3x3 convolutions run unpadded on the exact part
(``_up_valid``) and its transposed conv computes only that part (``_phases``).

Exactness: a needed pixel reads only needed inputs, which are exact by induction; a
block's other pixels may read stale buffer values and are never read by a needed pixel.
Crops are clipped at the buffer's edge, where the module sees the same border (zero
padding, bilinear clamp) as the whole-image decode when that edge is the image's. The
decoder copy has its BatchNorms folded into the convolutions, so a needed pixel equals the
dense decode up to float rounding (~1e-7 relative; tests/diffmatte/sampling/test_sparse_decoder.py).
"""
from __future__ import annotations

import copy
import os
import weakref
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from ..modeling.dunet import timestep_embedding
from ..modeling.model import prior_logit
from .sparse_plan import Rect, SparsePlan, _levels

CL = torch.channels_last
# oneDNN compiles a kernel for every convolution input shape (batch included) and keeps
# 1024 of them. A large image's sparse plans have a few hundred block shapes per step,
# about 3 convolutions each: with 1024 the cache thrashed and every step compiled them all
# again (24 MP, 2 % band, 10 steps: 39.4 s CPU; with 8192: 32.6 s, same peak RSS). oneDNN
# reads the capacity at its first kernel, so it is set at import (a user's value wins).
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8192")


def _gather(src: torch.Tensor, crops: List[Rect]) -> torch.Tensor:
    if len(crops) == 1:
        y0, y1, x0, x1 = crops[0]
        return src[..., y0:y1, x0:x1].contiguous(memory_format=CL)
    return torch.cat([src[..., y0:y1, x0:x1] for y0, y1, x0, x1 in crops]).contiguous(memory_format=CL)


def _scatter(dst: torch.Tensor, out: torch.Tensor, crops: List[Rect], blocks: List[Rect], scale: float) -> None:
    for j, ((cy0, _, cx0, _), (y0, y1, x0, x1)) in enumerate(zip(crops, blocks)):
        oy, ox = y0 - int(cy0 * scale), x0 - int(cx0 * scale)
        dst[..., y0:y1, x0:x1] = out[j:j + 1, :, oy:oy + (y1 - y0), ox:ox + (x1 - x0)]


def _up_valid(blk, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """An UpBlock (BatchNorm folded) on crops with one coarse cell of halo, returning only
    the block: its 3x3 convolutions run unpadded on the exact part of the transposed conv
    and bilinear outputs (which lose one fine pixel at each crop edge), so the halo costs
    only the cheap upsampling, not the 3x3 convolutions. Unpadded, conv2 of (h + the time
    term) is conv2 of h plus a constant per channel: the time term goes into its bias
    (one pass less over h; equal to float rounding)."""
    # The transposed conv's inner part only (the outer ring is never read), see _phases.
    h = F.pixel_shuffle(F.conv2d(x, blk.phase_weight, blk.phase_bias), 2).relu_()
    e = blk.emb_layers(emb[:1])[0].to(blk.conv2.weight.dtype)
    bias = blk.conv2.bias + blk.conv2.weight.sum(dim=(2, 3)) @ e
    h = F.conv2d(h, blk.conv2.weight, bias)
    up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    sc = F.conv2d(up[..., 1:-1, 1:-1], blk.upsample.conv.weight, blk.upsample.conv.bias)
    return h.add_(sc).relu_()


def _down(blk, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """A DownBlock (BatchNorm folded), its forward with in-place activations."""
    h = blk.conv1(x).relu_()
    h = h.add_(blk.emb_layers(emb[:1])[:, :, None, None].to(h.dtype))
    return blk.conv2(h).add_(blk.downsample.op(x)).relu_()


def _up(blk, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """An UpBlock (BatchNorm folded), its forward with in-place activations (crops at the
    region's edge, where the 3x3 convolutions need their zero padding)."""
    h = blk.conv1(x).relu_()
    h = blk.conv2(h.add_(blk.emb_layers(emb[:1])[:, :, None, None].to(h.dtype)))
    up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    return h.add_(blk.upsample.conv(up)).relu_()


def _fold(conv: torch.nn.Module, bn: torch.nn.BatchNorm2d) -> torch.nn.Module:
    """``conv`` followed by eval-mode ``bn`` as one convolution with a bias."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    transposed = isinstance(conv, torch.nn.ConvTranspose2d)
    new = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                     padding=conv.padding, bias=True)
    shape = (1, -1, 1, 1) if transposed else (-1, 1, 1, 1)
    new.weight.data = (conv.weight * scale.reshape(shape)).contiguous(memory_format=CL)
    new.bias.data = bias.clone()
    return new.to(conv.weight.device)


def fused_decoder(decoder: torch.nn.Module) -> torch.nn.Module:
    """A copy of a DUNet with every BatchNorm folded into its convolution (one pass less
    over each activation; results within float rounding of the original)."""
    dec = copy.deepcopy(decoder)
    with torch.no_grad():
        for blk in list(dec.down_blks) + [dec.mid_blk] + list(dec.up_blks):
            blk.conv1, blk.bn1 = _fold(blk.conv1, blk.bn1), torch.nn.Identity()
            blk.conv2, blk.bn2 = _fold(blk.conv2, blk.bn2), torch.nn.Identity()
        for blk in [dec.mid_blk] + list(dec.up_blks):
            blk.phase_weight, blk.phase_bias = _phases(blk.conv1)
        convs = dec.matting_head.matting_convs
        dec.matting_head.matting_convs = torch.nn.Sequential(_fold(convs[0], convs[1]), *list(convs)[2:])
    return dec.eval()


def _phases(convt: torch.nn.ConvTranspose2d) -> Tuple[torch.Tensor, torch.Tensor]:
    """The transposed conv 4/2/1 as one unpadded 2x2 convolution with 4 x out channels (one
    per output pixel parity; ``F.pixel_shuffle(., 2)`` interleaves them) that computes only
    the inner part of the output (all but the outer ring): the deconvolution computes the
    whole output whatever its padding, and the ring is a third of it for small blocks.
    Inner fine row 2j reads coarse rows j, j+1 with taps 2, 0; row 2j + 1 with taps 3, 1."""
    w = convt.weight                               # (cin, cout, 4, 4)
    cin, cout = w.shape[:2]
    taps = ((2, 0), (3, 1))
    out = w.new_empty((cout, 2, 2, cin, 2, 2))
    for a in (0, 1):
        for b in (0, 1):
            for ty in (0, 1):
                for tx in (0, 1):
                    out[:, a, b, :, ty, tx] = w[:, :, taps[a][ty], taps[b][tx]].t()
    bias = convt.bias if convt.bias is not None else w.new_zeros(cout)
    return out.reshape(cout * 4, cin, 2, 2).contiguous(memory_format=CL), bias.repeat_interleave(4)


_DECODERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def sparse_decoder_for(model) -> "SparseDecoder":
    """The model's :class:`SparseDecoder`, rebuilt when its decoder weights changed."""
    version = sum(p._version for p in model.decoder.parameters()) + sum(
        b._version for b in model.decoder.buffers())
    got = _DECODERS.get(model)
    if got is None or got.version != version:
        got = SparseDecoder(model)
        got.version = version
        _DECODERS[model] = got
    return got


class SparseDecoder:
    """Runs sparse plans for one model: a BatchNorm-folded copy of its decoder and level
    buffers reused from call to call (a buffer's stale values are never read by a needed
    pixel, see the module docstring)."""

    def __init__(self, model) -> None:
        self.model = model
        self.decoder = fused_decoder(model.decoder)
        self._pool: Dict[tuple, torch.Tensor] = {}
        self.version = 0

    def release(self) -> None:
        self._pool.clear()

    def _buffer(self, name: str, ch: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
        """An (1, ch, h, w) view of a pooled buffer, grown to the largest region seen, so
        that tiles of different shapes (image edges) share one set of buffers."""
        key = (name, ch, like.dtype, like.device)
        buf = self._pool.get(key)
        if buf is None or buf.shape[-2] < h or buf.shape[-1] < w:
            hh, ww = (h, w) if buf is None else (max(h, buf.shape[-2]), max(w, buf.shape[-1]))
            self._pool.pop(key, None)
            buf = torch.empty((1, ch, hh, ww), dtype=like.dtype, device=like.device, memory_format=CL).zero_()
            self._pool[key] = buf
        return buf[..., :h, :w]

    def decode(self, plan: SparsePlan, features: torch.Tensor, c, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The x0 logit (1, 1, h, w) of ``model.decode(features, c, x_t, t)``, exact on
        ``plan.valid`` (elsewhere: anything finite). ``c`` is the region's conditioning,
        ``x_t`` std-normalised and cropped to the real part of the region (as for
        ``model.decode``)."""
        dimages = input_buffer(c.cond)
        rh, rw = c.size
        dimages[:, -1:, :rh, :rw] = x_t.to(c.cond.dtype)
        return self.decode_input(plan, features, c, dimages, t)

    def decode_input(self, plan: SparsePlan, features: torch.Tensor, c, dimages: torch.Tensor,
                     t: torch.Tensor) -> torch.Tensor:
        """As :meth:`decode`, from the decoder's input (``input_buffer``: the conditioning
        and, in the last channel, x_t std-normalised, needed only on ``plan.read``; zero
        beyond the image). The sampler keeps one per region and rewrites only x_t there."""
        model, dec = self.model, self.decoder
        L = _levels(model)
        h, w = plan.size
        emb1 = dec.time_embed(timestep_embedding(t[:1], dec.time_channels).to(dimages.dtype))
        up_ch = [dec.mid_blk.conv2.out_channels if lv == L else dec.up_blks[L - 1 - lv].conv2.out_channels
                 for lv in range(L + 1)]
        bufs: List[Optional[torch.Tensor]] = [dimages] + [None] * L + [features]
        last: Optional[torch.Tensor] = None
        logit = self._buffer("logit", 1, h, w, torch.empty(0, device=dimages.device))

        def level(lv: int, like: torch.Tensor) -> torch.Tensor:
            if bufs[lv] is None:
                ch = up_ch[lv] + dec.down_blks[lv - 1].conv2.out_channels
                bufs[lv] = self._buffer(f"level{lv}", ch, h >> lv, w >> lv, like)
            return bufs[lv]

        for s in plan.stages:
            for crops, blocks in s.groups:
                if s.kind == "down":
                    src = bufs[s.level - 1]
                    if s.level - 1 >= 1:
                        src = src[:, up_ch[s.level - 1]:]
                    out = _down(dec.down_blks[s.index], _gather(src, crops), emb1)
                    _scatter(level(s.level, out)[:, up_ch[s.level]:], out, crops, blocks, 0.5)
                elif s.kind in ("mid", "up"):
                    mod = dec.mid_blk if s.kind == "mid" else dec.up_blks[s.index]
                    x_in = _gather(bufs[s.level + 1], crops)
                    by0, by1, bx0, bx1 = blocks[0]
                    if x_in.shape[-2] * 2 == by1 - by0 + 4 and x_in.shape[-1] * 2 == bx1 - bx0 + 4:
                        out = _up_valid(mod, x_in, emb1)  # interior blocks: output = the block
                        crops = [(b[0] // 2, b[1] // 2, b[2] // 2, b[3] // 2) for b in blocks]
                    else:
                        out = _up(mod, x_in, emb1)
                    if s.level == 0:
                        last = last if last is not None else self._buffer("last", out.shape[1], h, w, out)
                        dst = last
                    else:
                        dst = level(s.level, out)[:, :up_ch[s.level]]
                    _scatter(dst, out, crops, blocks, 2)
                else:
                    assert last is not None
                    feats = _gather(last, crops)
                    out = dec.matting_head(feats)
                    if model.fusion is not None:
                        d = _gather(dimages, crops)
                        pl = prior_logit(_gather(c.prior, crops))
                        out = out + pl.to(out.dtype) + model.fusion(feats, d[:, :3], pl, d[:, -1:])
                    _scatter(logit, out.float(), crops, blocks, 1)
        return logit


def input_buffer(cond: torch.Tensor) -> torch.Tensor:
    """The sparse decoder's input for a region: (1, C + 1, h, w) channels-last, the
    conditioning ``cond`` (1, C, h, w) and a zero x_t channel to be filled per step."""
    buf = torch.empty((1, cond.shape[1] + 1) + tuple(cond.shape[-2:]), dtype=cond.dtype,
                      device=cond.device, memory_format=CL)
    buf[:, :-1] = cond
    buf[:, -1:].zero_()
    return buf
