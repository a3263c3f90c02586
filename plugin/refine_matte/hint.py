"""HintLabel: secondary text that stays legible on light and dark themes.

A hard-coded grey, or ``palette(mid)`` in a style sheet, is nearly invisible on dark
themes such as Krita's (Mid lies close to the window colour there). The hint's colour is
instead blended from the current palette's own roles: mostly WindowText, a little Window,
so it reads as secondary yet keeps a contrast ratio well above 4.5 : 1 on any theme, and
follows a theme change.
"""

from __future__ import annotations

from typing import Any

from .qt import QtCore, QtGui, QtWidgets

Role = QtGui.QPalette.ColorRole
#: how much of the window colour is mixed into the text colour
BLEND = 0.3


def hint_colour(palette: "QtGui.QPalette") -> "QtGui.QColor":
    text, window = palette.color(Role.WindowText), palette.color(Role.Window)
    mix = lambda a, b: round(a * (1 - BLEND) + b * BLEND)  # noqa: E731
    return QtGui.QColor(mix(text.red(), window.red()), mix(text.green(), window.green()),
                        mix(text.blue(), window.blue()))


def contrast_ratio(a: "QtGui.QColor", b: "QtGui.QColor") -> float:
    """WCAG contrast ratio of two colours (1 .. 21)."""
    def lum(c: "QtGui.QColor") -> float:
        def ch(v: int) -> float:
            v = v / 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * ch(c.red()) + 0.7152 * ch(c.green()) + 0.0722 * ch(c.blue())
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


class HintLabel(QtWidgets.QLabel):
    """A word-wrapped QLabel in the hint colour of the palette it inherits."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.setWordWrap(True)
        self._updating = False
        self._apply()

    def _apply(self) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            parent = self.parentWidget()
            base = parent.palette() if parent is not None else QtWidgets.QApplication.palette()
            pal = QtGui.QPalette(self.palette())
            colour = hint_colour(base)
            for group in (QtGui.QPalette.ColorGroup.Active, QtGui.QPalette.ColorGroup.Inactive):
                pal.setColor(group, Role.WindowText, colour)
            self.setPalette(pal)
        finally:
            self._updating = False

    def changeEvent(self, event: "QtCore.QEvent") -> None:  # noqa: N802 (Qt API)
        super().changeEvent(event)
        if event.type() in (QtCore.QEvent.Type.PaletteChange, QtCore.QEvent.Type.ParentChange,
                            QtCore.QEvent.Type.StyleChange):
            self._apply()
