"""DiffMatte network: input encoding, encoder, decoder (the official ``DifModel``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .dunet import DUNet
from .resnet import ResNetD
from .vit import ViT

PIXEL_MEAN = (123.675 / 255, 116.280 / 255, 103.530 / 255)
PIXEL_STD = (58.395 / 255, 57.120 / 255, 57.375 / 255)
SIZE_DIVISIBILITY = 32


def padded_size(h: int, w: int, div: int = SIZE_DIVISIBILITY) -> Tuple[int, int]:
    """Padded size, reproducing the official rule: if either side is not divisible, BOTH
    sides grow to the next multiple strictly above (a divisible side gains a full ``div``)."""
    if h % div == 0 and w % div == 0:
        return h, w
    return h + div - h % div, w + div - w % div


@dataclass
class Conditioning:
    """Per-image tensors that stay fixed during sampling (all padded)."""

    backbone_in: torch.Tensor   # (B, 4 or 6, Hp, Wp)
    cond: torch.Tensor          # (B, 6, Hp, Wp): (normalised image, trimap one-hot) * 2 - 1
    size: Tuple[int, int]       # unpadded (H, W)


def trimap_onehot(trimap: torch.Tensor) -> torch.Tensor:
    """{0, 0.5, 1} trimap (B,1,H,W) -> one-hot (B,3,H,W) ordered (bg, unknown, fg)."""
    idx = (trimap * 2).long().clamp(0, 2).squeeze(1)
    return F.one_hot(idx, 3).permute(0, 3, 1, 2).to(trimap.dtype)


class DiffMatteModel(nn.Module):
    """Encoder + DUNet decoder with the official pre-processing.

    Typical use (what the sampler does)::

        c = model.condition(image, trimap)      # image (B,3,H,W) in [0,1], trimap {0,.5,1}
        feats = model.encode(c)                 # once per image
        logit = model.decode(feats, c, x_t_normalised, t)   # every step, (B,1,H,W)
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.backbone == "vit":
            self.backbone: nn.Module = ViT(
                in_chans=cfg.in_chans, embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads,
                patch_size=cfg.patch_size, img_size=cfg.img_size, pretrain_img_size=cfg.pretrain_img_size,
                window_size=cfg.window_size, window_block_indexes=cfg.window_block_indexes,
                residual_block_indexes=cfg.residual_block_indexes, mlp_ratio=cfg.mlp_ratio)
        elif cfg.backbone == "resnet_d":
            self.backbone = ResNetD(in_chans=cfg.in_chans, layers=cfg.layers, stem=cfg.stem,
                                    widths=cfg.widths, spectral_norm=cfg.spectral_norm)
        else:
            raise ValueError(f"unknown backbone {cfg.backbone!r} (expected 'vit' or 'resnet_d')")
        if cfg.in_chans not in (4, 6):
            raise ValueError(f"in_chans must be 4 (RGB + trimap) or 6 (RGB + one-hot), got {cfg.in_chans}")
        self.decoder = DUNet(cfg.downsample_in, cfg.upsample_in, cfg.time_channels, cfg.emb_channels,
                             cfg.head_channels)
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)

    def condition(self, image: torch.Tensor, trimap: torch.Tensor) -> Conditioning:
        """Normalise, encode the trimap, build backbone and decoder inputs, zero-pad to /32."""
        h, w = image.shape[-2:]
        img_n = (image - self.pixel_mean) / self.pixel_std
        onehot = trimap_onehot(trimap)
        cond = torch.cat([img_n, onehot], dim=1) * 2 - 1
        if self.cfg.in_chans == 4:
            backbone_in = torch.cat([img_n, trimap], dim=1)
        else:
            backbone_in = torch.cat([img_n, onehot], dim=1)
        hp, wp = padded_size(h, w)
        pad = (0, wp - w, 0, hp - h)
        return Conditioning(F.pad(backbone_in, pad), F.pad(cond, pad), (h, w))

    def encode(self, c: Conditioning) -> torch.Tensor:
        return self.backbone(c.backbone_in)

    def decode(self, features: torch.Tensor, c: Conditioning, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x0 logit (B,1,H,W) cropped to the unpadded size. ``x_t`` is already std-normalised."""
        h, w = c.size
        hp, wp = c.cond.shape[-2:]
        x_pad = F.pad(x_t, (0, wp - w, 0, hp - h))
        dimages = torch.cat([c.cond, x_pad.to(c.cond.dtype)], dim=1)
        return self.decoder(features, dimages, t)[:, :, :h, :w]

    def forward(self, image: torch.Tensor, trimap: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One full pass (encoder + decoder); returns the x0 logit."""
        c = self.condition(image, trimap)
        return self.decode(self.encode(c), c, x_t, t)


def build_model(cfg: ModelConfig) -> DiffMatteModel:
    """Build an (untrained) DiffMatte network from its configuration."""
    return DiffMatteModel(cfg)
