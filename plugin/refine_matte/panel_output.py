"""The panel's output side: the edge controls / decontamination / variation box, the
finisher that applies them to the engine's raw matte without a new engine job (see
:mod:`refine_matte.finishing`), and the decontaminated cut-out computed on a thread.

:class:`PanelOutput` is owned by :class:`refine_matte.panel.RefinePanel` (``panel.output``,
composition, no mixin).  It reads the panel's :class:`PanelState` (the client, the raw
matte and image, the cut-out token), shows a finished cut-out on the canvas and reports
through ``show_status``; delivering an edged matte to the host stays with the panel.
Qt + stdlib.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from .finishing import CutoutJob, Finisher, FinishControls, ServiceFinisher
from .panel_sam import SAM_HINT as SAM_HINT, SamSetup as SamSetup  # re-exported (their old home)
from .panel_state import PanelState
from .qt import QtCore

NO_FINISHER = ("Edge controls and colour decontamination need an engine service with the "
               "/v1/cutout endpoint; this one does not offer it, so the matte is delivered as refined.")
REFIT_DELAY_MS = 150  # one re-render per burst of spin-box clicks


class PanelOutput(QtCore.QObject):
    """The output controls (``controls``), the ``finisher`` and the cut-out jobs."""

    def __init__(self, state: PanelState, canvas: Any, finisher: Optional[Finisher],
                 show_status: Callable[[str], None], parent: Optional[QtCore.QObject] = None) -> None:
        super().__init__(parent)
        self.state, self.canvas, self._show_status = state, canvas, show_status
        # Without an in-process finisher the engine service does the work (same code there).
        self.finisher = finisher if finisher is not None else ServiceFinisher(lambda: self.state.client)
        self.controls: FinishControls
        self._cutout_jobs: List[CutoutJob] = []
        self._refit_timer = QtCore.QTimer(self)
        self._refit_timer.setSingleShot(True)
        self._refit_timer.setInterval(REFIT_DELAY_MS)

    def build_box(self) -> FinishControls:
        """The "Output" group box (live unless the engine is known not to offer it)."""
        self.controls = FinishControls()
        self.sync_available()
        return self.controls

    def connect(self, rerender: Callable[[], Any]) -> None:
        """Changed controls call ``rerender()`` once they settle."""
        self.controls.changed.connect(self._refit_timer.start)
        self._refit_timer.timeout.connect(rerender)

    def ready(self) -> bool:
        """The finisher can work now."""
        check = getattr(self.finisher, "available", None)
        try:
            return check() if callable(check) else True
        except Exception:  # noqa: BLE001 - an unreachable service only means "not now"
            return False

    def sync_available(self) -> None:
        """Controls are live unless the engine is known not to offer them (checked again
        after each refine, once the panel has found its engine)."""
        known = self.state.client is not None or not isinstance(self.finisher, ServiceFinisher)
        self.controls.set_available(self.ready() or not known, NO_FINISHER)

    def params(self) -> Dict[str, Any]:
        """The result parameters of the next / last delivery (saved with results)."""
        params = self.controls.params()
        state = self.state
        params.update({"steps": state.steps(), "samples": state.samples(),
                       "source": state.source(), "band": state.band_or_none()})
        return params

    def edged(self, raw: Any) -> Any:
        """The engine's matte after the edge controls (the raw matte without a finisher)."""
        edges = self.controls.edges()
        if raw is None or not any(edges.values()) or not self.ready():
            return raw
        return self.finisher.edges(raw, edges)

    def start_cutout(self) -> None:
        """Decontaminated colours for the cut-out views, on a thread (stale ones dropped)."""
        state = self.state
        token = state.next_cutout()
        if state.raw_alpha is None or state.raw_image is None or not self.ready():
            return
        job = CutoutJob(self.finisher, token, state.raw_image, state.raw_alpha,
                        self.controls.edges(), self.controls.amount())
        job.signals.done.connect(self._on_cutout)
        job.signals.failed.connect(self._on_cutout_failed)
        self._cutout_jobs = [j for j in self._cutout_jobs if not j.wait(0)] + [job]
        job.start()

    def _on_cutout(self, token: int, rgba: Any) -> None:
        if token == self.state.cutout_token:
            self.canvas.set_cutout(rgba)

    def _on_cutout_failed(self, token: int, message: str) -> None:
        if token == self.state.cutout_token:
            self._show_status(f"The cut-out preview failed: {message}")

    def save_settings(self, settings: "QtCore.QSettings") -> None:
        self.controls.save_settings(settings)

    def restore_settings(self, settings: "QtCore.QSettings") -> None:
        self.controls.restore_settings(settings)
