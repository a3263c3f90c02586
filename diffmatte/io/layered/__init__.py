"""Layered images without Qt: PSD (psd-tools), OpenRaster (stdlib + Pillow) and layered
TIFF (tifffile), read into one :class:`LayeredImage` model and written back.

>>> from diffmatte import layered
>>> doc = layered.read("shot.psd")
>>> [(path, layer) for path, layer in doc.find("subject*")]
>>> layer.set_mask(alpha)                      # H x W float in [0, 1], canvas size
>>> layered.write(doc, "out/shot.psd")          # atomic; same format as the extension
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Tuple, Union

from .model import LayeredError, LayeredImage, Layer, Mask

__all__ = ["EXTENSIONS", "LayeredError", "LayeredImage", "Layer", "Mask", "format_of", "probe", "read",
           "write", "encode"]

PathLike = Union[str, os.PathLike]
#: File extensions of layered formats (TIFF is layered only with more than one page).
EXTENSIONS = {".psd": "psd", ".ora": "ora", ".tif": "tiff", ".tiff": "tiff"}


def format_of(path: PathLike) -> str:
    """'psd', 'ora' or 'tiff' from the extension; LayeredError for anything else."""
    fmt = EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise LayeredError(f"{path}: not a layered format (use .psd, .ora or .tif)")
    return fmt


def read(source: Union[PathLike, bytes], fmt: str = "", name: str = "") -> LayeredImage:
    """Read a PSD, OpenRaster or layered TIFF from a path or from bytes (then give ``fmt``)."""
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), name or "data"
        if not fmt:
            raise LayeredError("reading bytes needs fmt='psd', 'ora' or 'tiff'")
    else:
        label, fmt = name or str(source), fmt or format_of(source)
        data = Path(source).read_bytes()
    if fmt == "psd":
        from .psd import read_psd
        return read_psd(data, label)
    if fmt == "ora":
        from .ora import read_ora
        return read_ora(data, label)
    if fmt == "tiff":
        from .tiff import read_tiff
        return read_tiff(data, label)
    raise LayeredError(f"unknown layered format {fmt!r}")


def encode(img: LayeredImage, fmt: str) -> bytes:
    """``img`` as the bytes of a ``fmt`` file ('psd', 'ora' or 'tiff')."""
    import io

    buf = io.BytesIO()
    if fmt == "psd":
        from .psd import write_psd
        write_psd(img, buf)
    elif fmt == "ora":
        from .ora import write_ora
        write_ora(img, buf)
    elif fmt == "tiff":
        from .tiff import write_tiff
        write_tiff(img, buf)
    else:
        raise LayeredError(f"unknown layered format {fmt!r}")
    return buf.getvalue()


def write(img: LayeredImage, path: PathLike, fmt: str = "") -> Path:
    """Write ``img`` to ``path`` atomically (temp file beside it, then one rename)."""
    from ..fsutil import atomic_path

    dest = Path(path)
    data = encode(img, fmt or format_of(dest))
    with atomic_path(dest) as tmp:
        Path(tmp).write_bytes(data)
    return dest


def probe(data: bytes, fmt: str) -> Tuple[int, int, int]:
    """(width, height, pages) of a layered file from its headers, decoding no pixels;
    ``pages`` is the number of full-resolution TIFF pages (0 for PSD and OpenRaster).
    Raises LayeredError for a file that is not of that format."""
    import io
    import struct
    import zipfile

    if fmt == "psd":
        if len(data) < 26 or data[:4] != b"8BPS":
            raise LayeredError("not a PSD file (bad signature)")
        height, width = struct.unpack(">II", data[14:22])
        return width, height, 0
    if fmt == "ora":
        from xml.etree import ElementTree as ET
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                root = ET.fromstring(zf.read("stack.xml")[: 16 << 20])
            return int(root.get("w", "0")), int(root.get("h", "0")), 0
        except (zipfile.BadZipFile, KeyError, ET.ParseError, ValueError) as exc:
            raise LayeredError(f"not an OpenRaster file ({exc})") from None
    if fmt == "tiff":
        import tifffile

        from .tiff import PHOTOSHOP_LAYERS
        try:
            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                pages = [p for p in tif.pages if not p.is_reduced]
                if not pages:
                    raise LayeredError("TIFF without image pages")
                if len(pages) == 1 and PHOTOSHOP_LAYERS in pages[0].tags:
                    raise LayeredError("Photoshop keeps this TIFF's layers in its own block, which is not "
                                       "supported; save it as PSD (or as a TIFF with one page per layer)")
                return (max(p.imagewidth for p in pages), max(p.imagelength for p in pages), len(pages))
        except LayeredError:
            raise
        except Exception as exc:  # noqa: BLE001 - tifffile raises many types for bad bytes
            raise LayeredError(f"not a readable TIFF ({exc})") from None
    raise LayeredError(f"unknown layered format {fmt!r}")
