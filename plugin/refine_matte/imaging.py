"""QImage helpers that need nothing but Qt and the stdlib: PNG bytes, grey masks, view composites.

The panel runs inside a host's Python (stdlib + Qt only), so everything here
works on QImage and never touches numpy.
"""

from __future__ import annotations

import struct
import zlib
from typing import Callable, Optional

from .qt import QtCore, QtGui

QImage = QtGui.QImage
Fmt = QtGui.QImage.Format

VIEW_MODES = (
    # (id, label, keys)
    ("overlay", "Overlay", ("O", "1")),
    ("black", "On black", ("K", "2")),
    ("white", "On white", ("W", "3")),
    ("trimap", "Trimap", ("T", "4")),
    ("alpha", "Alpha", ("A", "5")),
    ("split", "Split before/after", ("S", "6")),
)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: rows per band of the plugin's own PNG encoder: a progress report and a zlib call per band
#: (about 0.2 s at 6000 px wide)
BAND_ROWS = 200
#: the formats the plugin encodes itself: bytes a pixel, PNG colour type
_BANDED = {Fmt.Format_RGB888: (3, 2), Fmt.Format_Grayscale8: (1, 0)}


def qimage_to_png(image: "QImage", progress: Optional[Callable[[float], None]] = None) -> bytes:
    """PNG bytes of a QImage: the plugin's one PNG writer. 8-bit RGB and grey (everything the
    engine is sent) are deflated here band by band, ``progress(fraction)`` after each band:
    a 24 MP layer took Qt's own encoder 6-12 s in one call on a busy 2-core machine, with
    nothing to show for it (issue #23); fast deflate (level 1) and no row filter take about
    a third of that, for a larger upload that only crosses the loopback. Other formats
    (16-bit stays 16-bit) go through Qt's encoder, one report at the end."""
    if image is None or image.isNull():
        raise ValueError("cannot encode an empty image")
    if image.format() in _BANDED:
        return _banded_png(image, progress)
    data = QtCore.QByteArray()
    buf = QtCore.QBuffer(data)
    buf.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    ok = image.save(buf, "PNG")
    buf.close()
    if not ok:
        raise ValueError("Qt could not encode the image as PNG")
    if progress is not None:
        progress(1.0)
    return bytes(data)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _banded_png(image: "QImage", progress: Optional[Callable[[float], None]]) -> bytes:
    """PNG of an RGB888 or Grayscale8 QImage, deflated in bands of BAND_ROWS rows."""
    per_px, colour = _BANDED[image.format()]
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    raw = image_bytes(image)
    width_bytes = w * per_px
    z = zlib.compressobj(1)
    parts = [_PNG_SIGNATURE, _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))]
    for y0 in range(0, h, BAND_ROWS):
        # filter byte 0 (none) before each row
        rows = b"".join(b"\0" + raw[y * stride:y * stride + width_bytes] for y in range(y0, min(h, y0 + BAND_ROWS)))
        data = z.compress(rows)
        if data:
            parts.append(_png_chunk(b"IDAT", data))
        if progress is not None:
            progress(min(h, y0 + BAND_ROWS) / h)
    parts.append(_png_chunk(b"IDAT", z.flush()))
    parts.append(_png_chunk(b"IEND", b""))
    return b"".join(parts)


def png_to_qimage(data: bytes) -> "QImage":
    """Decode PNG (or any Qt-readable) bytes; raises ValueError on bad data.

    PNG data is decoded with the format named: without it Qt asks every image
    plugin whether it can read the bytes, and the SVG plugin's probe disconnects
    Qt signals, taking a lock that the GUI thread may hold while it waits for
    Python's GIL (a deadlock seen when a job thread decoded a preview while an
    old window was being destroyed).
    """
    image = QImage()
    raw = bytes(data) if data else b""
    fmt = "PNG" if raw.startswith(_PNG_SIGNATURE) else None
    ok = bool(raw) and (image.loadFromData(QtCore.QByteArray(raw), fmt) if fmt
                        else image.loadFromData(QtCore.QByteArray(raw)))
    if not ok:
        raise ValueError("the engine returned data that is not a readable image")
    return image


def image_bytes(image: "QImage") -> bytes:
    """Raw pixel buffer of a QImage (rows padded to bytesPerLine)."""
    ptr = image.constBits()
    size = image.sizeInBytes() if hasattr(image, "sizeInBytes") else image.byteCount()
    ptr.setsize(size)
    return bytes(ptr)


def count_above(mask: "QImage", level: int) -> int:
    """How many pixels of a grey mask (any format: its luminance) are above ``level``.
    Byte-wise in C (bytes.translate), so it is quick on large photos."""
    grey = to_grey8(mask)
    w, h, bpl = grey.width(), grey.height(), grey.bytesPerLine()
    data = image_bytes(grey)
    if bpl != w:
        data = b"".join(data[y * bpl: y * bpl + w] for y in range(h))
    table = bytes(1 if v > level else 0 for v in range(256))
    return data[: w * h].translate(table).count(1)


def to_grey8(mask: "QImage") -> "QImage":
    """Any mask-like image as Grayscale8 (RGB masks use their luminance)."""
    if mask.format() == Fmt.Format_Grayscale8:
        return mask
    return mask.convertToFormat(Fmt.Format_Grayscale8)


