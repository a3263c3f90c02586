"""Input checking and coercion shared by the trimap generators.

Every public function funnels its arrays through here so that bad input fails
with a ``ValueError`` that names the argument and the problem, instead of a
numpy broadcasting error three calls deeper.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

FG = 255
BG = 0
UNKNOWN = 128


def _scaled(arr: np.ndarray, top: float, check: Optional[Callable[[float], None]]) -> np.ndarray:
    """``arr / top`` in float32 (the same numbers as ``arr.astype(np.float32) / top``), divided
    in place (one fresh 24 MP array, not two) and, with ``check``, in bands of rows."""
    h = arr.shape[0]
    rows = BAND_ROWS if check is not None else h
    out = np.empty(arr.shape, np.float32)
    for y0 in range(0, h, rows):
        band = out[y0:y0 + rows]
        band[...] = arr[y0:y0 + rows]
        band /= top
        if check is not None:
            check(min(1.0, (y0 + rows) / h))
    return out


def as_mask(mask: object, name: str = "mask") -> np.ndarray:
    """Return ``mask`` as an H x W float32 array in [0, 1].

    Accepts bool, integer (uint8 0..255, uint16 0..65535, other ints 0..255)
    and float (0..1) arrays, also H x W x 1. An integer mask whose maximum is 1
    is read as a 0/1 label image. Raises ``ValueError`` otherwise.
    """
    if mask is None:
        raise ValueError(f"{name} is required, got None")
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D H x W array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"{name}: integer masks must lie in 0..255, got {lo}..{hi}")
        if hi == 1:
            # A 0/1 label image (common from numpy code and some tools), not a
            # nearly transparent 0..255 mask.
            return arr.astype(np.float32)
        return arr.astype(np.float32) / 255.0
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{name}: float masks must lie in 0..1, got {lo:.3g}..{hi:.3g}")
        return arr.astype(np.float32)
    raise ValueError(f"{name} has unsupported dtype {arr.dtype}")


#: rows converted per progress report by :func:`as_image`
BAND_ROWS = 500


def as_image(image: object, name: str = "image", check: Optional[Callable[[float], None]] = None) -> np.ndarray:
    """Return ``image`` as an H x W x 3 float32 RGB array in [0, 1].

    Accepts uint8, uint16 and float (0..1) images that are grey (H x W),
    RGB or RGBA (alpha is dropped). ``check(fraction)``, when given, hears an 8- or 16-bit
    image's conversion in bands of rows (a second or more at 24 MP: a fresh 288 MB array).
    """
    if image is None:
        raise ValueError(f"{name} is required, got None")
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"{name} must be H x W, H x W x 3 or H x W x 4, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.dtype in (np.uint8, np.uint16):
        return _scaled(arr, 255.0 if arr.dtype == np.uint8 else 65535.0, check)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if float(arr.min()) < 0.0 or float(arr.max()) > 1.0:
            raise ValueError(f"{name}: float images must lie in 0..1")
        return arr.astype(np.float32)
    raise ValueError(f"{name} has unsupported dtype {arr.dtype} (use uint8, uint16 or float)")


def as_trimap(trimap: object, name: str = "trimap") -> np.ndarray:
    """Return ``trimap`` as H x W uint8 with values snapped to {0, 128, 255}.

    Float trimaps (0..1) and anti-aliased uint8 trimaps are accepted: values
    below 1/4 are background, above 3/4 foreground, the rest unknown.
    """
    t = as_mask(trimap, name)
    out = np.full(t.shape, UNKNOWN, np.uint8)
    out[t < 0.25] = BG
    out[t > 0.75] = FG
    return out


def check_same_shape(shape: Tuple[int, int], arr: np.ndarray, name: str, ref: str) -> None:
    """Raise ``ValueError`` unless ``arr`` is H x W of ``shape``."""
    if tuple(arr.shape[:2]) != tuple(shape[:2]):
        raise ValueError(
            f"{name} has size {arr.shape[1]}x{arr.shape[0]} (W x H) but {ref} is "
            f"{shape[1]}x{shape[0]}; they must match"
        )


#: the widest band radius accepted (pixels), by the library, the CLI and the service alike:
#: beyond it nearly any photo would be all unknown, and the matte flat
MAX_BAND = 1024.0


def check_band(band: object, name: str = "band") -> float:
    """Return ``band`` as a float in [0, MAX_BAND] or raise ``ValueError``."""
    try:
        value = float(band)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of pixels, got {band!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {band!r}")
    if value > MAX_BAND:
        raise ValueError(f"{name} must be at most {MAX_BAND:.0f} pixels (a radius; the whole photo would be "
                         f"unknown), got {band!r}")
    return value


def stroke_masks(
    shape: Tuple[int, int], region: object, fg: object, bg: object, unknown: object
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """The region and stroke masks as bools, checked: a pixel painted both foreground and
    background is unknown; strokes alone need one of each; a selection must not be empty."""
    reg = None if region is None else _as_bool(region, shape, "region")
    fg_m = None if fg is None else _as_bool(fg, shape, "fg")
    bg_m = None if bg is None else _as_bool(bg, shape, "bg")
    unk_m = None if unknown is None else _as_bool(unknown, shape, "unknown")
    if fg_m is not None and bg_m is not None:
        both = fg_m & bg_m
        unk_m = both if unk_m is None else unk_m | both
        fg_m, bg_m = fg_m & ~both, bg_m & ~both
    if reg is None and (fg_m is None or not fg_m.any() or bg_m is None or not bg_m.any()):
        raise ValueError("strokes need at least one foreground and one background stroke "
                         "(or give a selection)")
    if reg is not None and not reg.any():
        raise ValueError("the selection is empty: select the subject (a rough outline is enough)")
    return reg, fg_m, bg_m, unk_m


def _as_bool(arr: object, shape: Tuple[int, int], name: str) -> np.ndarray:
    m = as_mask(arr, name)
    check_same_shape(shape, m, name, "image")
    return m >= 0.5
