"""Krita entry point: registers the Refine Matte docker (Krita 5.x/PyQt5 and 6.x/PyQt6).

The docker hosts the shared panel with a :class:`KritaAdapter`.  The panel finds a
running engine service (``diffmatte serve``) and, when none runs, starts one with
the engine environment that ``installer/krita.py`` recorded (see
:func:`refine_matte.client.engine_python`).
"""

from __future__ import annotations

from typing import Any

DOCKER_ID = "refine_matte_docker"


def _dock_right(base: Any) -> Any:
    """``DockRight`` under PyQt6's scoped enums (Krita 6) and PyQt5's (Krita 5.1+)."""
    scoped = getattr(base, "DockPosition", None)
    return getattr(scoped, "DockRight") if scoped is not None else base.DockRight


def register() -> None:
    """Add the docker factory to Krita (called from the package __init__)."""
    from krita import DockWidget, DockWidgetFactory, DockWidgetFactoryBase, Krita  # type: ignore

    from .krita_adapter import KritaAdapter
    from .panel import RefinePanel

    class RefineMatteDocker(DockWidget):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.setWindowTitle("Refine Matte")
            self.panel = RefinePanel(adapter=KritaAdapter())
            self.setWidget(self.panel)

        def canvasChanged(self, canvas: Any) -> None:  # noqa: N802 (Krita API)
            self.panel.refresh()

    Krita.instance().addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, _dock_right(DockWidgetFactoryBase), RefineMatteDocker))
