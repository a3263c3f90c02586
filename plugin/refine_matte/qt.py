"""The one place that imports Qt: PyQt6 first, PyQt5 as a fallback.

Krita 5.x embeds PyQt5 and Krita 6 embeds PyQt6, so every other module in the
plugin imports Qt names from here.  Selection order:

1. ``REFINE_MATTE_QT=pyqt5|pyqt6`` forces a binding (used by tests and hosts);
2. a binding the host has already imported wins, since two bindings cannot
   share one process;
3. otherwise PyQt6, then PyQt5.

Only scoped enum spellings (``Qt.Key.Key_A``) are used by the plugin because
both bindings accept them.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

__all__ = [
    "API", "QtCore", "QtGui", "QtWidgets", "Signal", "Slot",
    "QAction", "QShortcut", "QUndoStack", "QUndoCommand", "QActionGroup",
    "event_pos", "qt_exec", "wheel_delta",
]

_CANDIDATES = ("PyQt6", "PyQt5")


def _choose_binding() -> str:
    forced = os.environ.get("REFINE_MATTE_QT", "").strip().lower()
    if forced:
        names = {"pyqt6": "PyQt6", "pyqt5": "PyQt5"}
        if forced not in names:
            raise ImportError(
                f"REFINE_MATTE_QT={forced!r} is not supported; use 'pyqt6' or 'pyqt5'")
        return names[forced]
    for name in _CANDIDATES:
        if name + ".QtCore" in sys.modules:
            return name
    errors = []
    for name in _CANDIDATES:
        try:
            importlib.import_module(name + ".QtCore")
            return name
        except ImportError as exc:  # try the next binding
            errors.append(f"{name}: {exc}")
    raise ImportError("Refine Matte needs PyQt6 or PyQt5 (" + "; ".join(errors) + ")")


API: str = _choose_binding()
QtCore: Any = importlib.import_module(API + ".QtCore")
QtGui: Any = importlib.import_module(API + ".QtGui")
QtWidgets: Any = importlib.import_module(API + ".QtWidgets")

Signal = QtCore.pyqtSignal
Slot = QtCore.pyqtSlot

# Classes that moved from QtWidgets (Qt5) to QtGui (Qt6).
QAction = getattr(QtGui, "QAction", None) or QtWidgets.QAction
QActionGroup = getattr(QtGui, "QActionGroup", None) or QtWidgets.QActionGroup
QShortcut = getattr(QtGui, "QShortcut", None) or QtWidgets.QShortcut
QUndoStack = getattr(QtGui, "QUndoStack", None) or QtWidgets.QUndoStack
QUndoCommand = getattr(QtGui, "QUndoCommand", None) or QtWidgets.QUndoCommand


def event_pos(event: Any) -> Any:
    """Widget-local position of a mouse or wheel event as a QPointF."""
    if hasattr(event, "position"):
        return event.position()
    if hasattr(event, "localPos"):
        return event.localPos()
    return QtCore.QPointF(event.pos())


def wheel_delta(event: Any) -> int:
    """Vertical wheel delta in eighths of a degree (120 per notch)."""
    return int(event.angleDelta().y())


def qt_exec(obj: Any) -> int:
    """Call exec()/exec_() on an application or dialog under either binding."""
    fn = getattr(obj, "exec", None) or getattr(obj, "exec_")
    return int(fn() or 0)
