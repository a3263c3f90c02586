"""DUNet: DiffMatte's time-conditioned diffusion decoder.

It denoises the alpha at full resolution from a 7-channel input (image, trimap
one-hot, x_t), takes the encoder feature map in its middle block, and returns the
x0 logit. It is the only part that runs at every sampling step.
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [cos, sin] of continuous time t in [0, 1] (not scaled by 1000)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class _DownShortcut(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)


class _UpShortcut(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)


class DownBlock(nn.Module):
    """Stride-2 residual block with an additive time term."""

    def __init__(self, cin: int, cout: int, emb_channels: int) -> None:
        super().__init__()
        self.emb_layers = nn.Sequential(nn.Linear(emb_channels, cout), nn.ReLU())
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = _DownShortcut(cin, cout)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = h + self.emb_layers(emb)[:, :, None, None].to(h.dtype)
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.downsample.op(x))


class UpBlock(nn.Module):
    """x2 residual block: transposed conv main path, bilinear + conv shortcut, time term."""

    def __init__(self, cin: int, cout: int, emb_channels: int) -> None:
        super().__init__()
        self.emb_layers = nn.Sequential(nn.Linear(emb_channels, cout), nn.ReLU())
        self.conv1 = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.upsample = _UpShortcut(cin, cout)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = h + self.emb_layers(emb)[:, :, None, None].to(h.dtype)
        h = self.bn2(self.conv2(h))
        up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return F.relu(h + self.upsample.conv(up))


class MattingHead(nn.Module):
    def __init__(self, cin: int, mid: int) -> None:
        super().__init__()
        self.matting_convs = nn.Sequential(
            nn.Conv2d(cin, mid, 3, padding=1), nn.BatchNorm2d(mid), nn.ReLU(), nn.Conv2d(mid, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.matting_convs(x)


class DUNet(nn.Module):
    """Diffusion decoder. ``downsample_in``: channels of the down path starting with the
    7-channel input; ``upsample_in``: encoder channels, mid-block output, then each up
    block's output. Returns the x0 logit at the input resolution."""

    def __init__(self, downsample_in: Sequence[int], upsample_in: Sequence[int],
                 time_channels: int = 32, emb_channels: int = 32, head_channels: int = 16) -> None:
        super().__init__()
        self.time_channels = time_channels
        self.time_embed = nn.Sequential(nn.Linear(time_channels, emb_channels), nn.ReLU(),
                                        nn.Linear(emb_channels, emb_channels))
        self.down_blks = nn.ModuleList(
            DownBlock(downsample_in[i], downsample_in[i + 1], emb_channels) for i in range(len(downsample_in) - 1))
        self.mid_blk = UpBlock(upsample_in[0], upsample_in[1], emb_channels)
        self.up_blks = nn.ModuleList(
            UpBlock(upsample_in[i + 1] + downsample_in[-1 - i], upsample_in[i + 2], emb_channels)
            for i in range(len(upsample_in) - 2))
        self.matting_head = MattingHead(upsample_in[-1], head_channels)

    def forward(self, features: torch.Tensor, dimages: torch.Tensor, t: torch.Tensor,
                return_features: bool = False):
        emb = self.time_embed(timestep_embedding(t, self.time_channels).to(dimages.dtype))
        skips: List[torch.Tensor] = []
        h = dimages
        for blk in self.down_blks:
            h = blk(h, emb)
            skips.append(h)
        h = self.mid_blk(features, emb)
        for i, blk in enumerate(self.up_blks):
            h = blk(torch.cat([h, skips[-1 - i]], dim=1), emb)
        if return_features:
            return self.matting_head(h), h
        return self.matting_head(h)
