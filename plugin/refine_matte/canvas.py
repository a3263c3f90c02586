"""MatteCanvas: shows a layer in the matting view modes and collects trimap input.

It draws fg / bg / unknown scribbles and SAM prompts (points and a box) in
image coordinates, pans and zooms, and renders the scribbles as grey masks
for the engine.  Host-agnostic: the panel owns one, a host may embed it.
How it draws is canvas_paint.py; what the mouse does, canvas_pointer.py (``canvas.pointer``).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from . import imaging
from .canvas_paint import paint, strokes_overlay, with_stroke
from .canvas_pointer import Pointer
from .qt import QtCore, QtGui, QtWidgets, Signal, event_pos, wheel_delta
from .strokes import BRUSHES, SCRIBBLE_KINDS, TOOLS, Stroke, render_overrides, render_scribbles, selection_outline

__all__ = ["BRUSHES", "MAX_BRUSH", "MIN_BRUSH", "SCRIBBLE_KINDS", "TOOLS", "MatteCanvas", "Stroke",
           "selection_outline"]

Qt = QtCore.Qt
QPointF = QtCore.QPointF

MIN_BRUSH, MAX_BRUSH = 1, 500


class MatteCanvas(QtWidgets.QWidget):
    """Zoomable view of the active layer plus the scribble/SAM input layer."""

    strokeAdded = Signal(object)
    promptsChanged = Signal()
    viewModeChanged = Signal(str)
    viewShownChanged = Signal(str)  # view_label(): what is shown, in words
    brushSizeChanged = Signal(int)
    toolChanged = Signal(str)
    zoomChanged = Signal(float)

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(160, 120)
        self._image: Optional[QtGui.QImage] = None
        self._alpha: Optional[QtGui.QImage] = None
        self._preview: Optional[QtGui.QImage] = None
        self._trimap: Optional[QtGui.QImage] = None
        self._cutout: Optional[QtGui.QImage] = None   # straight RGBA (decontaminated colours)
        self._selection_path: Optional[QtGui.QPainterPath] = None
        self._display: Optional[QtGui.QImage] = None
        self._view_mode = "overlay"
        self.split = 0.5
        self._tool = "fg"
        self._brush = 20
        self.strokes: List[Stroke] = []
        self._overlay: Optional[QtGui.QImage] = None  # committed strokes, image resolution
        self.sam_points: List[Tuple[float, float, int]] = []
        self.sam_box: Optional[Tuple[float, float, float, float]] = None
        self._scale = 1.0
        self._offset = QPointF(0.0, 0.0)
        self._fit_pending = True
        self._fitted = False  # the view is "fit to window": resizing re-fits it
        self.pointer = Pointer(self)  # the gesture in progress: stroke, SAM box, pan, divider
        self.hud_text = ""
        self.progress_text = ""
        self._show_input = True

    # ----------------------------------------------------------- content
    def image(self) -> Optional["QtGui.QImage"]:
        return self._image

    def alpha(self) -> Optional["QtGui.QImage"]:
        return self._alpha

    def trimap(self) -> Optional["QtGui.QImage"]:
        return self._trimap

    def set_image(self, image: Optional["QtGui.QImage"], keep_input: bool = False) -> None:
        """Show a new layer; clears mattes and (unless keep_input) scribbles/prompts."""
        size_changed = (image is None or self._image is None
                        or image.size() != self._image.size())
        self._image = image if image is not None and not image.isNull() else None
        self._alpha = self._preview = self._trimap = self._cutout = None
        self._overlay = None
        if not keep_input or size_changed:
            self.clear_input()
        if size_changed:
            self._fit_pending = True
            if self.isVisible() and self.width() > 1:
                self.fit()
        self._invalidate()

    def set_alpha(self, alpha: Optional["QtGui.QImage"]) -> None:
        """Show a matte; a cut-out made for an earlier matte is dropped."""
        self._alpha = alpha
        self._preview = None
        self._cutout = None
        self._invalidate()

    def set_cutout(self, rgba: Optional["QtGui.QImage"]) -> None:
        """Straight RGBA cut-out (e.g. decontaminated) shown by the cut-out views."""
        self._cutout = rgba
        self._invalidate()

    def cutout(self) -> Optional["QtGui.QImage"]:
        return self._cutout

    def set_selection(self, mask: Optional["QtGui.QImage"]) -> None:
        """Outline the host selection (grey mask, 255 = selected) with marching ants."""
        self._selection_path = selection_outline(mask) if mask is not None and not mask.isNull() else None
        self.update()

    def selection_path(self) -> Optional["QtGui.QPainterPath"]:
        return self._selection_path

    def set_preview(self, alpha: Optional["QtGui.QImage"]) -> None:
        """Show an in-progress x0 prediction instead of the current alpha."""
        self._preview = alpha
        self._invalidate()

    def set_trimap(self, trimap: Optional["QtGui.QImage"]) -> None:
        self._trimap = trimap
        self._invalidate()

    def view_mode(self) -> str:
        return self._view_mode

    def set_view_mode(self, mode: str) -> None:
        if mode not in [m[0] for m in imaging.VIEW_MODES]:
            raise ValueError(f"unknown view mode {mode!r}")
        if mode != self._view_mode:
            self._view_mode = mode
            self._invalidate()
            self.viewModeChanged.emit(mode)

    def display_image(self) -> Optional["QtGui.QImage"]:
        """The composed image for the current view mode (cached)."""
        if self._display is None and self._image is not None:
            alpha = self._preview if self._preview is not None else self._alpha
            self._display = imaging.compose_view(self._view_mode, self._image, alpha,
                                                 self._trimap, self.split,
                                                 self._cutout if self._preview is None else None)
        return self._display

    def _invalidate(self) -> None:
        self._display = None
        self.update()
        label = self.view_label()
        if label != getattr(self, "_shown_label", None):
            self._shown_label = label
            self.viewShownChanged.emit(label)

    def view_label(self) -> str:
        """What the canvas shows, in words: the view mode's name, and when that view
        needs a matte (or trimap) that is not there yet, that the photo is shown instead."""
        mode = self._view_mode
        label = dict((m, name) for m, name, _ in imaging.VIEW_MODES).get(mode, mode)
        if self._image is None:
            return label
        if mode == "trimap" and self._trimap is None:
            return f"{label}: no trimap yet, showing the photo"
        if mode != "trimap" and self._alpha is None and self._preview is None:
            return f"{label}: no matte yet, showing the photo"
        return label

    # ------------------------------------------------------------- tools
    def tool(self) -> str:
        return self._tool

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        if tool != self._tool:
            self._tool = tool
            self.toolChanged.emit(tool)
            self.update()

    def brush_size(self) -> int:
        return self._brush

    def set_brush_size(self, size: int) -> None:
        size = int(min(max(size, MIN_BRUSH), MAX_BRUSH))
        if size != self._brush:
            self._brush = size
            self.brushSizeChanged.emit(size)
            self.update()

    def grow_brush(self, factor: float) -> None:
        """`]` / `[`: scale the brush, always by at least one pixel."""
        new = self._brush * factor
        step = 1 if factor > 1 else -1
        if int(round(new)) == self._brush:
            new = self._brush + step
        self.set_brush_size(int(round(new)))

    def input_visible(self) -> bool:
        return self._show_input

    def set_input_visible(self, visible: bool) -> None:
        """Show or hide the scribbles and SAM prompts (they still count when hidden)."""
        self._show_input = bool(visible)
        self.update()

    def set_progress_text(self, text: str) -> None:
        self.progress_text = text
        self.update()

    def add_stroke(self, stroke: Stroke) -> None:
        self.strokes.append(stroke)
        self._overlay = None
        self.update()

    def remove_stroke(self, stroke: Stroke) -> None:
        if stroke in self.strokes:
            self.strokes.remove(stroke)
            self._overlay = None
            self.update()

    def add_sam_point(self, x: float, y: float, label: int) -> None:
        self.sam_points.append((float(x), float(y), int(label)))
        self.promptsChanged.emit()
        self.update()

    def set_sam_box(self, box: Optional[Tuple[float, float, float, float]]) -> None:
        self.sam_box = box
        self.promptsChanged.emit()
        self.update()

    def clear_input(self) -> None:
        self.strokes = []
        self._overlay = None
        self.sam_points = []
        self.sam_box = None
        self.promptsChanged.emit()
        self.update()

    def has_scribbles(self, kind: str) -> bool:
        return any(s.kind == kind for s in self.strokes)

    def render_scribbles(self, kind: str) -> "QtGui.QImage":
        """Grayscale8 mask (255 where painted) of one scribble kind at image size."""
        if self._image is None:
            raise ValueError("no image to scribble on")
        return render_scribbles(self._image.size(), self.strokes, kind)

    def render_overrides(self) -> Optional["QtGui.QImage"]:
        """The refine brush over another trimap source: ARGB32 at image size, opaque
        255 / 0 / 128 where foreground / background / unknown was painted last,
        transparent elsewhere (and where erased).  None without strokes."""
        if self._image is None or not self.strokes:
            return None
        return render_overrides(self._image.size(), self.strokes)

    # ------------------------------------------------------- view transform
    def zoom(self) -> float:
        return self._scale

    def fit(self) -> None:
        """Fit the whole image into the widget."""
        if self._image is None:
            return
        w, h = self._image.width(), self._image.height()
        s = min(max(self.width() - 8, 1) / w, max(self.height() - 8, 1) / h)
        self._scale = max(s, 1e-3)
        self._offset = QPointF((self.width() - w * self._scale) / 2,
                               (self.height() - h * self._scale) / 2)
        self._fit_pending = False
        self._fitted = True
        self.zoomChanged.emit(self._scale)
        self.update()

    def set_zoom(self, scale: float, anchor: Optional[QPointF] = None) -> None:
        """Zoom to ``scale`` keeping the image point under ``anchor`` (widget px) fixed."""
        scale = min(max(scale, 0.02), 64.0)
        if anchor is None:
            anchor = QPointF(self.width() / 2, self.height() / 2)
        img_pt = self.to_image(anchor)
        self._scale = scale
        self._offset = QPointF(anchor.x() - img_pt.x() * scale, anchor.y() - img_pt.y() * scale)
        self._fit_pending = False
        self._fitted = False
        self.zoomChanged.emit(scale)
        self.update()

    def pan_by(self, dx: float, dy: float) -> None:
        self.pan_to(QPointF(self._offset.x() + dx, self._offset.y() + dy))

    def offset(self) -> QPointF:
        """Widget position of the image's top-left corner."""
        return self._offset

    def pan_to(self, offset: QPointF) -> None:
        self._fitted = False
        self._offset = offset
        self.update()

    def to_image(self, pos: QPointF) -> QPointF:
        return QPointF((pos.x() - self._offset.x()) / self._scale,
                       (pos.y() - self._offset.y()) / self._scale)

    def to_widget(self, pos: QPointF) -> QPointF:
        return QPointF(pos.x() * self._scale + self._offset.x(),
                       pos.y() * self._scale + self._offset.y())

    # -------------------------------------------------------------- events
    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        # A fitted view follows the window both ways (it used to overflow on shrink).
        if self._fit_pending or self._fitted:
            self.fit()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._fit_pending:
            self.fit()

    def wheelEvent(self, event) -> None:  # noqa: N802
        delta = wheel_delta(event)
        if delta:
            self.set_zoom(self._scale * (1.25 ** (delta / 120.0)), event_pos(event))
        event.accept()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if not self.pointer.key_press(event):
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:  # noqa: N802
        if not self.pointer.key_release(event):
            super().keyReleaseEvent(event)

    def split_x(self) -> float:
        """Widget x of the before/after divider."""
        width = self._image.width() if self._image is not None else 0
        return self.to_widget(QPointF(width * self.split, 0)).x()

    def set_split(self, fraction: float) -> None:
        self.split = min(max(float(fraction), 0.0), 1.0)
        self._invalidate()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.pointer.pressed(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        self.pointer.moved(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        self.pointer.released(event)

    def leaveEvent(self, event) -> None:  # noqa: N802
        self.pointer.left()
        super().leaveEvent(event)

    # ------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:  # noqa: N802
        paint(self, QtGui.QPainter(self))

    def committed_overlay(self) -> Optional["QtGui.QImage"]:
        """The committed strokes as an ARGB image at image resolution (cached)."""
        if self._image is None:
            return None
        if self._overlay is None:
            self._overlay = strokes_overlay(self._image.size(), self.strokes)
        return self._overlay

    def scribble_overlay(self) -> Optional["QtGui.QImage"]:
        """Committed strokes (plus the one being painted) as an ARGB image."""
        overlay = self.committed_overlay()
        if overlay is None or self.pointer.current is None:
            return overlay
        return with_stroke(overlay, self.pointer.current)
