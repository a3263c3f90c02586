"""How a :class:`~refine_matte.canvas.MatteCanvas` draws itself: the composed view under
the pan / zoom transform, the selection's marching ants, the scribbles and SAM prompts,
the before/after divider, a SAM box being dragged, the brush outline and the text line at
the bottom.  Functions over the canvas's public accessors and its :class:`Pointer`.
Qt + stdlib.
"""

from __future__ import annotations

from typing import Any, Sequence

from .qt import QtCore, QtGui
from .strokes import BRUSHES, COLORS, STROKE_OPACITY, Stroke, draw_live_stroke, draw_prompts, draw_stroke

Qt = QtCore.Qt
QPointF = QtCore.QPointF


def strokes_overlay(size: "QtCore.QSize", strokes: Sequence[Stroke]) -> "QtGui.QImage":
    """``strokes`` drawn on a transparent ARGB image of ``size`` (image resolution)."""
    overlay = QtGui.QImage(size, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    overlay.fill(QtGui.QColor(0, 0, 0, 0))
    p = QtGui.QPainter(overlay)
    for stroke in strokes:
        draw_stroke(p, stroke)
    p.end()
    return overlay


def with_stroke(overlay: "QtGui.QImage", stroke: Stroke) -> "QtGui.QImage":
    """A copy of ``overlay`` with ``stroke`` (the one being painted) drawn on it."""
    live = overlay.copy()
    p = QtGui.QPainter(live)
    draw_stroke(p, stroke)
    p.end()
    return live


def paint(canvas: Any, p: "QtGui.QPainter") -> None:
    """Everything the canvas shows, on the painter ``p`` (ended here)."""
    p.fillRect(canvas.rect(), QtGui.QColor(48, 48, 52))
    shown = canvas.display_image()
    if shown is None:
        p.setPen(QtGui.QColor(200, 200, 200))
        p.drawText(canvas.rect(), int(Qt.AlignmentFlag.AlignCenter.value
                                      if hasattr(Qt.AlignmentFlag.AlignCenter, "value")
                                      else Qt.AlignmentFlag.AlignCenter),
                   "No image")
        p.end()
        return
    pointer, scale = canvas.pointer, canvas.zoom()
    p.save()
    p.translate(canvas.offset())
    p.scale(scale, scale)
    # Smooth downscaling of a big layer costs too much to redo on every mouse move.
    p.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, scale < 1.0 and not pointer.busy())
    p.drawImage(0, 0, shown)
    if canvas.selection_path() is not None:
        _paint_selection(p, canvas.selection_path(), scale)
    if canvas.input_visible():
        _paint_input(canvas, p)
    p.restore()
    if canvas.view_mode() == "split":
        x = canvas.split_x()
        p.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255), 1.5))
        p.drawLine(QPointF(x, 0), QPointF(x, canvas.height()))
        p.drawText(QPointF(x - 60, 18), "before")
        p.drawText(QPointF(x + 8, 18), "after")
    if pointer.drag_box is not None:
        p.setPen(QtGui.QPen(QtGui.QColor(255, 220, 0), 1.5, Qt.PenStyle.DashLine))
        p.drawRect(QtCore.QRectF(pointer.drag_box[0], pointer.drag_box[1]).normalized())
    if pointer.cursor_pos is not None and canvas.tool() in BRUSHES:
        r = canvas.brush_size() * scale / 2
        p.setPen(QtGui.QPen(COLORS[canvas.tool()], 1.2))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(pointer.cursor_pos, r, r)
    _paint_text_line(canvas, p)
    p.end()


def hud_line(metrics: "QtGui.QFontMetrics", view: str, progress: str, room: int) -> str:
    """The text line for ``room`` px: the view's name and the job's progress; in a narrow
    panel the progress alone (it is what changes), elided at its end when even that is
    too wide (a docker 300 px wide cut "Solving the matte… 42 % (about 12 s left)" off at
    the view's name before)."""
    both = "  ·  ".join(t for t in (view, progress) if t)
    if metrics.horizontalAdvance(both) <= room or not progress:
        return metrics.elidedText(both, Qt.TextElideMode.ElideRight, room)
    return metrics.elidedText(progress, Qt.TextElideMode.ElideRight, room)


def _paint_text_line(canvas: Any, p: "QtGui.QPainter") -> None:
    """The view's name and the job's progress, bottom left on a dark band."""
    hud = hud_line(p.fontMetrics(), canvas.hud_text, canvas.progress_text, max(0, canvas.width() - 24))
    if hud:
        width = p.fontMetrics().horizontalAdvance(hud) + 12
        p.fillRect(QtCore.QRectF(6, canvas.height() - 26, width, 20), QtGui.QColor(0, 0, 0, 150))
        p.setPen(QtGui.QColor(255, 255, 255))
        p.drawText(QPointF(12, canvas.height() - 11), hud)


def _paint_selection(p: "QtGui.QPainter", path: "QtGui.QPainterPath", scale: float) -> None:
    """Marching ants: black and white dashes, a constant 1.5 px on screen."""
    width = 1.5 / scale
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.setPen(QtGui.QPen(QtGui.QColor(0, 0, 0), width))
    p.drawPath(path)
    pen = QtGui.QPen(QtGui.QColor(255, 255, 255), width, Qt.PenStyle.DashLine)
    p.setPen(pen)
    p.drawPath(path)


def _paint_input(canvas: Any, p: "QtGui.QPainter") -> None:
    """The scribbles (committed ones from the cached overlay) and the SAM prompts."""
    if canvas.strokes:
        p.setOpacity(STROKE_OPACITY)
        p.drawImage(0, 0, canvas.committed_overlay())
    if canvas.pointer.current is not None:
        draw_live_stroke(p, canvas.pointer.current)
    p.setOpacity(1.0)
    draw_prompts(p, canvas.sam_points, canvas.sam_box, 1.0 / canvas.zoom())  # constant on-screen size
