"""Architecture configuration of a DiffMatte network (encoder + diffusion decoder)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Tuple


PRIORS = ("", "cf", "ifm")   # ModelConfig.prior values: none, closed-form, information flow


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a DiffMatte network; serialisable to JSON.

    ``backbone`` is ``"vit"`` (ViTDet-style plain ViT, 4-channel input: RGB + scalar
    trimap) or ``"resnet_d"`` (GCA-Matting ResNet-D, 6-channel input: RGB + one-hot).
    """

    name: str
    backbone: str
    in_chans: int
    # ViT
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    patch_size: int = 16
    img_size: int = 512
    pretrain_img_size: int = 224
    window_size: int = 14
    window_block_indexes: Tuple[int, ...] = (0, 1, 3, 4, 6, 7, 9, 10)
    residual_block_indexes: Tuple[int, ...] = (2, 5, 8, 11)
    mlp_ratio: float = 4.0
    # ResNet-D
    layers: Tuple[int, ...] = (3, 4, 4, 2)
    stem: Tuple[int, ...] = (32, 32, 64)
    widths: Tuple[int, ...] = (64, 128, 256, 512)
    spectral_norm: bool = True
    # decoder (DUNet)
    downsample_in: Tuple[int, ...] = (7, 32, 64, 128)
    upsample_in: Tuple[int, ...] = (384, 256, 128, 64, 32)
    time_channels: int = 32
    emb_channels: int = 32
    head_channels: int = 16
    # diffusion
    scale: float = 0.2
    # classical alpha prior fed to the network ("" = none, the official layouts; "cf" =
    # closed-form matting, "ifm" = information flow; diffmatte/prior/closed_form.py): one more input channel for the encoder and
    # the decoder, and a full-resolution fusion head that corrects the prior's logit.
    prior: str = ""
    extra: Dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def stride(self) -> int:
        """Output stride of the encoder feature map."""
        return self.patch_size if self.backbone == "vit" else 32

    @property
    def feature_channels(self) -> int:
        return self.embed_dim if self.backbone == "vit" else self.widths[-1]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        for f in dataclasses.fields(cls):
            if f.name in data and isinstance(data[f.name], list):
                data[f.name] = tuple(data[f.name])
        return cls(**data)

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)
