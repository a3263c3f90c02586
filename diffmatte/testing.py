"""Helpers for tests and demos: tiny random-weight models that load and run fast."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import torch

from .modeling.config import ModelConfig
from .modeling.model import build_model
from .weights.checkpoint import save_safetensors

#: A very small ResNet-D DiffMatte (about 0.2 M parameters): meaningless mattes, real code path.
TINY_CONFIG = ModelConfig(name="tiny", backbone="resnet_d", in_chans=6, layers=(1, 1, 1, 1), stem=(8, 8, 16),
                          widths=(16, 16, 32, 32), spectral_norm=False, downsample_in=(7, 8, 8, 16, 16),
                          upsample_in=(32, 16, 16, 16, 8, 8), time_channels=16, emb_channels=16, head_channels=8)


def write_tiny_checkpoint(path: Union[str, os.PathLike], seed: int = 0,
                          config: Optional[ModelConfig] = None) -> Path:
    """Write a small random-weight model as safetensors (with its config) and return the path."""
    torch.manual_seed(seed)
    model = build_model(config or TINY_CONFIG).eval()
    # Random (not identity-initialised) BN/head weights so outputs depend on the inputs.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
    return save_safetensors(model, path)
