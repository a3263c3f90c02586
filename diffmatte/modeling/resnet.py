"""ResNet-D encoder from GCA-Matting (used by DiffMatte-Res34).

Convolutions are optionally wrapped in spectral normalisation stored the official
way (``conv.module.weight_bar`` / ``weight_u`` / ``weight_v``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _l2normalize(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return v / (v.norm() + eps)


class _SNWeights(nn.Module):
    """Holds the spectral-norm parameters under their checkpoint names."""

    def __init__(self, out_ch: int, in_ch: int, k: int) -> None:
        super().__init__()
        self.weight_bar = nn.Parameter(torch.empty(out_ch, in_ch, k, k))
        nn.init.kaiming_normal_(self.weight_bar, mode="fan_out", nonlinearity="relu")
        self.weight_u = nn.Parameter(_l2normalize(torch.randn(out_ch)), requires_grad=False)
        self.weight_v = nn.Parameter(_l2normalize(torch.randn(in_ch * k * k)), requires_grad=False)


class SNConv2d(nn.Module):
    """Bias-free conv whose weight is weight_bar / sigma, sigma = u . (W v).

    In training mode one power iteration refreshes u and v first (as in GCA-Matting);
    in eval mode u and v are used as stored, which is what the official outputs assume.
    """

    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.module = _SNWeights(out_ch, in_ch, k)
        self.stride, self.padding = stride, padding

    def weight(self) -> torch.Tensor:
        w = self.module.weight_bar
        flat = w.reshape(w.shape[0], -1)
        u, v = self.module.weight_u, self.module.weight_v
        if self.training:
            with torch.no_grad():
                v.data = _l2normalize(torch.mv(flat.t(), u))
                u.data = _l2normalize(torch.mv(flat, v))
        sigma = torch.dot(u, torch.mv(flat, v))
        return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight().to(x.dtype), None, self.stride, self.padding)


def make_conv(in_ch: int, out_ch: int, k: int, stride: int, spectral_norm: bool) -> nn.Module:
    padding = k // 2
    if spectral_norm:
        return SNConv2d(in_ch, out_ch, k, stride, padding)
    return nn.Conv2d(in_ch, out_ch, k, stride, padding, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int, downsample: Optional[nn.Module],
                 spectral_norm: bool) -> None:
        super().__init__()
        self.conv1 = make_conv(inplanes, planes, 3, stride, spectral_norm)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = make_conv(planes, planes, 3, 1, spectral_norm)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNetD(nn.Module):
    """Three-conv stem, four stages of basic blocks; returns the stride-32 feature map only."""

    def __init__(self, in_chans: int = 6, layers: Sequence[int] = (3, 4, 4, 2),
                 stem: Sequence[int] = (32, 32, 64), widths: Sequence[int] = (64, 128, 256, 512),
                 spectral_norm: bool = True) -> None:
        super().__init__()
        self.spectral_norm = spectral_norm
        self.conv1 = make_conv(in_chans, stem[0], 3, 2, spectral_norm)
        self.conv2 = make_conv(stem[0], stem[1], 3, 1, spectral_norm)
        self.conv3 = make_conv(stem[1], stem[2], 3, 2, spectral_norm)
        self.bn1, self.bn2, self.bn3 = (nn.BatchNorm2d(c) for c in stem)
        self.inplanes = stem[2]
        self.layer1 = self._make_layer(widths[0], layers[0], 1)
        self.layer2 = self._make_layer(widths[1], layers[1], 2)
        self.layer3 = self._make_layer(widths[2], layers[2], 2)
        self.layer_bottleneck = self._make_layer(widths[3], layers[3], 2)
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)  # start every residual branch as identity

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample: Optional[nn.Module] = None
        if stride != 1:
            downsample = nn.Sequential(nn.AvgPool2d(2, stride),
                                       make_conv(self.inplanes, planes, 1, 1, self.spectral_norm),
                                       nn.BatchNorm2d(planes))
        elif self.inplanes != planes:
            downsample = nn.Sequential(make_conv(self.inplanes, planes, 1, stride, self.spectral_norm),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample, self.spectral_norm)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes, 1, None, self.spectral_norm) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer_bottleneck(x)