def grey_to_alpha8(mask: "QImage") -> "QImage":
    """Reinterpret a grey mask's levels as an Alpha8 image (for DestinationIn)."""
    grey = to_grey8(mask)
    out = QImage(image_bytes(grey), grey.width(), grey.height(),
                 grey.bytesPerLine(), Fmt.Format_Alpha8)
    return out.copy()  # detach from the temporary Python buffer


def rgb_for_engine(image: "QImage") -> "QImage":
    """8-bit RGB copy of a layer: what the engine needs, and cheap to send."""
    return image.convertToFormat(Fmt.Format_RGB888)


def blank_mask(width: int, height: int) -> "QImage":
    """A black Grayscale8 image of the given size."""
    img = QImage(width, height, Fmt.Format_Grayscale8)
    img.fill(0)
    return img


def cutout(image: "QImage", alpha: "QImage") -> "QImage":
    """Premultiplied ARGB32 image with its alpha replaced by ``alpha``."""
    out = image.convertToFormat(Fmt.Format_ARGB32_Premultiplied)
    if alpha.size() != out.size():
        alpha = alpha.scaled(out.size())
    p = QtGui.QPainter(out)
    p.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_DestinationIn)
    p.drawImage(0, 0, grey_to_alpha8(alpha))
    p.end()
    return out


def _tint(size: "QtCore.QSize", color: "QtGui.QColor", coverage: "QImage") -> "QImage":
    layer = QImage(size, Fmt.Format_ARGB32_Premultiplied)
    layer.fill(color)
    p = QtGui.QPainter(layer)
    p.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_DestinationIn)
    p.drawImage(0, 0, grey_to_alpha8(coverage))
    p.end()
    return layer


def straight_to_premultiplied(rgba: "QImage") -> "QImage":
    """A straight-alpha RGBA cut-out (8 or 16 bit) ready to draw."""
    return rgba.convertToFormat(Fmt.Format_ARGB32_Premultiplied)


def compose_view(mode: str, image: Optional["QImage"], alpha: Optional["QImage"],
                 trimap: Optional["QImage"], split: float = 0.5,
                 cutout_image: Optional["QImage"] = None) -> Optional["QImage"]:
    """Render one of VIEW_MODES into an RGB32 image of the layer's size.

    Without an alpha the matte-based modes fall back to the plain image, so a
    view switch before the first refine never shows a blank canvas.
    ``cutout_image`` (straight RGBA, e.g. with decontaminated colours) replaces
    the image-under-alpha in the cut-out views when given.
    The trimap view lays the trimap over a dimmed copy of the image, so the
    unknown band (mid grey) can be judged against the subject.
    """
    if image is None or image.isNull():
        return None
    size = image.size()
    base = image.convertToFormat(Fmt.Format_RGB32)
    if mode == "trimap":
        if trimap is None:
            return base
        out = to_grey8(trimap.scaled(size)).convertToFormat(Fmt.Format_RGB32)
        p = QtGui.QPainter(out)
        p.setOpacity(0.3)
        p.drawImage(0, 0, base)
        p.end()
        return out
    if alpha is None:
        return base
    if alpha.size() != size:
        alpha = alpha.scaled(size)
    cut = (straight_to_premultiplied(cutout_image)
           if cutout_image is not None and cutout_image.size() == size else None)
    if mode == "alpha":
        return to_grey8(alpha).convertToFormat(Fmt.Format_RGB32)
    out = QImage(size, Fmt.Format_RGB32)
    p = QtGui.QPainter(out)
    if mode == "overlay":
        # Quick-mask convention: background tinted red, foreground untouched.
        p.drawImage(0, 0, base)
        inverse = to_grey8(alpha).copy()
        inverse.invertPixels()
        p.setOpacity(0.55)
        p.drawImage(0, 0, _tint(size, QtGui.QColor(230, 30, 40), inverse))
    elif mode in ("black", "white"):
        out.fill(QtGui.QColor(0, 0, 0) if mode == "black" else QtGui.QColor(255, 255, 255))
        p.drawImage(0, 0, cut if cut is not None else cutout(image, alpha))
    elif mode == "split":
        _checker(p, size)
        p.drawImage(0, 0, cut if cut is not None else cutout(image, alpha))
        x = int(round(size.width() * min(max(split, 0.0), 1.0)))
        p.drawImage(QtCore.QRect(0, 0, x, size.height()), base,
                    QtCore.QRect(0, 0, x, size.height()))
    else:
        p.end()
        raise ValueError(f"unknown view mode {mode!r}")
    p.end()
    return out


def _checker(p: "QtGui.QPainter", size: "QtCore.QSize", cell: int = 16) -> None:
    tile = QImage(2 * cell, 2 * cell, Fmt.Format_RGB32)
    tile.fill(QtGui.QColor(205, 205, 205))
    tp = QtGui.QPainter(tile)
    dark = QtGui.QColor(150, 150, 150)
    tp.fillRect(0, 0, cell, cell, dark)
    tp.fillRect(cell, cell, cell, cell, dark)
    tp.end()
    p.fillRect(QtCore.QRect(QtCore.QPoint(0, 0), size), QtGui.QBrush(tile))
