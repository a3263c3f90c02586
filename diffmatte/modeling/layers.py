"""The three small layers the ViT encoder used from timm: ``Mlp``, ``LayerNorm2d``, ``DropPath``.

Written here so the engine does not need timm, whose package (with huggingface_hub, hf-xet
and pyyaml) added ~45 MB to the venv for three layers, and whose import (it imports
torchvision) cost ~1.5 s CPU each time the model was built (``import timm.layers`` after
torch, 2-core build machine, loaded: 1.48-1.63 s CPU in three runs). Same parameter names (``fc1``, ``fc2``, ``weight``,
``bias``) and the same arithmetic as timm 1.0's default path, so the official checkpoints load
unchanged (``tests/test_engine_parity.py``).
"""
from __future__ import annotations

from typing import Optional, Type

import torch
import torch.nn.functional as F
from torch import nn


class Mlp(nn.Module):
    """Linear -> activation -> Linear (the transformer block's MLP); dropouts as in timm."""

    def __init__(self, in_features: int, hidden_features: Optional[int] = None,
                 out_features: Optional[int] = None, act_layer: Type[nn.Module] = nn.GELU,
                 drop: float = 0.0) -> None:
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.norm = nn.Identity()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.act(self.fc1(x)))
        return self.drop2(self.fc2(self.norm(x)))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an N x C x H x W tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True) -> None:
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def drop_path(x: torch.Tensor, drop_prob: float = 0.0, training: bool = False,
              scale_by_keep: bool = True) -> torch.Tensor:
    """Stochastic depth: in training, zero a sample's residual branch with probability
    ``drop_prob`` (the kept ones scaled by 1 / keep); identity in eval."""
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPath(nn.Module):
    """:func:`drop_path` as a module."""

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self) -> str:
        return f"drop_prob={round(self.drop_prob, 3):0.3f}"
