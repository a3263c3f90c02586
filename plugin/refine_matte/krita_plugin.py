"""Krita entry point: registers the Refine Matte docker.

The docker hosts the shared panel with a :class:`KritaAdapter` and finds a
running engine service (``diffmatte serve``); it never starts one itself.
"""

from __future__ import annotations

from typing import Any


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
        DockWidgetFactory("refine_matte_docker", DockWidgetFactoryBase.DockRight,
                          RefineMatteDocker))
