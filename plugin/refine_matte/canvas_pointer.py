"""What the mouse and the space bar do on a :class:`~refine_matte.canvas.MatteCanvas`:
paint a stroke with a brush, click SAM points or drag a SAM box, pan (middle button, the
pan tool, or space + left button) and drag the before/after divider.

:class:`Pointer` holds the gesture in progress (no widget of its own) and changes the
canvas only through its methods.  Qt + stdlib.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from .qt import QtCore, event_pos
from .strokes import BRUSHES, Stroke

Qt = QtCore.Qt
QPointF = QtCore.QPointF

DRAG_THRESHOLD = 4.0  # widget px: below this a SAM press is a click, not a box


class Pointer:
    """The gesture in progress on one canvas, from press to release."""

    def __init__(self, canvas: Any) -> None:
        self.canvas = canvas
        self.current: Optional[Stroke] = None      # the stroke being painted
        self.press: Optional[QPointF] = None       # a SAM press: a click, or the start of a box
        self.press_button: Any = None
        self.drag_box: Optional[Tuple[QPointF, QPointF]] = None
        self.pan_from: Optional[Tuple[QPointF, QPointF]] = None   # (press, offset then)
        self.dragging_split = False
        self.space_down = False
        self.cursor_pos: Optional[QPointF] = None  # widget px; None outside the canvas

    def busy(self) -> bool:
        """A stroke or a pan is under way (the view is redrawn on every move)."""
        return self.current is not None or self.pan_from is not None

    def key_press(self, event: Any) -> bool:
        """Space held: the left button pans.  True when the key was handled."""
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.space_down = True
            self.canvas.setCursor(Qt.CursorShape.OpenHandCursor)
            return True
        return False

    def key_release(self, event: Any) -> bool:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.space_down = False
            self.canvas.unsetCursor()
            return True
        return False

    def pressed(self, event: Any) -> None:
        c = self.canvas
        pos = event_pos(event)
        button = event.button()
        if (c.view_mode() == "split" and c.image() is not None
                and button == Qt.MouseButton.LeftButton and abs(pos.x() - c.split_x()) <= 6):
            self.dragging_split = True  # grabbing the divider beats painting
            return
        if (button == Qt.MouseButton.MiddleButton or c.tool() == "pan"
                or (self.space_down and button == Qt.MouseButton.LeftButton)):
            self.pan_from = (pos, c.offset())
            return
        if c.image() is None:
            return
        if c.tool() in BRUSHES and button == Qt.MouseButton.LeftButton:
            ip = c.to_image(pos)
            self.current = Stroke(c.tool(), float(c.brush_size()), [(ip.x(), ip.y())])
            c.update()
        elif c.tool() == "sam" and button in (Qt.MouseButton.LeftButton,
                                               Qt.MouseButton.RightButton):
            self.press, self.press_button = pos, button
            self.drag_box = None

    def moved(self, event: Any) -> None:
        c = self.canvas
        pos = event_pos(event)
        self.cursor_pos = pos
        if self.dragging_split:
            c.set_split(c.to_image(pos).x() / max(c.image().width(), 1))
            return
        if self.pan_from is not None:
            start, offset = self.pan_from
            c.pan_to(QPointF(offset.x() + pos.x() - start.x(), offset.y() + pos.y() - start.y()))
        elif self.current is not None:
            ip = c.to_image(pos)
            self.current.points.append((ip.x(), ip.y()))
        elif self.press is not None and self.press_button == Qt.MouseButton.LeftButton:
            if (pos - self.press).manhattanLength() >= DRAG_THRESHOLD:
                self.drag_box = (self.press, pos)
        c.update()

    def released(self, event: Any) -> None:
        c = self.canvas
        pos = event_pos(event)
        if self.dragging_split:
            self.dragging_split = False
            return
        if self.pan_from is not None:
            self.pan_from = None
            return
        if self.current is not None:
            stroke, self.current = self.current, None
            c.add_stroke(stroke)
            c.strokeAdded.emit(stroke)
            return
        if self.press is not None:
            press, button = self.press, self.press_button
            self.press = self.press_button = None
            if self.drag_box is not None:
                a, b = c.to_image(press), c.to_image(pos)
                self.drag_box = None
                c.set_sam_box((min(a.x(), b.x()), min(a.y(), b.y()),
                               max(a.x(), b.x()), max(a.y(), b.y())))
            else:
                ip = c.to_image(pos)
                bg = (button == Qt.MouseButton.RightButton
                      or bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
                      or bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
                c.add_sam_point(ip.x(), ip.y(), 0 if bg else 1)

    def left(self) -> None:
        """The mouse left the canvas: no brush outline."""
        self.cursor_pos = None
        self.canvas.update()
