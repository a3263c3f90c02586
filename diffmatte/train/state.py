"""Training checkpoints (model, EMA, optimiser, scaler, step): atomic save and load."""
from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

LAST = "last.pt"


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


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temp file in the same folder, then os.replace (never a torn file)."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=str(dest.parent))
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint written by :func:`atomic_torch_save` (tensors only)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot read training checkpoint {path}: {exc}") from exc
    for key in ("model", "optimizer", "step", "model_config"):
        if key not in state:
            raise ValueError(f"{path} is not a training checkpoint (missing {key!r})")
    return state
