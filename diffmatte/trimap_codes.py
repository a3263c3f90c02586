"""The engine's one trimap binning rule, for numpy arrays and torch tensors alike.

On a 0..1 trimap (``scale`` = 1; 255 for 0..255 values) a value below a quarter of the
range is background, above three quarters foreground, and the rest, both quarters
included, unknown. It is the rule of ``trimap._validate.as_trimap`` (the user-facing
one; ``trimap`` may not import ``diffmatte``, so a test checks that the two agree) and it
reads the engine's {0, 0.5, 1} trimaps (``io.images.to_trimap``, which bins *files*
with its own 0.1 / 0.9 thresholds) the only way they can be read.

The prior (``prior.solve``, ``prior.closed_form``, ``prior.memo``), training's losses and
evaluation's metrics use these functions instead of writing the thresholds out.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["LOW", "HIGH", "BACKGROUND", "UNKNOWN", "FOREGROUND", "background", "foreground", "unknown",
           "codes"]

LOW, HIGH = 0.25, 0.75                 # the quarters of the range
BACKGROUND, UNKNOWN, FOREGROUND = 0, 1, 2   # what :func:`codes` returns


def background(t: Any, scale: float = 1.0) -> Any:
    """Boolean mask (array or tensor, as ``t``): ``t < LOW * scale``."""
    return t < LOW * scale


def foreground(t: Any, scale: float = 1.0) -> Any:
    """Boolean mask (array or tensor, as ``t``): ``t > HIGH * scale``."""
    return t > HIGH * scale


def unknown(t: Any, scale: float = 1.0) -> Any:
    """Boolean mask (array or tensor, as ``t``): neither background nor foreground."""
    return ~(background(t, scale) | foreground(t, scale))


def codes(t: Any, scale: float = 1.0) -> Any:
    """uint8 codes BACKGROUND / UNKNOWN / FOREGROUND (0 / 1 / 2), as a numpy array for an
    array-like ``t`` or as a tensor on ``t``'s device for a torch tensor."""
    if isinstance(t, torch.Tensor):
        return (~background(t, scale)).to(torch.uint8) + foreground(t, scale).to(torch.uint8)
    a = np.asarray(t)
    return (~background(a, scale)).astype(np.uint8) + foreground(a, scale).astype(np.uint8)
