"""DiffMatte network: input encoding, encoder, decoder (the official ``DifModel``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import PRIORS, ModelConfig
from .dunet import DUNet
from .resnet import ResNetD
from .vit import ViT

PIXEL_MEAN = (123.675 / 255, 116.280 / 255, 103.530 / 255)
PIXEL_STD = (58.395 / 255, 57.120 / 255, 57.375 / 255)
SIZE_DIVISIBILITY = 32
PRIOR_CLAMP = 1e-3   # the prior's logit is taken of alpha clamped to [1e-3, 1 - 1e-3]


def padded_size(h: int, w: int, div: int = SIZE_DIVISIBILITY) -> Tuple[int, int]:
    """Padded size, reproducing the official rule: if either side is not divisible, BOTH
    sides grow to the next multiple strictly above (a divisible side gains a full ``div``)."""
    if h % div == 0 and w % div == 0:
        return h, w
    return h + div - h % div, w + div - w % div


@dataclass
class Conditioning:
    """Per-image tensors that stay fixed during sampling (all padded)."""

    backbone_in: torch.Tensor   # (B, 4 or 6 (+1 with a prior), Hp, Wp)
    cond: torch.Tensor          # (B, 6 (+1), Hp, Wp): (normalised image, trimap one-hot[, prior]) * 2 - 1
    size: Tuple[int, int]       # unpadded (H, W)
    prior: Optional[torch.Tensor] = None  # (B, 1, Hp, Wp) alpha prior in [0, 1] (prior models only)


def trimap_onehot(trimap: torch.Tensor) -> torch.Tensor:
    """{0, 0.5, 1} trimap (B,1,H,W) -> one-hot (B,3,H,W) ordered (bg, unknown, fg)."""
    idx = (trimap * 2).long().clamp(0, 2).squeeze(1)
    return F.one_hot(idx, 3).permute(0, 3, 1, 2).to(trimap.dtype)


class PriorFusion(nn.Module):
    """Full-resolution correction of the prior for prior models.

    The decoder's last features, the image and the prior give a residual that is added to
    the prior's logit. The last convolution starts at zero, so an untrained (or freshly
    extended) model returns the prior itself and training learns corrections to it.
    """

    def __init__(self, feat: int, mid: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(feat + 3 + 2, mid, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(mid, mid, 3, padding=1), nn.ReLU())
        self.out = nn.Conv2d(mid, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, feats: torch.Tensor, image_n: torch.Tensor, prior_logit: torch.Tensor,
                x_t: torch.Tensor) -> torch.Tensor:
        h = torch.cat([feats, image_n.to(feats.dtype), (prior_logit / 4).to(feats.dtype), x_t.to(feats.dtype)], 1)
        return self.out(self.body(h))


def prior_logit(prior: torch.Tensor) -> torch.Tensor:
    p = prior.float().clamp(PRIOR_CLAMP, 1 - PRIOR_CLAMP)
    return torch.log(p) - torch.log1p(-p)


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
        if cfg.prior not in PRIORS:
            raise ValueError(f"unknown prior {cfg.prior!r}; known: {PRIORS}")
        extra = 1 if cfg.prior else 0
        if cfg.backbone == "vit":
            self.backbone: nn.Module = ViT(
                in_chans=cfg.in_chans + extra, embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads,
                patch_size=cfg.patch_size, img_size=cfg.img_size, pretrain_img_size=cfg.pretrain_img_size,
                window_size=cfg.window_size, window_block_indexes=cfg.window_block_indexes,
                residual_block_indexes=cfg.residual_block_indexes, mlp_ratio=cfg.mlp_ratio)
        elif cfg.backbone == "resnet_d":
            self.backbone = ResNetD(in_chans=cfg.in_chans + extra, layers=cfg.layers, stem=cfg.stem,
                                    widths=cfg.widths, spectral_norm=cfg.spectral_norm)
        else:
            raise ValueError(f"unknown backbone {cfg.backbone!r} (expected 'vit' or 'resnet_d')")
        if cfg.in_chans not in (4, 6):
            raise ValueError(f"in_chans must be 4 (RGB + trimap) or 6 (RGB + one-hot), got {cfg.in_chans}")
        down_in = (cfg.downsample_in[0] + extra,) + tuple(cfg.downsample_in[1:])
        self.decoder = DUNet(down_in, cfg.upsample_in, cfg.time_channels, cfg.emb_channels,
                             cfg.head_channels)
        self.fusion = PriorFusion(cfg.upsample_in[-1]) if cfg.prior else None
        if cfg.prior:
            # The decoder's own logit starts at zero too: an untrained prior model is the prior.
            last = self.decoder.matting_head.matting_convs[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)

    def passes_prior_through(self) -> bool:
        """True for a prior model whose correction layers (the fusion head's output and the
        decoder's last layer) are all zero: its x0 is then the prior whatever the noise,
        time step or features, so sampling it only costs time."""
        if self.fusion is None:
            return False
        last = self.decoder.matting_head.matting_convs[3]
        return not any(bool(p.detach().any()) for p in (*self.fusion.out.parameters(), *last.parameters()))

    def condition(self, image: torch.Tensor, trimap: torch.Tensor,
                  prior: Optional[torch.Tensor] = None) -> Conditioning:
        """Normalise, encode the trimap, build backbone and decoder inputs, zero-pad to /32.

        Prior models (``cfg.prior``) need ``prior`` (B,1,H,W), the alpha prior in [0, 1]
        (``diffmatte.prior.solve.prior_for``; the engine solves it once for a whole image and
        crops it per tile). The network never solves it itself.
        """
        h, w = image.shape[-2:]
        img_n = (image - self.pixel_mean) / self.pixel_std
        onehot = trimap_onehot(trimap)
        parts = [img_n, onehot]
        if self.cfg.prior:
            if prior is None:
                raise ValueError(f"a prior model ({self.cfg.prior!r}) needs its prior: pass "
                                 "prior=diffmatte.prior.solve.prior_for(cfg.prior, image, trimap)")
            if prior.shape != trimap.shape:
                raise ValueError(f"prior must have the trimap's shape {tuple(trimap.shape)}, got {tuple(prior.shape)}")
            prior = prior.to(image.dtype)
            parts.append(prior)
        cond = torch.cat(parts, dim=1) * 2 - 1
        if self.cfg.in_chans == 4:
            backbone_in = torch.cat([img_n, trimap] + parts[2:], dim=1)
        else:
            backbone_in = torch.cat(parts, dim=1)
        hp, wp = padded_size(h, w)
        pad = (0, wp - w, 0, hp - h)
        padded_prior = F.pad(prior, pad) if prior is not None else None
        return Conditioning(F.pad(backbone_in, pad), F.pad(cond, pad), (h, w), padded_prior)

    def encode(self, c: Conditioning) -> torch.Tensor:
        return self.backbone(c.backbone_in)

    def decode(self, features: torch.Tensor, c: Conditioning, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x0 logit (B,1,H,W) cropped to the unpadded size. ``x_t`` is already std-normalised."""
        h, w = c.size
        hp, wp = c.cond.shape[-2:]
        x_pad = F.pad(x_t, (0, wp - w, 0, hp - h))
        dimages = torch.cat([c.cond, x_pad.to(c.cond.dtype)], dim=1)
        if self.fusion is None:
            return self.decoder(features, dimages, t)[:, :, :h, :w]
        logit, last = self.decoder(features, dimages, t, return_features=True)
        pl = prior_logit(c.prior)
        logit = logit + pl.to(logit.dtype) + self.fusion(last, c.cond[:, :3], pl, x_pad)
        return logit[:, :, :h, :w]

    def forward(self, image: torch.Tensor, trimap: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                prior: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One full pass (encoder + decoder); returns the x0 logit."""
        c = self.condition(image, trimap, prior)
        return self.decode(self.encode(c), c, x_t, t)


def build_model(cfg: ModelConfig) -> DiffMatteModel:
    """Build an (untrained) DiffMatte network from its configuration."""
    return DiffMatteModel(cfg)
