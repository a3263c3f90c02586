"""Training checkpoints (model, EMA, optimiser, scaler, step): atomic save and load.
Written by training (:mod:`diffmatte.train.loop`), read by training, export and evaluation."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..io.fsutil import atomic_path

LAST = "last.pt"


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temp file in the same folder, then os.replace (never a torn file)."""
    dest = Path(path)
    with atomic_path(dest) as tmp:
        torch.save(obj, tmp)
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
