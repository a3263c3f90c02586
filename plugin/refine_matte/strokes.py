"""The canvas's trimap input, without the widget: scribble strokes and SAM prompts, how they
are drawn over the view, and how they become grey masks for the engine; the outline of a
selection.  Used by :class:`refine_matte.canvas.MatteCanvas`.  Qt + stdlib.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from . import imaging
from .qt import QtCore, QtGui

Qt = QtCore.Qt
QPointF = QtCore.QPointF

SCRIBBLE_KINDS = ("fg", "bg", "unknown")
BRUSHES = SCRIBBLE_KINDS + ("erase",)   # later strokes win, the eraser clears
TOOLS = BRUSHES + ("sam", "pan")
COLORS: Dict[str, "QtGui.QColor"] = {
    # Hues chosen to stand out on foliage (green) and on the overlay view's red tint, and
    # drawn with a dark outline (see STROKE_OUTLINE) so they read on any photo.
    "fg": QtGui.QColor(255, 70, 230),    # magenta
    "bg": QtGui.QColor(0, 215, 255),     # cyan
    "unknown": QtGui.QColor(255, 225, 40),  # yellow
    "erase": QtGui.QColor(255, 255, 255),
}
#: scribbles are drawn with a dark outline, at this opacity over the view
STROKE_OUTLINE = QtGui.QColor(20, 20, 24)
STROKE_OPACITY = 0.8


@dataclass
class Stroke:
    """One scribble: kind in BRUSHES, brush diameter and points in image px."""

    kind: str
    size: float
    points: List[Tuple[float, float]] = field(default_factory=list)

    def path(self) -> "QtGui.QPainterPath":
        path = QtGui.QPainterPath()
        if self.points:
            path.moveTo(*self.points[0])
            for pt in self.points[1:]:
                path.lineTo(*pt)
            if len(self.points) == 1:  # a dab: a zero-length line still gets round caps
                path.lineTo(self.points[0][0] + 0.01, self.points[0][1])
        return path


def outline_width(size: float) -> float:
    """Outline on each side of a stroke of brush ``size`` (image px)."""
    return max(1.5, 0.15 * size)


def _pen(colour: "QtGui.QColor", width: float) -> "QtGui.QPen":
    return QtGui.QPen(colour, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                      Qt.PenJoinStyle.RoundJoin)


def draw_stroke(p: "QtGui.QPainter", stroke: Stroke) -> None:
    """One committed stroke onto the scribble overlay (the eraser clears)."""
    mode = QtGui.QPainter.CompositionMode
    if stroke.kind != "erase":  # a dark outline first, so the colour reads on any photo
        p.setCompositionMode(mode.CompositionMode_SourceOver)
        p.setPen(_pen(STROKE_OUTLINE, stroke.size + 2 * outline_width(stroke.size)))
        p.drawPath(stroke.path())
    p.setCompositionMode(mode.CompositionMode_Clear if stroke.kind == "erase"
                         else mode.CompositionMode_Source)
    p.setPen(_pen(COLORS[stroke.kind], stroke.size))
    p.drawPath(stroke.path())


def draw_live_stroke(p: "QtGui.QPainter", stroke: Stroke) -> None:
    """The stroke being painted, straight onto the widget (copying a full-size overlay
    on every mouse move would lag on large images)."""
    color = QtGui.QColor(COLORS[stroke.kind])
    if stroke.kind != "erase":
        p.setOpacity(STROKE_OPACITY)
        p.setPen(_pen(STROKE_OUTLINE, stroke.size + 2 * outline_width(stroke.size)))
        p.drawPath(stroke.path())
    p.setOpacity(0.35 if stroke.kind == "erase" else STROKE_OPACITY)
    p.setPen(_pen(color, stroke.size))
    p.drawPath(stroke.path())


def draw_prompts(p: "QtGui.QPainter", points: Sequence[Tuple[float, float, int]],
                 box: Optional[Tuple[float, float, float, float]], unit: float) -> None:
    """SAM's box and points; ``unit`` is one screen pixel in image px (constant-size markers)."""
    if box is not None:
        x0, y0, x1, y1 = box
        p.setPen(QtGui.QPen(QtGui.QColor(255, 220, 0), 2 * unit))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
    for x, y, label in points:
        p.setPen(QtGui.QPen(QtGui.QColor(0, 0, 0), 1.5 * unit))
        p.setBrush(COLORS["fg" if label else "bg"])
        p.drawEllipse(QPointF(x, y), 5 * unit, 5 * unit)


