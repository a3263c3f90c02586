"""Edge controls on a finished matte, as in Select and Mask: smooth, feather, contrast
and shift edge.  Pure numpy/scipy on the alpha; the engine is never re-run.

They are applied in that order (the order Photoshop's panel lists them): smooth
rounds jagged contours, feather softens, contrast hardens, shift moves the edge
out (+) or in (-).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Mapping

import numpy as np
from scipy import ndimage as ndi

__all__ = ["EdgeParams", "apply_edges", "LIMITS"]

# (low, high) of each control; the panel's widgets use the same ranges.
LIMITS = {"shift": (-50.0, 50.0), "feather": (0.0, 50.0), "contrast": (0.0, 100.0), "smooth": (0.0, 20.0)}


@dataclass(frozen=True)
class EdgeParams:
    """Edge controls; all zero leaves the matte unchanged.

    shift: px to move the edge outward (+) or inward (-) (grey dilation / erosion);
    feather: Gaussian blur radius in px (sigma = radius / 2);
    contrast: 0..100 %: steepens the transition around alpha 0.5 (100 = hard edge);
    smooth: 0..20 px: blurs the contour by that radius, then restores its steepness,
    which rounds off jagged, stair-stepped edges without widening them.
    """

    shift: float = 0.0
    feather: float = 0.0
    contrast: float = 0.0
    smooth: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = float(getattr(self, f.name))
            lo, hi = LIMITS[f.name]
            if not np.isfinite(value) or not lo <= value <= hi:
                raise ValueError(f"edge control '{f.name}' must lie in [{lo:g}, {hi:g}], got {value}")
            object.__setattr__(self, f.name, value)

    def is_identity(self) -> bool:
        return all(getattr(self, f.name) == 0 for f in fields(self))

    def to_dict(self) -> Dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "EdgeParams":
        """Build from a mapping; unknown keys are an error naming them."""
        data = dict(data or {})
        names = {f.name for f in fields(cls)}
        extra = set(data) - names
        if extra:
            raise ValueError(f"unknown edge control(s): {', '.join(sorted(extra))} (known: {', '.join(sorted(names))})")
        return cls(**{k: float(v) for k, v in data.items()})


def _shift(alpha: np.ndarray, px: float) -> np.ndarray:
    """Grey dilation (px > 0) or erosion (px < 0) by a disc of radius |px|.

    Whole pixels are done with alternating 3 x 3 square / cross passes (an octagon,
    close to a disc at a cost linear in the radius); the fractional rest blends
    with one more pass.
    """
    op = ndi.grey_dilation if px > 0 else ndi.grey_erosion
    cross = ndi.generate_binary_structure(2, 1)
    whole, frac = int(abs(px)), abs(px) - int(abs(px))
    out = alpha
    for i in range(whole):
        out = op(out, footprint=cross if i % 2 else np.ones((3, 3), bool), mode="nearest")
    if frac > 1e-6:
        nxt = op(out, footprint=cross, mode="nearest")
        out = out + np.float32(frac) * (nxt - out)
    return out


def _contrast(alpha: np.ndarray, percent: float) -> np.ndarray:
    if percent >= 100.0:
        return (alpha >= 0.5).astype(np.float32)
    gain = 1.0 / (1.0 - percent / 100.0)
    return np.clip((alpha - 0.5) * gain + 0.5, 0.0, 1.0)


def apply_edges(alpha: np.ndarray, params: EdgeParams | Mapping[str, Any] | None) -> np.ndarray:
    """Apply the edge controls to ``alpha`` (H x W, float in [0, 1] or uint8/uint16).

    Returns float32 in [0, 1]; the input is not modified.
    """
    p = params if isinstance(params, EdgeParams) else EdgeParams.from_dict(params)
    a = np.asarray(alpha)
    if a.ndim != 2:
        raise ValueError(f"alpha must be H x W; got shape {a.shape}")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    else:
        a = np.clip(a.astype(np.float32), 0.0, 1.0)
    if p.is_identity():
        return a.copy()
    if p.smooth > 0:
        sigma = p.smooth / 2.0
        blurred = ndi.gaussian_filter(a, sigma, mode="nearest")
        # A Gaussian of this sigma spreads a hard edge over ~2.5 sigma; steepen it back so
        # only the contour's shape is smoothed, not its width.
        gain = 1.0 + sigma
        a = np.clip((blurred - 0.5) * gain + 0.5, 0.0, 1.0).astype(np.float32)
    if p.feather > 0:
        a = ndi.gaussian_filter(a, p.feather / 2.0, mode="nearest")
    if p.contrast > 0:
        a = _contrast(a, p.contrast)
    if p.shift != 0:
        a = _shift(a, p.shift)
    return np.clip(a, 0.0, 1.0).astype(np.float32)
