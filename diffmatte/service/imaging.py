"""Decoding of untrusted images with size limits, and PNG encoding of results.

Every function raises :class:`InvalidInput` (422) or :class:`TooLarge` (413) with a
message that names the field and the limit; nothing here may raise anything else for
bad bytes, because the service turns unexpected exceptions into 500s.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Dict, Optional, Tuple

import numpy as np
from fastapi.responses import Response
from PIL import Image, UnidentifiedImageError

from .errors import InvalidInput, TooLarge

# Formats a front end can reasonably send; everything else (PSD, ICO, EPS, ...) is
# refused before a decoder runs, which keeps the attack surface small.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
TRIMAP_VALUES = (0, 128, 255)


def b64decode_field(value: str, field: str) -> bytes:
    """Decode a base64 string from the JSON body, naming ``field`` on failure."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"field '{field}' must be a non-empty base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"field '{field}' is not valid base64: {exc}") from None


def _open(data: bytes, field: str, max_pixels: int, option: str = "--max-megapixels") -> Image.Image:
    """Open ``data`` lazily and check its size before any pixel is decoded."""
    if not data:
        raise InvalidInput(f"field '{field}' is empty")
    limit = f"the limit is {max_pixels / 1e6:.1f} megapixels ({option})"
    try:
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"'{field}' is a decompression bomb ({exc}); {limit}") from None
    except UnidentifiedImageError:
        raise InvalidInput(
            f"'{field}' is not an image in an accepted format ({', '.join(ALLOWED_FORMATS)})"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(
            f"'{field}' is not a readable image (accepted: {', '.join(ALLOWED_FORMATS)}): {exc}"
        ) from None
    width, height = img.size
    if width < 1 or height < 1:
        raise InvalidInput(f"'{field}' has an empty size {width}x{height}")
    if width * height > max_pixels:
        raise TooLarge(
            f"'{field}' is {width}x{height} = {width * height / 1e6:.1f} megapixels; {limit}"
        )
    return img


def _load(img: Image.Image, field: str) -> Image.Image:
    try:
        img.load()
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"'{field}' is a decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise InvalidInput(f"'{field}' is corrupt or truncated: {exc}") from None
    return img


def decode_rgb(data: bytes, field: str, max_pixels: int, option: str = "--max-megapixels") -> np.ndarray:
    """Decode an image to H x W x 3 uint8 (alpha is dropped, palettes expanded)."""
    img = _load(_open(data, field, max_pixels, option), field)
    try:
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            grey = np.asarray(img, dtype=np.float64)
            top = 65535.0 if img.mode != "F" else 1.0
            grey = np.clip(np.rint(grey / top * 255.0), 0, 255).astype(np.uint8)
            return np.repeat(grey[:, :, None], 3, axis=2)
        # one copy, writable (PIL's array view is read-only); convert() copies too, so only
        # where the mode needs it (a 24 MP photo: 0.3 s less of the refine's upload, #23)
        return np.array(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"'{field}' cannot be converted to RGB: {exc}") from None


def decode_grey(data: bytes, field: str, max_pixels: int, option: str = "--max-megapixels") -> np.ndarray:
    """Decode a single-channel map (mask, trimap, scribbles) to H x W uint8.

    Transparency counts as black, so both a grey image and a painted layer on a
    transparent background work.
    """
    img = _load(_open(data, field, max_pixels, option), field)
    try:
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img, dtype=np.float64)
            return np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        if img.mode == "F":
            arr = np.asarray(img, dtype=np.float64)
            return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
        has_alpha = img.mode in ("RGBA", "LA", "PA") or (
            img.mode == "P" and "transparency" in img.info
        )
        if has_alpha:
            la = np.asarray(img.convert("LA"), dtype=np.uint16)
            return ((la[:, :, 0] * la[:, :, 1] + 127) // 255).astype(np.uint8)
        return np.asarray(img.convert("L"), dtype=np.uint8).copy()
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"'{field}' cannot be converted to greyscale: {exc}") from None


def decode_alpha(data: bytes, field: str, max_pixels: int) -> np.ndarray:
    """Decode an alpha matte to H x W: uint16 for 16-bit grey (every level kept), else uint8.
    A mode Pillow cannot turn into grey (LAB, ...) is a 422, not a 500 (issue #25)."""
    img = _load(_open(data, field, max_pixels), field)
    try:
        if img.mode.startswith("I"):  # 16-bit grey PNG: keep every level
            return np.clip(np.asarray(img), 0, 65535).astype(np.uint16)
        return np.asarray(img.convert("L"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"'{field}' cannot be converted to greyscale: {exc}") from None


def check_trimap(trimap: np.ndarray, field: str, quantize: bool) -> np.ndarray:
    """Check that ``trimap`` holds only 0/128/255, or snap it when ``quantize``."""
    if quantize:
        out = np.full(trimap.shape, 128, dtype=np.uint8)
        out[trimap < 64] = 0
        out[trimap > 191] = 255
        return out
    if trimap.dtype == np.uint8:  # a table lookup: np.isin took 0.6 s of a 24 MP upload (issue #23)
        allowed = np.zeros(256, bool)
        allowed[list(TRIMAP_VALUES)] = True
        bad = ~allowed[trimap]
    else:
        bad = ~np.isin(trimap, TRIMAP_VALUES)
    if bad.any():
        values = np.unique(trimap[bad])
        shown = ", ".join(str(int(v)) for v in values[:8])
        raise InvalidInput(
            f"'{field}' has {int(bad.sum())} pixels with values outside 0/128/255 "
            f"(found {shown}{', ...' if values.size > 8 else ''}); "
            "send a clean trimap or set \"quantize_trimap\": true"
        )
    return trimap


def check_same_size(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise 422 when two decoded maps differ in size."""
    if a.shape[:2] != b.shape[:2]:
        raise InvalidInput(
            f"'{name_b}' is {b.shape[1]}x{b.shape[0]} but '{name_a}' is "
            f"{a.shape[1]}x{a.shape[0]}; they must be the same size"
        )


def encode_png(array: np.ndarray, compress_level: int = 3) -> bytes:
    """Encode a uint8 or uint16 H x W (or H x W x 3) array as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def alpha_to_png16(alpha: np.ndarray) -> bytes:
    """Encode a float alpha in [0, 1] as a 16-bit greyscale PNG."""
    arr = np.asarray(alpha, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise ValueError(f"alpha must be H x W, got shape {arr.shape}")
    arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
    return encode_png(np.rint(np.clip(arr, 0.0, 1.0) * 65535.0).astype(np.uint16))


def preview_png(x0: np.ndarray, max_side: int) -> Optional[bytes]:
    """Downscale an x0 prediction (H x W in [0, 1]) to a small 8-bit PNG."""
    arr = np.asarray(x0, dtype=np.float32)
    while arr.ndim > 2:
        arr = arr[0] if arr.shape[0] == 1 else arr[..., 0]
    if arr.ndim != 2 or arr.size == 0:
        return None
    img = Image.fromarray(np.rint(np.clip(np.nan_to_num(arr), 0, 1) * 255).astype(np.uint8))
    h, w = arr.shape
    scale = min(1.0, max_side / float(max(h, w)))
    if scale < 1.0:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def image_size(arr: np.ndarray) -> Tuple[int, int]:
    """Return (width, height) of a decoded array."""
    return int(arr.shape[1]), int(arr.shape[0])


def png_response(data: bytes, headers: Optional[Dict[str, str]] = None) -> Response:
    """An HTTP answer carrying PNG bytes."""
    return Response(content=data, media_type="image/png", headers=headers)
