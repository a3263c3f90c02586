"""Cut-out files: 8/16-bit RGBA PNG or TIFF written atomically, the ICC profile kept,
the result parameters stored as text in the file (written by ``diffmatte refine --rgba``,
batch and the editor; the pixels come from :mod:`diffmatte.finish.cutout`)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from .images import PathLike

__all__ = ["write_cutout", "read_icc", "read_params", "encode_png_rgba16", "PARAMS_KEY"]


def read_icc(path: PathLike) -> Optional[bytes]:
    """The embedded ICC profile of an image file, or None."""
    from PIL import Image

    with Image.open(path) as im:
        icc = im.info.get("icc_profile")
    return bytes(icc) if icc else None


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


PARAMS_KEY = "Refine Matte"  # PNG text / TIFF description key of the result parameters


def encode_png_rgba16(rgba: np.ndarray, icc: Optional[bytes] = None, text: Optional[str] = None) -> bytes:
    """16-bit RGBA PNG bytes (Pillow cannot write 16-bit colour PNGs)."""
    h, w = rgba.shape[:2]
    rows = np.ascontiguousarray(rgba.astype(">u2")).view(np.uint8).reshape(h, w * 8)
    raw = np.hstack([np.zeros((h, 1), np.uint8), rows])  # filter byte 0 per row
    out = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0))
    if icc:
        out += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if text:
        out += _png_chunk(b"tEXt", PARAMS_KEY.encode("latin-1") + b"\x00" + text.encode("latin-1", "replace"))
    out += _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _png_chunk(b"IEND", b"")
    return out


def write_cutout(path: PathLike, rgba: np.ndarray, icc: Optional[bytes] = None,
                 params: Optional[Dict[str, Any]] = None) -> Path:
    """Write an RGBA array (uint8 or uint16) as PNG or TIFF, atomically, with ``icc``
    embedded and ``params`` (the result parameters) as JSON text in the file."""
    import json

    from .fsutil import atomic_path

    text = json.dumps(params, sort_keys=True) if params else None

    dest = Path(path)
    ext = dest.suffix.lower()
    if ext not in (".png", ".tif", ".tiff"):
        raise ValueError(f"cannot write a cut-out as {ext or 'a file without extension'}: use .png or .tif")
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected an H x W x 4 uint8/uint16 array, got {rgba.shape} {rgba.dtype}")
    with atomic_path(dest) as tmp:
        if rgba.dtype == np.uint8:
            from PIL import Image

            kwargs: Dict[str, Any] = {"icc_profile": icc} if icc else {}
            if text and ext == ".png":
                from PIL.PngImagePlugin import PngInfo

                info = PngInfo()
                info.add_text(PARAMS_KEY, text)
                kwargs["pnginfo"] = info
            elif text:
                kwargs["description"] = text
            Image.fromarray(rgba, "RGBA").save(tmp, format="PNG" if ext == ".png" else "TIFF", **kwargs)
        elif ext == ".png":
            Path(tmp).write_bytes(encode_png_rgba16(rgba, icc, text))
        else:
            try:
                import tifffile
            except ImportError:
                raise ValueError("16-bit TIFF cut-outs need the tifffile package; save as .png "
                                 "(16-bit) instead") from None
            extratags = [(34675, "B", len(icc), icc, True)] if icc else []
            tifffile.imwrite(tmp, rgba, photometric="rgb", extrasamples=[2], extratags=extratags,
                             description=text)
    return dest


def read_params(path: PathLike) -> Optional[Dict[str, Any]]:
    """The result parameters stored in a cut-out written by :func:`write_cutout`, or None."""
    import json

    from PIL import Image

    with Image.open(path) as im:
        text = im.info.get(PARAMS_KEY) or (im.tag_v2.get(270) if hasattr(im, "tag_v2") else None)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
