"""The editor window's menus and its keyboard-shortcut help (kept out of app.py).

:func:`build_menus` fills an :class:`~refine_matte.editor.app.EditorWindow`'s menu bar and
sets the actions the window keeps (``premultiplied_action``, ``undo_action``, ``redo_action``).
"""

from __future__ import annotations

from typing import Any, Callable

from .. import imaging
from ..panel import shortcut_help
from ..qt import QAction, QtGui

EDITOR_SHORTCUTS = [
    ("Ctrl+O", "Open image"),
    ("Ctrl+Shift+A", "Save alpha"),
    ("Ctrl+Shift+C", "Save RGBA cut-out"),
    ("Ctrl+S", "Save with layer mask (OpenRaster / layered TIFF)"),
    ("Ctrl+Z / Ctrl+Shift+Z or Ctrl+Y", "Undo / redo (masks and scribbles)"),
    ("Ctrl+0 / Ctrl+1", "Fit to window / 100 %"),
    ("Ctrl++ / Ctrl+-", "Zoom in / out"),
    ("F1", "This help"),
]


def add_action(win: Any, menu: Any, text: str, slot: Callable[[], Any], shortcut: Any = None) -> Any:
    act = QAction(text, win)
    if shortcut is not None:
        act.setShortcut(QtGui.QKeySequence(shortcut))
    act.triggered.connect(lambda _=False: slot())
    menu.addAction(act)
    return act


def build_menus(win: Any) -> None:
    """File, Edit, Select, View and Help, with their shortcuts."""
    mb = win.menuBar()
    m = mb.addMenu("&File")
    add_action(win, m, "&Open…", win.open_dialog, QtGui.QKeySequence.StandardKey.Open)
    m.addSeparator()
    add_action(win, m, "Save &alpha…", lambda: win._save_dialog("alpha"), "Ctrl+Shift+A")
    add_action(win, m, "Save RGBA &cut-out…", lambda: win._save_dialog("cutout"), "Ctrl+Shift+C")
    add_action(win, m, "Save with layer &mask…", lambda: win._save_dialog("layered"), "Ctrl+S")
    win.premultiplied_action = QAction("Cut-outs with &premultiplied colours", win)
    win.premultiplied_action.setCheckable(True)
    win.premultiplied_action.setToolTip("Straight alpha (off) suits most editors; premultiplied "
                                        "suits compositors that expect it")
    m.addAction(win.premultiplied_action)
    m.addSeparator()
    add_action(win, m, "&Quit", win.close, QtGui.QKeySequence.StandardKey.Quit)

    m = mb.addMenu("&Edit")
    # Keep Python references: sip may own these factory-made actions and
    # delete them (emptying the menu) once the locals go away.
    win.undo_action = win.undo_stack.createUndoAction(win, "&Undo")
    win.undo_action.setShortcut(QtGui.QKeySequence.StandardKey.Undo)
    win.redo_action = win.undo_stack.createRedoAction(win, "&Redo")
    # Both redo conventions, whichever the platform calls primary (Ctrl+Y on Windows,
    # Ctrl+Shift+Z elsewhere), as the help lists them.
    redo_keys = list(QtGui.QKeySequence.keyBindings(QtGui.QKeySequence.StandardKey.Redo))
    for extra in ("Ctrl+Shift+Z", "Ctrl+Y"):
        seq = QtGui.QKeySequence(extra)
        if seq not in redo_keys:
            redo_keys.append(seq)
    win.redo_action.setShortcuts(redo_keys)
    # Undo / redo make the last status ("Done", an error) stale.
    win.undo_action.triggered.connect(win.panel.reset_status)
    win.redo_action.triggered.connect(win.panel.reset_status)
    m.addAction(win.undo_action)
    m.addAction(win.redo_action)

    m = mb.addMenu("&Select")
    add_action(win, m, "Load selection from image…", win.load_selection_dialog)
    add_action(win, m, "Selection from layer transparency", win.selection_from_transparency)
    add_action(win, m, "Selection from current mask", win.selection_from_mask)
    add_action(win, m, "Clear selection", win.clear_selection)

    m = mb.addMenu("&View")
    for mode, label, keys in imaging.VIEW_MODES:
        # Keys are the panel's shortcuts; shown here as a reminder only.
        add_action(win, m, f"{label}\t{keys[0]}", lambda md=mode: win.canvas.set_view_mode(md))
    m.addSeparator()
    add_action(win, m, "Fit to window", win.canvas.fit, "Ctrl+0")
    add_action(win, m, "Actual pixels", lambda: win.canvas.set_zoom(1.0), "Ctrl+1")
    add_action(win, m, "Zoom in", lambda: win.canvas.set_zoom(win.canvas.zoom() * 1.25),
               QtGui.QKeySequence.StandardKey.ZoomIn)
    add_action(win, m, "Zoom out", lambda: win.canvas.set_zoom(win.canvas.zoom() / 1.25),
               QtGui.QKeySequence.StandardKey.ZoomOut)
    m.addSeparator()
    m.addAction(win.panel_dock.toggleViewAction())
    m.addAction(win.layers_dock.toggleViewAction())

    m = mb.addMenu("&Help")
    add_action(win, m, "&Keyboard shortcuts", win.show_shortcuts, "F1")
    add_action(win, m, "&About", win.show_about)


def shortcuts_text() -> str:
    """The panel's and the editor's shortcuts as an HTML table (the F1 help)."""
    rows = shortcut_help() + EDITOR_SHORTCUTS
    body = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;&nbsp;{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"
