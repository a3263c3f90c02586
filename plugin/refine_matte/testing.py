"""FakeEngineClient: a Qt-only stand-in for EngineClient, for UI tests and demos.

It implements the same methods and callback protocol as
``refine_matte.client.EngineClient`` with simple, deterministic image
operations (no model), and can be slowed down or told to fail so the panel's
progress, cancel and error paths can be exercised without the service.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional

from . import imaging
from .qt import QtCore, QtGui

Fmt = QtGui.QImage.Format


class JobCancelled(Exception):
    """Raised by FakeEngineClient.refine when its cancel_event is set (same name as the client's)."""


class EngineNotRunning(Exception):
    """Same name as the client's error, for the panel's error-message path."""


def _grey_from(png: bytes) -> "QtGui.QImage":
    return imaging.to_grey8(imaging.png_to_qimage(png))


def _paint_where(base: "QtGui.QImage", mask: "QtGui.QImage", level: int) -> None:
    """Set ``base`` (RGB32) to grey ``level`` wherever ``mask`` is white."""
    layer = imaging._tint(base.size(), QtGui.QColor(level, level, level), mask)
    p = QtGui.QPainter(base)
    p.drawImage(0, 0, layer)
    p.end()


class FakeEngineClient:
    """Deterministic engine double; ``step_delay`` seconds per refine step."""

    def __init__(self, step_delay: float = 0.0, fail: Optional[BaseException] = None) -> None:
        self.step_delay = step_delay
        self.fail = fail
        self.calls: List[Dict[str, Any]] = []
        self.refine_started = threading.Event()

    def info(self) -> dict:
        return {"variant": "fake", "device": "cpu", "version": "test"}

    # ---------------------------------------------------------- trimaps
    def trimap_from_mask(self, mask_png: bytes, band: Optional[int] = None,
                         adaptive: bool = True, image_png: Optional[bytes] = None) -> bytes:
        self.calls.append({"op": "trimap_from_mask", "band": band, "image": image_png is not None})
        mask = _grey_from(mask_png)
        w, h = mask.width(), mask.height()
        r = max(int(band or max(2, min(w, h) // 20)), 1)
        # Down/up-scaling smears the edge: mid-grey there becomes the unknown band.
        small = mask.scaled(max(w // r, 1), max(h // r, 1),
                            QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
                            QtCore.Qt.TransformationMode.SmoothTransformation)
        blur = small.scaled(w, h, QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
                            QtCore.Qt.TransformationMode.SmoothTransformation)
        out = QtGui.QImage(w, h, Fmt.Format_RGB32)
        out.fill(QtGui.QColor(128, 128, 128))
        hi = self._threshold(blur, 250)
        lo = self._threshold(blur, 5)
        lo.invertPixels()
        _paint_where(out, hi, 255)
        _paint_where(out, lo, 0)
        return imaging.qimage_to_png(out.convertToFormat(Fmt.Format_Grayscale8))

    @staticmethod
    def _threshold(grey: "QtGui.QImage", level: int) -> "QtGui.QImage":
        """Grey image -> mask of pixels >= level, via a colour table (no per-pixel Python)."""
        idx = grey.convertToFormat(Fmt.Format_Indexed8, [QtGui.qRgb(i, i, i) for i in range(256)])
        idx.setColorTable([QtGui.qRgb(255, 255, 255) if i >= level else QtGui.qRgb(0, 0, 0)
                           for i in range(256)])
        return idx.convertToFormat(Fmt.Format_Grayscale8)

    def trimap_from_scribbles(self, image_png: bytes, fg_png: bytes, bg_png: bytes,
                              unknown_png: Optional[bytes] = None,
                              band: Optional[int] = None) -> bytes:
        self.calls.append({"op": "trimap_from_scribbles", "band": band,
                           "unknown": unknown_png is not None})
        image = imaging.png_to_qimage(image_png)
        out = QtGui.QImage(image.size(), Fmt.Format_RGB32)
        out.fill(QtGui.QColor(128, 128, 128))
        _paint_where(out, _grey_from(fg_png), 255)
        _paint_where(out, _grey_from(bg_png), 0)
        if unknown_png:
            _paint_where(out, _grey_from(unknown_png), 128)
        return imaging.qimage_to_png(out.convertToFormat(Fmt.Format_Grayscale8))

    def sam_trimap(self, image_png: bytes, points=(), labels=(), box=None,
                   band: Optional[int] = None) -> bytes:
        self.calls.append({"op": "sam_trimap", "points": points, "labels": labels, "box": box})
        image = imaging.png_to_qimage(image_png)
        w, h = image.width(), image.height()
        mask = QtGui.QImage(w, h, Fmt.Format_RGB32)
        mask.fill(QtGui.QColor(0, 0, 0))
        p = QtGui.QPainter(mask)
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        if box is not None:
            x0, y0, x1, y1 = box
            p.fillRect(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0), QtGui.QColor(255, 255, 255))
        r = max(min(w, h) / 6, 2)
        for (x, y), lab in zip(points or [], labels or []):
            p.setBrush(QtGui.QColor(255, 255, 255) if lab else QtGui.QColor(0, 0, 0))
            p.drawEllipse(QtCore.QPointF(x, y), r, r)
        p.end()
        return self.trimap_from_mask(imaging.qimage_to_png(mask), band=band)

    # ----------------------------------------------------------- refine
    def refine(self, image_png: bytes, trimap_png: bytes, steps: int = 10, seed=None,
               on_progress: Optional[Callable[[int, int, Optional[bytes]], None]] = None,
               cancel_event: Optional[threading.Event] = None, preview: bool = True,
               samples: int = 1) -> bytes:
        self.calls.append({"op": "refine", "steps": steps, "samples": samples})
        self.refine_started.set()
        if self.fail is not None:
            raise self.fail
        trimap = _grey_from(trimap_png)
        total = steps * samples
        for i in range(1, total + 1):
            if cancel_event is not None and cancel_event.is_set():
                raise JobCancelled("cancelled")
            if self.step_delay:
                time.sleep(self.step_delay)
            if on_progress is not None:
                on_progress(i, total, imaging.qimage_to_png(trimap) if preview else None)
        if cancel_event is not None and cancel_event.is_set():
            raise JobCancelled("cancelled")
        return imaging.qimage_to_png(trimap.convertToFormat(Fmt.Format_Grayscale16))
