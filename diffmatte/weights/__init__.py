"""Checkpoint loading/validation/conversion, the weights registry and downloads.

Lazy: the registry and downloader import without torch; checkpoint helpers load it.
"""
from __future__ import annotations

from typing import Any

_CHECKPOINT = ("convert_to_safetensors", "detect_config", "load_model", "read_checkpoint", "save_safetensors",
               "validate_state_dict")

__all__ = list(_CHECKPOINT)


def __getattr__(name: str) -> Any:
    if name in _CHECKPOINT:
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'diffmatte.weights' has no attribute {name!r}")
