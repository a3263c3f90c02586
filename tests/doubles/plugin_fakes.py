"""Test doubles: FakeEngineClient (for EngineClient) and a Krita stand-in (FakeKrita).

FakeEngineClient implements the same methods and callback protocol as
``refine_matte.client.EngineClient`` with simple, deterministic image
operations (no model), and can be slowed down or told to fail so the panel's
progress, cancel and error paths can be exercised without the service.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional

from refine_matte import imaging
from refine_matte.client import JobCancelled
from refine_matte.qt import QtCore, QtGui

Fmt = QtGui.QImage.Format


def _grey_from(png: bytes) -> "QtGui.QImage":
    return imaging.to_grey8(imaging.png_to_qimage(png))


def _paint_where(base: "QtGui.QImage", mask: "QtGui.QImage", level: int) -> None:
    """Set ``base`` (RGB32) to grey ``level`` wherever ``mask`` is white."""
    layer = imaging._tint(base.size(), QtGui.QColor(level, level, level), mask)
    p = QtGui.QPainter(base)
    p.drawImage(0, 0, layer)
    p.end()


class FakeEngineClient:
    """Deterministic engine double; ``step_delay`` seconds per refine step.

    ``prior_only=True`` stands for the shipped default model: its info() says so, and a
    refine reports the solve as ``on_work(done, 1000)`` (WORK_UNITS reports, ``step_delay``
    apart) and one step event at the end, as the service does for it."""

    WORK_UNITS = 5

    def __init__(self, step_delay: float = 0.0, fail: Optional[BaseException] = None,
                 prior_only: bool = False) -> None:
        self.step_delay = step_delay
        self.fail = fail
        self.prior_only = prior_only
        self.calls: List[Dict[str, Any]] = []
        self.refine_started = threading.Event()
        self.trimap_warning: Optional[str] = None  # what the trimap step says (X-Trimap-Warning)
        self.auto_edge = "rough"  # how an edge="auto" mask is read (the service's X-Trimap-Edge)

    def info(self) -> dict:
        engine = {"variant": "fake", "device": "cpu", "prior_only": self.prior_only}
        return {"variant": "fake", "device": "cpu", "version": "test", "engine": engine}

    # ---------------------------------------------------------- trimaps
    def trimap_from_mask(self, mask_png: bytes, band: Optional[int] = None,
                         adaptive: bool = True, image_png: Optional[bytes] = None,
                         edge: str = "exact", on_warning=None, on_edge=None, on_work=None,
                         cancel_event=None) -> bytes:
        self.calls.append({"op": "trimap_from_mask", "band": band, "image": image_png is not None,
                           "edge": edge})
        if on_work is not None:  # the service's progress of the computation
            on_work(500, 1000)
        if self.trimap_warning and on_warning is not None:
            on_warning(self.trimap_warning)
        if on_edge is not None:
            on_edge(self.auto_edge if edge == "auto" else edge)
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
                              band: Optional[int] = None, on_warning=None, on_work=None,
                              cancel_event=None) -> bytes:
        if on_work is not None:
            on_work(500, 1000)
        if self.trimap_warning and on_warning is not None:
            on_warning(self.trimap_warning)
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
               samples: int = 1, on_warning: Optional[Callable[[str], None]] = None,
               on_work: Optional[Callable[[int, int], None]] = None, widen_band: bool = False,
               on_status: Optional[Callable[[str], None]] = None, band: Optional[float] = None) -> bytes:
        self.calls.append({"op": "refine", "steps": steps, "samples": samples, "widen_band": widen_band,
                           "band": band})
        self.refine_started.set()
        for status in ("submitted", "started") if on_status is not None else ():
            on_status(status)
        if getattr(self, "warning", None) and on_warning is not None:
            on_warning(self.warning)
        if self.fail is not None:
            raise self.fail
        trimap = _grey_from(trimap_png)
        total = steps * samples
        if self.prior_only:
            self._solve(on_work, cancel_event)
        for i in range(1 if not self.prior_only else total, total + 1):
            if cancel_event is not None and cancel_event.is_set():
                raise JobCancelled("cancelled")
            if self.step_delay:
                time.sleep(self.step_delay)
            if on_progress is not None:
                on_progress(i, total, imaging.qimage_to_png(trimap) if preview else None)
        if cancel_event is not None and cancel_event.is_set():
            raise JobCancelled("cancelled")
        return imaging.qimage_to_png(trimap.convertToFormat(Fmt.Format_Grayscale16))

    def _solve(self, on_work: Optional[Callable[[int, int], None]],
               cancel_event: Optional[threading.Event]) -> None:
        """A prior-only model's solve: its progress in thousandths, WORK_UNITS reports."""
        for i in range(self.WORK_UNITS):
            if cancel_event is not None and cancel_event.is_set():
                raise JobCancelled("cancelled")
            if on_work is not None:
                on_work(1000 * i // self.WORK_UNITS, 1000)
            if self.step_delay:
                time.sleep(self.step_delay)


# ====================================================================== Krita stand-in
# What the real Krita 5.1.5, 5.3.4 and 6.0.4 GUIs did (tests/hosts/krita.sh; setVisible
# and setName were probed in 5.1 only), reduced to what KritaAdapter touches. Byte layouts are Krita's: 8-bit RGBA is
# B,G,R,A; 16-bit is little-endian BGRA; selections and masks are one byte per pixel.
# - 5.1 has no createTransparencyMask; its "add_new_transparency_mask" action turns the
#   selection into a mask on the active layer (the parent, when a mask is active),
#   clears the selection, and is one undo step that brings the selection back;
# - 5.2+ has createTransparencyMask; a mask takes pixels via setSelection/setPixelData;
# - a node added to the document becomes the active node; Node.remove() is one undo
#   step; setVisible and setName are not undo steps.


class FakeSelection:
    """krita.Selection: w*h bytes, 255 = selected; ``w`` (the document's width) for its bounds."""

    def __init__(self, data: bytes = b"", w: int = 0) -> None:
        self.data, self.w = bytes(data), w

    def _bounds(self) -> tuple:
        on = [i for i, v in enumerate(self.data) if v] if self.w else []
        if not on:
            return 0, 0, 0, 0
        xs, ys = [i % self.w for i in on], [i // self.w for i in on]
        return min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1

    def x(self) -> int:
        return self._bounds()[0]

    def y(self) -> int:
        return self._bounds()[1]

    def width(self) -> int:
        return self._bounds()[2]

    def height(self) -> int:
        return self._bounds()[3]

    def pixelData(self, x: int, y: int, w: int, h: int) -> Any:  # noqa: N802 (Krita API)
        return QtCore.QByteArray(self.data)

    def setPixelData(self, data: Any, x: int, y: int, w: int, h: int) -> None:  # noqa: N802
        self.data = bytes(data)


class FakeNode:
    """krita.Node (a paint layer or a transparency mask)."""

    def __init__(self, doc: "FakeDocument", kind: str, name: str = "", data: bytes = b"",
                 model: str = "RGBA", depth: str = "U8") -> None:
        self.doc, self.kind, self.node_name, self.data = doc, kind, name, bytes(data)
        self.model, self.depth, self.shown = model, depth, True
        self.children: List["FakeNode"] = []
        self.parent: Optional["FakeNode"] = None
        self.uid = QtCore.QUuid.createUuid()

    def type(self) -> str:
        return self.kind

    def name(self) -> str:
        return self.node_name

    def setName(self, name: str) -> None:  # noqa: N802
        self.node_name = name

    def uniqueId(self) -> Any:  # noqa: N802
        return self.uid

    def colorModel(self) -> str:  # noqa: N802
        return self.model

    def colorDepth(self) -> str:  # noqa: N802
        return self.depth

    def visible(self) -> bool:
        return self.shown

    def setVisible(self, shown: bool) -> None:  # noqa: N802
        self.shown = bool(shown)

    def parentNode(self) -> Optional["FakeNode"]:  # noqa: N802
        return self.parent

    def childNodes(self) -> List["FakeNode"]:  # noqa: N802
        return list(self.children)

    def pixelData(self, x: int, y: int, w: int, h: int) -> Any:  # noqa: N802
        return QtCore.QByteArray(self.data)

    def setPixelData(self, data: Any, x: int, y: int, w: int, h: int) -> bool:  # noqa: N802
        self.data = bytes(data)
        return True

    def setSelection(self, sel: FakeSelection) -> None:  # noqa: N802 (5.2+ TransparencyMask)
        self.data = sel.data

    def addChildNode(self, child: "FakeNode", above: Any) -> bool:  # noqa: N802
        def undo() -> None:
            self.children.remove(child)
        self.children.append(child)
        child.parent = self
        self.doc.active = child
        self.doc.undo_stack.append(("Add Layer", undo))
        return True

    def remove(self) -> bool:
        parent, index = self.parent, self.parent.children.index(self)
        parent.children.remove(self)
        self.doc.undo_stack.append(("Remove Layer", lambda: parent.children.insert(index, self)))
        return True


class FakeDocument:
    """krita.Document of Krita 5.1 (``version="5.1"``) or 5.2+ (anything else)."""

    def __init__(self, w: int, h: int, layer_data: bytes, version: str = "5.3",
                 depth: str = "U8", model: str = "RGBA") -> None:
        self.w, self.h, self.version = w, h, version
        self.undo_stack: List[Any] = []
        self.sel: Optional[FakeSelection] = None
        self.layer = FakeNode(self, "paintlayer", "Background", layer_data, model, depth)
        self.active: Optional[FakeNode] = self.layer

    def __getattr__(self, name: str) -> Any:
        if name == "createTransparencyMask" and self.version != "5.1":
            return lambda mask_name: FakeNode(self, "transparencymask", mask_name, bytes(self.w * self.h))
        raise AttributeError(name)

    def width(self) -> int:
        return self.w

    def height(self) -> int:
        return self.h

    def fileName(self) -> str:  # noqa: N802
        return ""

    def activeNode(self) -> Optional[FakeNode]:  # noqa: N802
        return self.active

    def setActiveNode(self, node: FakeNode) -> None:  # noqa: N802
        self.active = node

    def selection(self) -> Optional[FakeSelection]:
        return FakeSelection(self.sel.data, self.w) if self.sel is not None else None

    def setSelection(self, sel: Optional[FakeSelection]) -> None:  # noqa: N802 (no undo step)
        self.sel = FakeSelection(sel.data) if sel is not None else None

    def refreshProjection(self) -> None:  # noqa: N802
        pass

    def waitForDone(self) -> None:  # noqa: N802
        pass

    def undo(self) -> str:
        """What ``edit_undo`` does: revert the last undo step; returns its name."""
        name, revert = self.undo_stack.pop()
        revert()
        return name

    def add_mask_from_selection(self) -> None:
        """Krita's ``add_new_transparency_mask`` action."""
        layer = self.active.parent if self.active.kind.endswith("mask") else self.active
        data = self.sel.data if self.sel is not None else bytes([255]) * (self.w * self.h)
        mask = FakeNode(self, "transparencymask", f"Transparency Mask {len(layer.children) + 1}", data)
        taken, self.sel = self.sel, None
        layer.children.append(mask)
        mask.parent, self.active = layer, mask

        def undo() -> None:
            layer.children.remove(mask)
            self.sel = taken
        self.undo_stack.append(("Add Transparency Mask", undo))


class FakeAction:
    def __init__(self, trigger: Callable[[], Any]) -> None:
        self.trigger = trigger


class FakeKrita:
    """krita.Krita with one open document (or none)."""

    def __init__(self, doc: Optional[FakeDocument]) -> None:
        self.doc = doc

    def activeDocument(self) -> Optional[FakeDocument]:  # noqa: N802
        return self.doc

    def action(self, name: str) -> Optional[FakeAction]:
        if self.doc is None:
            return None
        actions = {"add_new_transparency_mask": self.doc.add_mask_from_selection,
                   "edit_undo": self.doc.undo}
        return FakeAction(actions[name]) if name in actions else None
