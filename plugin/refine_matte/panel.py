"""RefinePanel: the dockable "Refine Matte" widget shared by every host.

It reads pixels through a :class:`~refine_matte.adapter.HostAdapter`, builds a
trimap (SAM prompts, host selection / layer mask with a band, or scribbles),
runs the engine through an injected client on a worker thread, previews the
x0 estimate per step, and hands the final alpha back to the host as a new
layer mask.  Only Qt + stdlib are used so it runs inside a host's Python.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Dict, List, Optional

from . import imaging
from .adapter import HostAdapter, HostError
from .canvas import MatteCanvas
from .engine_api import EngineApi
from .finishing import Finisher, FinishControls
from . import panel_host, panel_ui
from .panel_host import EMPTY_MATTE_LEVEL as EMPTY_MATTE_LEVEL, MASK_NAME  # re-exported
from .panel_output import PanelOutput
from .panel_sam import SamDownload, SamSetup
from .panel_spec import build_spec
from .panel_state import SOURCE_IDS, PanelState, as_int
from .panel_ui import shortcut_help as shortcut_help  # re-exported: the editor's help lists them
from .qt import QtCore, QtGui, QtWidgets, Signal
from .worker import JobSpec, RefineJob, describe_error

Qt = QtCore.Qt

LIVE_BAND_DELAY_MS = 250  # strokes in quick succession give one preview


def _default_client_factory() -> Any:
    """Find the running engine service, or start one from the recorded engine environment.

    Without a known engine interpreter (``REFINE_MATTE_PYTHON`` or the ``engine.json``
    that ``installer/krita.py`` writes) it only connects: a host's embedded Python
    cannot run the engine itself.
    """
    from .client import EngineClient, engine_python  # stdlib-only; lazy so tests can inject
    python = engine_python()
    if python:
        return EngineClient.ensure_running(python=python)
    return EngineClient.discover()


class RefinePanel(QtWidgets.QWidget):
    """The Refine Matte dock contents: the widgets that render a :class:`PanelState`
    (``self.state``) and forward the artist's actions to it.

    ``client`` (an object with EngineClient's methods) or ``client_factory`` (a
    callable returning one, called on the worker thread) may be injected; by
    default the panel discovers a running service.  ``canvas`` lets a host show
    the canvas elsewhere (the standalone editor puts it in the centre); without
    one the panel embeds its own.  It owns its output side (``output``: edge controls,
    finisher, cut-outs), the SAM download row (``sam``) and the progress display
    (``job_progress``).
    """

    MASK_NAME = MASK_NAME
    jobStarted = Signal()
    jobFinished = Signal(str)       # "done" | "cancelled" | "failed"
    maskAdded = Signal(object)      # the alpha QImage handed to the host
    errorShown = Signal(str)
    warningShown = Signal(str)   # advice from the engine about the trimap

    def __init__(self, adapter: Optional[HostAdapter] = None, *, client: Optional[EngineApi] = None,
                 client_factory: Optional[Callable[[], EngineApi]] = None,
                 canvas: Optional[MatteCanvas] = None,
                 finisher: Optional[Finisher] = None, sam_setup: Optional[SamSetup] = None,
                 parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("RefineMattePanel")
        self.adapter = adapter
        self.state = PanelState(client=client, client_factory=client_factory or _default_client_factory,
                                parent=self)
        self._shortcuts: List[Any] = []
        self._own_canvas = canvas is None
        self.canvas = canvas or MatteCanvas(self)
        self.output = PanelOutput(self.state, self.canvas, finisher, self._show_status, parent=self)
        self.sam = SamDownload(sam_setup, lambda: self.source() == "sam", self._show_status, self.show_error,
                               parent=self)
        panel_ui.build_ui(self)
        if adapter is not None:  # the host's own word for its selection (Krita: "Selection")
            self.source_combo.setItemText(self.source_combo.findData("selection"),
                                          getattr(adapter, "selection_name", "Host selection"))
        panel_ui.connect(self)
        self.output.connect(self.rerender_output)
        self.install_shortcuts(self)
        # Out of the box: scribbles need no download (SAM offers its own when picked).
        self.set_source("scribbles")
        self._render_source()

    # ====================================================== the state's views
    @property
    def job(self) -> Optional[RefineJob]:
        """The running job (None when idle)."""
        return self.state.job

    @property
    def last_alpha(self) -> Optional["QtGui.QImage"]:
        """The last matte the engine returned (kept when the host could not take it)."""
        return self.state.last_alpha

    @property
    def raw_alpha(self) -> Any:
        """The engine's own matte of the last refine (before the edge controls)."""
        return self.state.raw_alpha

    @property
    def raw_image(self) -> Any:
        return self.state.raw_image

    @property
    def prior_only(self) -> Optional[bool]:
        """The engine's matte is its prior; None until an engine said."""
        return self.state.prior_only

    @property
    def output_controls(self) -> FinishControls:
        """The edge controls / decontamination / variation box (``output.controls``)."""
        return self.output.controls

    def output_params(self) -> Dict[str, Any]:
        """The result parameters of the next / last delivery (saved with results)."""
        return self.output.params()

    # ============================================== UI (built and wired by panel_ui)
    def install_shortcuts(self, scope: QtWidgets.QWidget,
                          context: Any = Qt.ShortcutContext.WidgetWithChildrenShortcut) -> None:
        """(Re)create the panel's single-key shortcuts, active within ``scope``.

        A plugin keeps them on the panel so the host's own keys are not stolen;
        the standalone editor moves them to its main window.
        """
        panel_ui.install_shortcuts(self, scope, context)

    # ========================================================= state sync
    def source(self) -> str:
        return self.state.source()

    def set_source(self, source: str) -> None:
        self.state.set_source(source)

    def set_tool(self, tool: str) -> None:
        """Pick a canvas tool; P (SAM prompts) also picks the SAM source.  The brushes
        keep the source: over a selection, mask or SAM they are the refine brush."""
        self.canvas.set_tool(tool)
        if tool == "sam" and self.source() != "sam":
            self.set_source("sam")

    def edge(self) -> str:
        """How the selection or mask is read: "rough", "exact" or "auto"."""
        return self.state.edge()

    def set_edge(self, edge: str) -> None:
        self.state.set_edge(edge)

    def _render_source(self, *_: Any) -> None:
        """Show the state's source: its combo entry, edge mode, hint, tools and extras."""
        src = self.source()
        self.source_combo.blockSignals(True)
        self.source_combo.setCurrentIndex(SOURCE_IDS.index(src))
        self.source_combo.blockSignals(False)
        panel_ui.render_edge(self, self.state.edge())
        self.edge_combo.setEnabled(self.state.has_edge_choice())
        self.hint_label.setText(self.state.hint())
        scribbling = src == "scribbles"
        self.tool_buttons["sam"].setEnabled(src == "sam")
        if src == "sam" and self.canvas.tool() != "sam":
            self.canvas.set_tool("sam")
        elif scribbling and self.canvas.tool() not in ("fg", "bg", "unknown", "erase"):
            self.canvas.set_tool("fg")
        self.preview_band_button.setEnabled(src in ("selection", "mask", "sam", "scribbles"))
        self.state.live_band = False  # a new source starts without the live preview
        self.sam.sync()
        self.show_selection_outline()

    # ============================================================ status
    def _show_status(self, text: str) -> None:
        self.status_label.setText(text)

    def reset_status(self) -> None:
        """Forget the last result's status and error (new document, undo, layer change)."""
        if self.state.is_busy():
            return  # a running job owns the status line
        self.clear_error()
        self.status_label.setText("Ready.")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        first = (message.strip().splitlines() or [""])[0]
        self.status_label.setText("Error: " + (first if len(first) <= 140 else first[:139] + "…"))
        self.errorShown.emit(message)

    def clear_error(self) -> None:
        self.error_label.clear()
        self.error_label.hide()
        self.save_matte_button.hide()

    def save_matte(self, path: str, bits: int = 16) -> None:
        """Write the last computed matte to ``path`` (PNG/TIFF, atomically)."""
        panel_host.save_matte(self, path, bits)

    def error_text(self) -> str:
        return self.error_label.text() if self.error_label.isVisibleTo(self) else ""

    # ============================================================ host I/O
    def refresh(self) -> None:
        """Reload the active layer (and its mask) from the host into the canvas."""
        panel_host.refresh(self)

    def show_selection_outline(self) -> None:
        """Outline the host selection on the panel's canvas (selection source only)."""
        panel_host.show_selection_outline(self)

    def forget_result(self) -> None:
        """A new document or layer: edge changes must not re-deliver the old matte."""
        self.state.forget_result()

    def _build_spec(self) -> JobSpec:
        return build_spec(self.adapter, self.canvas, self.state, self.output.controls.seed())

    # ============================================================== jobs
    def is_busy(self) -> bool:
        return self.state.is_busy()

    def _next_spec(self) -> Optional[JobSpec]:
        """The next job (refine or band preview), or None: busy, or refused with the reason shown."""
        if self.state.is_busy():
            return None
        self.clear_error()
        try:
            return self._build_spec()
        except Exception as exc:  # noqa: BLE001 - shown in the panel, never as a traceback
            self.show_error(self._describe(exc))
            return None

    def refine(self) -> bool:
        """Start a refine; returns False (with the reason shown) if it could not start."""
        spec = self._next_spec()
        if spec is None:
            return False
        # The live preview stays on: the next stroke shows the band again, so the trimap is
        # visible while painting between refines too (paint, band, refine, matte, paint...).
        self.state.band_pending = False
        return self._start_job(spec)

    @staticmethod
    def _describe(exc: BaseException) -> str:
        if not isinstance(exc, (HostError, ValueError)):
            traceback.print_exc()
        return describe_error(exc)

    def _start_job(self, spec: JobSpec, preview: bool = False) -> bool:
        """Run ``spec`` on a worker; ``preview`` jobs only compute the trimap (band preview)."""
        job = RefineJob(spec, self.state.get_client)
        sig = job.signals
        sig.stage.connect(self.job_progress.stage)
        sig.trimapReady.connect(self.canvas.set_trimap)
        sig.progress.connect(self.job_progress.step)
        sig.work.connect(self.job_progress.work)
        sig.engineInfo.connect(self.set_engine_info)
        sig.refineStarted.connect(self.job_progress.refine_started)
        sig.prepared.connect(self.job_progress.prepared)
        sig.warning.connect(self._on_warning)
        sig.finished.connect(self._on_preview_done if preview else self._on_finished)
        sig.failed.connect(self._on_failed)
        sig.cancelled.connect(self._on_cancelled)
        self.state.begin_job(job, spec, self._target_id())
        self.job_progress.reset(spec, preview)
        panel_ui.set_busy(self, True)
        self.jobStarted.emit()
        job.start()
        return True

    def set_engine_info(self, info: Any) -> None:
        """What the engine said about itself (its ``info()``): a prior-only model hides the
        controls that change nothing for it (Diffusion steps, Samples, Variation) and its
        progress reads "Solving the matte… 42 %"."""
        if not self.state.set_engine_info(info):
            return
        panel_ui.show_diffusion_controls(self, not self.state.prior_only)

    def cancel(self) -> None:
        """Ask the running job to stop at the next step boundary."""
        if self.job is not None:
            self.job.cancel()
            self.status_label.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def _end_job(self, outcome: str) -> None:
        self.state.end_job()
        self.canvas.set_progress_text("")
        panel_ui.set_busy(self, False)
        self.jobFinished.emit(outcome)
        if outcome == "done" and self.state.band_pending:
            self._schedule_band_preview()

    # --------------------------------------------------------- band preview
    def preview_band(self) -> bool:
        """Compute the trimap of the current source (no refine) and show it in the Trimap view."""
        spec = self._next_spec()
        if spec is None:
            return False
        spec.trimap_only = True
        return self._start_job(spec, preview=True)

    def _on_preview_done(self, _alpha: Any) -> None:
        self.progress.setRange(0, 1)  # out of "busy" mode
        self.progress.setValue(0)
        self.state.live_band = True  # strokes now update the preview (after refines too) until a new source
        self.canvas.set_view_mode("trimap")
        warning = self.state.job_warning
        self.status_label.setText("Band preview: mid grey is the unknown band the engine will refine."
                                  + (f"\nWarning: {warning}" if warning else ""))
        self._end_job("done")

    def _on_stroke_for_band(self, *_: Any) -> None:
        """While the band preview is shown, every stroke recomputes it (the trimap is
        visible before the refine, and follows the painting)."""
        if self.state.live_band:
            self._schedule_band_preview()

    def _schedule_band_preview(self) -> None:
        self.state.band_pending = True
        if self.job is None:
            QtCore.QTimer.singleShot(LIVE_BAND_DELAY_MS, self._run_pending_band_preview)

    def _run_pending_band_preview(self) -> None:
        if not self.state.band_pending or self.job is not None:
            return
        self.state.band_pending = False
        if self.source() == "scribbles" and not (self.canvas.has_scribbles("fg") and
                                                 self.canvas.has_scribbles("bg")):
            return  # the preview needs both kinds of stroke; wait for the next one
        self.preview_band()

    def _target_id(self) -> Any:
        return panel_host.target_id(self)

    def _on_finished(self, alpha: Any) -> None:
        panel_host.deliver(self, alpha)

    def rerender_output(self) -> bool:
        """Apply changed edge controls to the last matte: no engine job, the mask is
        replaced (one undo step).  Returns False when there is nothing to re-render."""
        return panel_host.rerender(self)

    def _on_warning(self, message: str) -> None:
        """Advice from the engine about the input or the trimap; kept with the result (both
        when the trimap step and the refine each give one), never an error."""
        old = self.state.job_warning
        self.state.job_warning = f"{old}\n{message}" if old and message not in old else message
        self.warningShown.emit(message)

    def _on_failed(self, message: str) -> None:
        self.job_progress.stopped()
        self.show_error(message)
        self._end_job("failed")

    def _on_cancelled(self) -> None:
        self.job_progress.stopped()
        self.status_label.setText("Cancelled.")
        self._end_job("cancelled")

    # =========================================================== settings
    def save_settings(self, settings: "QtCore.QSettings") -> None:
        """Remember the artist's choices (under the 'panel' group)."""
        settings.beginGroup("panel")
        self.state.save_settings(settings)
        settings.setValue("brush", self.canvas.brush_size())
        settings.setValue("view", self.canvas.view_mode())
        self.output.save_settings(settings)
        settings.endGroup()

    def restore_settings(self, settings: "QtCore.QSettings") -> None:
        """Apply values written by save_settings; bad or missing values are ignored."""
        settings.beginGroup("panel")
        try:
            self.state.restore_edges_and_source(settings)
            self._render_source()
            self.state.restore_numbers(settings)
            brush = as_int(settings.value("brush", None))
            if brush is not None:
                self.canvas.set_brush_size(brush)
            view = settings.value("view", None)
            if view in [m for m, _, _ in imaging.VIEW_MODES]:
                self.canvas.set_view_mode(view)
            self.output.restore_settings(settings)
        finally:
            settings.endGroup()

