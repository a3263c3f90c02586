"""MatteCanvas: shows a layer in the matting view modes and collects trimap input.

It draws fg / bg / unknown scribbles and SAM prompts (points and a box) in
image coordinates, pans and zooms, and renders the scribbles as grey masks
for the engine.  Host-agnostic: the panel owns one, a host may embed it.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from . import imaging
from .qt import QtCore, QtGui, QtWidgets, Signal, event_pos, wheel_delta
from .strokes import (BRUSHES, COLORS, SCRIBBLE_KINDS, STROKE_OPACITY, TOOLS, Stroke, draw_live_stroke,
                      draw_prompts, draw_stroke, render_overrides, render_scribbles, selection_outline)

__all__ = ["BRUSHES", "MAX_BRUSH", "MIN_BRUSH", "SCRIBBLE_KINDS", "TOOLS", "MatteCanvas", "Stroke",
           "selection_outline"]

Qt = QtCore.Qt
QPointF = QtCore.QPointF

_DRAG_THRESHOLD = 4.0  # widget px: below this a SAM press is a click, not a box
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
        self._current: Optional[Stroke] = None
        self._press: Optional[QPointF] = None
        self._press_button = None
        self._drag_box: Optional[Tuple[QPointF, QPointF]] = None
        self._pan_from: Optional[Tuple[QPointF, QPointF]] = None
        self._dragging_split = False
        self._space_down = False
        self._cursor_pos: Optional[QPointF] = None
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
        self._fitted = False
        self._offset = QPointF(self._offset.x() + dx, self._offset.y() + dy)
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
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self.unsetCursor()
            return
        super().keyReleaseEvent(event)

    def split_x(self) -> float:
        """Widget x of the before/after divider."""
        width = self._image.width() if self._image is not None else 0
        return self.to_widget(QPointF(width * self.split, 0)).x()

    def set_split(self, fraction: float) -> None:
        self.split = min(max(float(fraction), 0.0), 1.0)
        self._invalidate()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        pos = event_pos(event)
        button = event.button()
        if (self._view_mode == "split" and self._image is not None
                and button == Qt.MouseButton.LeftButton and abs(pos.x() - self.split_x()) <= 6):
            self._dragging_split = True  # grabbing the divider beats painting
            return
        if (button == Qt.MouseButton.MiddleButton or self._tool == "pan"
                or (self._space_down and button == Qt.MouseButton.LeftButton)):
            self._pan_from = (pos, self._offset)
            return
        if self._image is None:
            return
        if self._tool in BRUSHES and button == Qt.MouseButton.LeftButton:
            ip = self.to_image(pos)
            self._current = Stroke(self._tool, float(self._brush), [(ip.x(), ip.y())])
            self.update()
        elif self._tool == "sam" and button in (Qt.MouseButton.LeftButton,
                                                  Qt.MouseButton.RightButton):
            self._press, self._press_button = pos, button
            self._drag_box = None

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        pos = event_pos(event)
        self._cursor_pos = pos
        if self._dragging_split:
            self.set_split(self.to_image(pos).x() / max(self._image.width(), 1))
            return
        if self._pan_from is not None:
            start, offset = self._pan_from
            self._fitted = False
            self._offset = QPointF(offset.x() + pos.x() - start.x(),
                                   offset.y() + pos.y() - start.y())
        elif self._current is not None:
            ip = self.to_image(pos)
            self._current.points.append((ip.x(), ip.y()))
        elif self._press is not None and self._press_button == Qt.MouseButton.LeftButton:
            if (pos - self._press).manhattanLength() >= _DRAG_THRESHOLD:
                self._drag_box = (self._press, pos)
        self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        pos = event_pos(event)
        if self._dragging_split:
            self._dragging_split = False
            return
        if self._pan_from is not None:
            self._pan_from = None
            return
        if self._current is not None:
            stroke, self._current = self._current, None
            self.strokes.append(stroke)
            self._overlay = None
            self.strokeAdded.emit(stroke)
            self.update()
            return
        if self._press is not None:
            press, button = self._press, self._press_button
            self._press = self._press_button = None
            if self._drag_box is not None:
                a, b = self.to_image(press), self.to_image(pos)
                self._drag_box = None
                self.set_sam_box((min(a.x(), b.x()), min(a.y(), b.y()),
                                  max(a.x(), b.x()), max(a.y(), b.y())))
            else:
                ip = self.to_image(pos)
                bg = (button == Qt.MouseButton.RightButton
                      or bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
                      or bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
                self.add_sam_point(ip.x(), ip.y(), 0 if bg else 1)

    def leaveEvent(self, event) -> None:  # noqa: N802
        self._cursor_pos = None
        self.update()
        super().leaveEvent(event)

    # ------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), QtGui.QColor(48, 48, 52))
        shown = self.display_image()
        if shown is None:
            p.setPen(QtGui.QColor(200, 200, 200))
            p.drawText(self.rect(), int(Qt.AlignmentFlag.AlignCenter.value
                                        if hasattr(Qt.AlignmentFlag.AlignCenter, "value")
                                        else Qt.AlignmentFlag.AlignCenter),
                       "No image")
            p.end()
            return
        p.save()
        p.translate(self._offset)
        p.scale(self._scale, self._scale)
        busy = self._current is not None or self._pan_from is not None
        # Smooth downscaling of a big layer costs too much to redo on every mouse move.
        p.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform,
                        self._scale < 1.0 and not busy)
        p.drawImage(0, 0, shown)
        if self._selection_path is not None:
            self._paint_selection(p)
        if self._show_input:
            self._paint_input(p)
        p.restore()
        if self._view_mode == "split":
            x = self.split_x()
            p.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255), 1.5))
            p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
            p.drawText(QPointF(x - 60, 18), "before")
            p.drawText(QPointF(x + 8, 18), "after")
        if self._drag_box is not None:
            p.setPen(QtGui.QPen(QtGui.QColor(255, 220, 0), 1.5, Qt.PenStyle.DashLine))
            p.drawRect(QtCore.QRectF(self._drag_box[0], self._drag_box[1]).normalized())
        if self._cursor_pos is not None and self._tool in BRUSHES:
            r = self._brush * self._scale / 2
            p.setPen(QtGui.QPen(COLORS[self._tool], 1.2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawEllipse(self._cursor_pos, r, r)
        hud = "  ·  ".join(t for t in (self.hud_text, self.progress_text) if t)
        if hud:
            width = p.fontMetrics().horizontalAdvance(hud) + 12
            p.fillRect(QtCore.QRectF(6, self.height() - 26, width, 20), QtGui.QColor(0, 0, 0, 150))
            p.setPen(QtGui.QColor(255, 255, 255))
            p.drawText(QPointF(12, self.height() - 11), hud)
        p.end()

    def _paint_selection(self, p: "QtGui.QPainter") -> None:
        """Marching ants: black and white dashes, a constant 1.5 px on screen."""
        width = 1.5 / self._scale
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QtGui.QPen(QtGui.QColor(0, 0, 0), width))
        p.drawPath(self._selection_path)
        pen = QtGui.QPen(QtGui.QColor(255, 255, 255), width, Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.drawPath(self._selection_path)

    def scribble_overlay(self) -> Optional["QtGui.QImage"]:
        """Committed strokes (plus the one being painted) as an ARGB image."""
        if self._image is None:
            return None
        if self._overlay is None:
            self._overlay = QtGui.QImage(self._image.size(),
                                         QtGui.QImage.Format.Format_ARGB32_Premultiplied)
            self._overlay.fill(QtGui.QColor(0, 0, 0, 0))
            p = QtGui.QPainter(self._overlay)
            for stroke in self.strokes:
                draw_stroke(p, stroke)
            p.end()
        if self._current is None:
            return self._overlay
        live = self._overlay.copy()
        p = QtGui.QPainter(live)
        draw_stroke(p, self._current)
        p.end()
        return live

    def _paint_input(self, p: "QtGui.QPainter") -> None:
        if self.strokes:
            if self._overlay is None:
                self.scribble_overlay()
            p.setOpacity(STROKE_OPACITY)
            p.drawImage(0, 0, self._overlay)
        if self._current is not None:
            draw_live_stroke(p, self._current)
        p.setOpacity(1.0)
        draw_prompts(p, self.sam_points, self.sam_box, 1.0 / self._scale)  # constant on-screen size
