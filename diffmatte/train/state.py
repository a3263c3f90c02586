"""Training state: the EMA of the weights. Checkpoints (model, EMA, optimiser, scaler,
step) are saved and read by :mod:`diffmatte.weights.training_state`, which evaluation
shares without importing training."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..weights.training_state import LAST, atomic_torch_save, load_training_state

__all__ = ["EMA", "LAST", "atomic_torch_save", "load_training_state"]


class EMA:
    """Exponential moving average of a model's parameters (buffers are copied as they are)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        # Short warm-up of the decay so early checkpoints are not dominated by the init.
        d = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.mul_(d).add_(p.detach(), alpha=1 - d)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)