def render_scribbles(size: "QtCore.QSize", strokes: Sequence[Stroke], kind: str) -> "QtGui.QImage":
    """Grayscale8 mask (255 where painted) of one scribble kind at ``size``."""
    if kind not in SCRIBBLE_KINDS:
        raise ValueError(f"unknown scribble kind {kind!r}")
    # QPainter cannot target Grayscale8 on every Qt version; paint RGB32 then convert.
    canvas = QtGui.QImage(size, QtGui.QImage.Format.Format_RGB32)
    canvas.fill(QtGui.QColor(0, 0, 0))
    p = QtGui.QPainter(canvas)
    white, black = QtGui.QColor(255, 255, 255), QtGui.QColor(0, 0, 0)
    for stroke in strokes:
        # Any later stroke of another kind (or the eraser) takes the pixels back.
        p.setPen(_pen(white if stroke.kind == kind else black, stroke.size))
        p.drawPath(stroke.path())
    p.end()
    return canvas.convertToFormat(QtGui.QImage.Format.Format_Grayscale8)


def render_overrides(size: "QtCore.QSize", strokes: Sequence[Stroke]) -> "QtGui.QImage":
    """The refine brush over another trimap source: ARGB32 at ``size``, opaque
    255 / 0 / 128 where foreground / background / unknown was painted last,
    transparent elsewhere (and where erased)."""
    out = QtGui.QImage(size, QtGui.QImage.Format.Format_ARGB32)
    out.fill(QtGui.QColor(0, 0, 0, 0))
    p = QtGui.QPainter(out)
    levels = {"fg": 255, "bg": 0, "unknown": 128}
    for stroke in strokes:
        mode = QtGui.QPainter.CompositionMode
        p.setCompositionMode(mode.CompositionMode_Clear if stroke.kind == "erase"
                             else mode.CompositionMode_Source)
        v = levels.get(stroke.kind, 0)
        p.setPen(_pen(QtGui.QColor(v, v, v, 255), stroke.size))
        p.drawPath(stroke.path())
    p.end()
    return out


_OUTLINE_MAX_SIDE = 1024  # outlines of bigger selections are traced at this size and scaled up


def selection_outline(mask: "QtGui.QImage") -> Optional["QtGui.QPainterPath"]:
    """Outline of the pixels >= 128 of a grey mask, in image coordinates (None if empty)."""
    grey = imaging.to_grey8(mask)
    w, h = grey.width(), grey.height()
    scale = min(1.0, _OUTLINE_MAX_SIDE / max(w, h, 1))
    if scale < 1.0:
        grey = grey.scaled(max(int(w * scale), 1), max(int(h * scale), 1),
                           Qt.AspectRatioMode.IgnoreAspectRatio,
                           Qt.TransformationMode.FastTransformation)
    # Selected (>= 128) becomes opaque: createAlphaMask sets exactly those bits.
    idx = grey.convertToFormat(QtGui.QImage.Format.Format_Indexed8,
                               [QtGui.qRgb(i, i, i) for i in range(256)])
    idx.setColorTable([QtGui.qRgba(0, 0, 0, 255) if i >= 128 else QtGui.qRgba(0, 0, 0, 0)
                       for i in range(256)])
    bitmap = QtGui.QBitmap.fromImage(idx.convertToFormat(QtGui.QImage.Format.Format_ARGB32)
                                     .createAlphaMask())
    region = QtGui.QRegion(bitmap)
    if region.isEmpty():
        return None
    path = QtGui.QPainterPath()
    path.addRegion(region)
    path = path.simplified()
    if scale < 1.0:
        path = QtGui.QTransform.fromScale(w / grey.width(), h / grey.height()).map(path)
    return path
