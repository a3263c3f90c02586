"""Krita entry point: registers the Refine Matte docker (Krita 5.x/PyQt5 and 6.x/PyQt6).

The docker hosts the shared panel with a :class:`KritaAdapter`.  The panel finds a
running engine service (``diffmatte serve``) and, when none runs, starts one with
the engine environment that ``installer/krita.py`` recorded (see
:func:`refine_matte.client.engine_python`).
"""

from __future__ import annotations

from typing import Any

from .qt import QtCore, QtWidgets

DOCKER_ID = "refine_matte_docker"


def _dock_right(base: Any) -> Any:
    """``DockRight`` under PyQt6's scoped enums (Krita 6) and PyQt5's (Krita 5.1+)."""
    scoped = getattr(base, "DockPosition", None)
    return getattr(scoped, "DockRight") if scoped is not None else base.DockRight


def register() -> None:
    """Add the docker factory to Krita (called from the package __init__)."""
    from krita import DockWidget, DockWidgetFactory, DockWidgetFactoryBase, Krita  # type: ignore

    from .engine_setup import EngineBar
    from .krita_adapter import KritaAdapter
    from .panel import RefinePanel
    from . import panel_host

    class RefineMatteDocker(DockWidget):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.setWindowTitle("Refine Matte")
            self.panel = RefinePanel(adapter=KritaAdapter())
            # First run (e.g. imported with "Import Python Plugin from File"): no engine is
            # recorded, so find one, or offer to set it up with a progress dialog.
            self.engine_bar = EngineBar()
            self.engine_bar.message.connect(self.panel.status_label.setText)
            box = QtWidgets.QWidget()
            lay = QtWidgets.QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(0)
            lay.addWidget(self.engine_bar)
            lay.addWidget(self.panel, 1)
            self.setWidget(box)
            QtCore.QTimer.singleShot(0, self.engine_bar.check)
            self.panel.errorShown.connect(self._engine_missing)
            # Undo / Redo of our mask switches the masks it switched off back on / off.
            self._mask_timer = QtCore.QTimer(self)
            self._mask_timer.setInterval(700)
            self._mask_timer.timeout.connect(self._sync_masks)
            self._mask_timer.start()

        def _sync_masks(self) -> None:
            panel_host.follow_selection(self.panel)
            try:
                note = self.panel.adapter.sync_masks()
            except Exception:  # noqa: BLE001 - a poll must never raise into Krita
                return
            if note:
                self.panel.status_label.setText(note)

        def _engine_missing(self, message: str) -> None:
            if "engine" in message.lower():
                self.engine_bar.check()

        def canvasChanged(self, canvas: Any) -> None:  # noqa: N802 (Krita API)
            self.panel.refresh()

    Krita.instance().addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, _dock_right(DockWidgetFactoryBase), RefineMatteDocker))
