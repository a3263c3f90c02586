"""PNG bytes of an 8-bit image for the engine, encoded in row bands with progress (stdlib
zlib + Qt): a 24 MP layer took Qt's own encoder 6-12 s in one call on a busy 2-core
machine, with nothing to show for it (issue #23); fast deflate (level 1) and no row
filter take about a third of that, reported band by band, for a larger upload that only
crosses the loopback."""

from __future__ import annotations

import struct
import zlib
from typing import Callable, Optional

from .imaging import image_bytes
from .qt import QtGui

Fmt = QtGui.QImage.Format
#: rows per band: a progress report and a zlib call per band (about 0.2 s at 6000 px wide)
BAND_ROWS = 200
_KINDS = {Fmt.Format_RGB888: (3, 2), Fmt.Format_Grayscale8: (1, 0)}  # bytes a pixel, PNG colour type


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def engine_png(image: "QtGui.QImage", progress: Optional[Callable[[float], None]] = None) -> bytes:
    """PNG of an RGB888 or Grayscale8 QImage; ``progress(fraction)`` after each band of rows."""
    if image is None or image.isNull() or image.format() not in _KINDS:
        raise ValueError("engine_png needs a non-empty RGB888 or Grayscale8 image")
    per_px, colour = _KINDS[image.format()]
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    raw = image_bytes(image)
    width_bytes = w * per_px
    z = zlib.compressobj(1)
    parts = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))]
    for y0 in range(0, h, BAND_ROWS):
        # filter byte 0 (none) before each row
        rows = b"".join(b"\0" + raw[y * stride:y * stride + width_bytes] for y in range(y0, min(h, y0 + BAND_ROWS)))
        data = z.compress(rows)
        if data:
            parts.append(_chunk(b"IDAT", data))
        if progress is not None:
            progress(min(h, y0 + BAND_ROWS) / h)
    parts.append(_chunk(b"IDAT", z.flush()))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)
