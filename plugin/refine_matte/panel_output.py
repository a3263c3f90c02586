"""The panel's output side and set-up helpers, kept out of panel.py (one job each):

- the edge controls / decontamination / variation box and the re-render they
  trigger without a new engine job (see :mod:`refine_matte.finishing`);
- the band preview (the trimap the engine would get, without refining);
- the SAM source's one-click checkpoint download (through an injected
  :class:`SamSetup`, which the editor implements with the product's downloader);
- resetting stale status text.

``OutputMixin`` is mixed into :class:`refine_matte.panel.RefinePanel`.  Qt + stdlib.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Callable, Dict, List, Optional, Protocol

from .finishing import CutoutJob, Finisher, FinishControls, ServiceFinisher
from .qt import QtCore, QtWidgets, Signal

NO_FINISHER = ("Edge controls and colour decontamination need an engine service with the "
               "/v1/cutout endpoint; this one does not offer it, so the matte is delivered as refined.")
SAM_HINT = ("SAM needs its checkpoint (vit_b, 375 MB, downloaded once). Or run "
            "`diffmatte download sam-vit-b --dest <config dir>/sam`.")


class SamSetup(Protocol):
    """Whether SAM can run here, and how to fetch its checkpoint (one click)."""

    def available(self) -> bool:
        """True when a checkpoint is installed where the engine looks."""

    def download(self, progress: Callable[[int, Optional[int]], None], cancel: threading.Event) -> str:
        """Fetch the checkpoint (resumable, verified); return where it went."""


class _DownloadSignals(QtCore.QObject):
    progress = Signal(object, object)   # done, total (bytes; may exceed int32)
    done = Signal(str)
    failed = Signal(str)


class OutputMixin:
    """Output controls, band preview, SAM download and status reset for RefinePanel."""

    # --------------------------------------------------------------- set-up
    def _init_output(self, finisher: Optional[Finisher], sam_setup: Optional[SamSetup]) -> None:
        # Without an in-process finisher the engine service does the work (same code there).
        self.finisher = finisher if finisher is not None else ServiceFinisher(lambda: self.state.client)
        self.sam_setup = sam_setup
        self._cutout_jobs: List[CutoutJob] = []
        self._download_cancel: Optional[threading.Event] = None
        self._download_signals: Optional[_DownloadSignals] = None
        self._refit_timer = QtCore.QTimer(self)
        self._refit_timer.setSingleShot(True)
        self._refit_timer.setInterval(150)  # one re-render per burst of spin-box clicks

    def _build_source_extras(self, form: "QtWidgets.QFormLayout") -> None:
        self.preview_band_button = QtWidgets.QPushButton("Preview band")
        self.preview_band_button.setToolTip("Compute the trimap the engine would get (the unknown band "
                                            "after automatic widening) and show it, without refining")
        form.addRow(self.preview_band_button)
        self.sam_row = QtWidgets.QWidget()
        row = QtWidgets.QVBoxLayout(self.sam_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.sam_label = QtWidgets.QLabel(SAM_HINT)
        self.sam_label.setWordWrap(True)
        self.sam_download_button = QtWidgets.QPushButton("Download SAM (375 MB)")
        self.sam_download_button.setToolTip("Download the Segment Anything vit_b checkpoint with the "
                                            "product's downloader (resumes, checks sha256)")
        self.sam_progress = QtWidgets.QProgressBar()
        self.sam_progress.setRange(0, 1000)
        self.sam_progress.hide()
        row.addWidget(self.sam_label)
        row.addWidget(self.sam_download_button)
        row.addWidget(self.sam_progress)
        self.sam_row.hide()
        form.addRow(self.sam_row)

    def _build_output_box(self) -> "QtWidgets.QGroupBox":
        self.output_controls = FinishControls()
        self._sync_finisher()
        return self.output_controls

    def _finisher_ready(self) -> bool:
        check = getattr(self.finisher, "available", None)
        try:
            return check() if callable(check) else True
        except Exception:  # noqa: BLE001 - an unreachable service only means "not now"
            return False

    def _sync_finisher(self) -> None:
        """Controls are live unless the engine is known not to offer them (checked again
        after each refine, once the panel has found its engine)."""
        known = self.state.client is not None or not isinstance(self.finisher, ServiceFinisher)
        self.output_controls.set_available(self._finisher_ready() or not known, NO_FINISHER)

    def _connect_output(self) -> None:
        self.output_controls.changed.connect(self._refit_timer.start)
        self._refit_timer.timeout.connect(self.rerender_output)
        self.preview_band_button.clicked.connect(self.preview_band)
        self.sam_download_button.clicked.connect(self.download_sam)

    # -------------------------------------------------------------- status
    def reset_status(self) -> None:
        """Forget the last result's status and error (new document, undo, layer change)."""
        if self.state.is_busy():
            return  # a running job owns the status line
        self.clear_error()
        self.status_label.setText("Ready.")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")

    def _on_host_refreshed(self) -> None:
        """The host says its document or layer changed: a new document drops the last
        result's status and raw matte; the selection outline follows the host."""
        if self.state.note_host_target(self._target_id()):
            self.forget_result()
            self.reset_status()
        self.show_selection_outline()

    def show_selection_outline(self) -> None:
        """Outline the host selection on the panel's canvas (selection source only)."""
        if self.source() != "selection" or self.adapter is None:
            return
        try:
            self.canvas.set_selection(self.adapter.selection_mask())
        except Exception:  # noqa: BLE001 - no outline is better than an error here
            self.canvas.set_selection(None)

    def forget_result(self) -> None:
        """A new document or layer: edge changes must not re-deliver the old matte."""
        self.state.forget_result()

    # ------------------------------------------------------------- output
    def output_params(self) -> Dict[str, Any]:
        """The result parameters of the next / last delivery (saved with results)."""
        params = self.output_controls.params()
        state = self.state
        params.update({"steps": state.steps(), "samples": state.samples(),
                       "source": state.source(), "band": state.band_or_none()})
        return params

    def edged_alpha(self, raw: Any) -> Any:
        """The engine's matte after the edge controls (the raw matte without a finisher)."""
        edges = self.output_controls.edges()
        if raw is None or not any(edges.values()) or not self._finisher_ready():
            return raw
        return self.finisher.edges(raw, edges)

    def _start_cutout(self) -> None:
        """Decontaminated colours for the cut-out views, on a thread (stale ones dropped)."""
        state = self.state
        token = state.next_cutout()
        if state.raw_alpha is None or state.raw_image is None or not self._finisher_ready():
            return
        job = CutoutJob(self.finisher, token, state.raw_image, state.raw_alpha,
                        self.output_controls.edges(), self.output_controls.amount())
        job.signals.done.connect(self._on_cutout)
        job.signals.failed.connect(self._on_cutout_failed)
        self._cutout_jobs = [j for j in self._cutout_jobs if not j.wait(0)] + [job]
        job.start()

    def _on_cutout(self, token: int, rgba: Any) -> None:
        if token == self.state.cutout_token:
            self.canvas.set_cutout(rgba)

    def _on_cutout_failed(self, token: int, message: str) -> None:
        if token == self.state.cutout_token:
            self.status_label.setText(f"The cut-out preview failed: {message}")

    def rerender_output(self) -> bool:
        """Apply changed edge controls to the last matte: no engine job, the mask is
        replaced (one undo step).  Returns False when there is nothing to re-render."""
        state = self.state
        if state.raw_alpha is None or state.is_busy() or not self._finisher_ready():
            return False
        if self._target_id() != state.raw_target:
            self.forget_result()
            return False
        try:
            alpha = self.edged_alpha(state.raw_alpha)
            state.last_alpha = alpha
            self.canvas.set_alpha(alpha)
            note = self.adapter.add_layer_mask(alpha, self.MASK_NAME)
            self.status_label.setText("Edges updated (no new refine)." + (f" {note}" if note else ""))
            self.maskAdded.emit(alpha)
        except Exception as exc:  # noqa: BLE001 - shown, never raised into the host
            traceback.print_exc()
            self.show_error(f"Could not update the mask: {exc}")
            return False
        self._start_cutout()
        return True

    def _remember_raw(self, alpha: Any, image: Any) -> None:
        self.state.remember_raw(alpha, image, self._target_id())
        self._sync_finisher()

    # -------------------------------------------------------- band preview
    def preview_band(self) -> bool:
        """Compute the trimap of the current source (no refine) and show it in the Trimap view."""
        if self.state.is_busy():
            return False
        self.clear_error()
        try:
            spec = self._build_spec()
        except Exception as exc:  # noqa: BLE001 - shown in the panel
            self.show_error(self._describe(exc))
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

    # ------------------------------------------------------------- SAM set-up
    def _sync_sam_setup(self) -> None:
        want = self.source() == "sam" and self.sam_setup is not None
        try:
            missing = want and not self.sam_setup.available()
        except Exception:  # noqa: BLE001 - a broken check must not hide the panel
            missing = False
        downloading = self._download_cancel is not None
        self.sam_row.setVisible(bool(missing or downloading))
        self.sam_download_button.setText("Cancel download" if downloading else "Download SAM (375 MB)")

    def download_sam(self) -> bool:
        """Start (or cancel) the SAM checkpoint download; progress shows in the panel."""
        if self.sam_setup is None:
            return False
        if self._download_cancel is not None:
            self._download_cancel.set()
            return False
        cancel = threading.Event()
        sig = _DownloadSignals()
        sig.progress.connect(self._on_sam_progress)
        sig.done.connect(self._on_sam_done)
        sig.failed.connect(self._on_sam_failed)
        self._download_cancel, self._download_signals = cancel, sig
        self.sam_progress.setValue(0)
        self.sam_progress.setFormat("starting…")
        self.sam_progress.show()
        self._sync_sam_setup()

        def run() -> None:
            try:
                path = self.sam_setup.download(lambda d, t: sig.progress.emit(d, t), cancel)
                sig.done.emit(str(path))
            except BaseException as exc:  # noqa: BLE001 - reported in the panel
                sig.failed.emit("Download cancelled (it resumes where it stopped)." if cancel.is_set()
                                else f"SAM download failed: {exc}")

        threading.Thread(target=run, name="refine-matte-sam-download", daemon=True).start()
        return True

    def _on_sam_progress(self, done: Any, total: Any) -> None:
        if total:
            self.sam_progress.setValue(int(1000 * int(done) / int(total)))
            self.sam_progress.setFormat(f"{int(done) / 1e6:.0f} / {int(total) / 1e6:.0f} MB")
        else:
            self.sam_progress.setFormat(f"{int(done) / 1e6:.0f} MB")

    def _on_sam_done(self, path: str) -> None:
        self._download_cancel = None
        self.sam_progress.hide()
        self.status_label.setText(f"SAM is ready ({path}). Click the subject to start.")
        self._sync_sam_setup()

    def _on_sam_failed(self, message: str) -> None:
        self._download_cancel = None
        self.sam_progress.hide()
        self.show_error(message)
        self._sync_sam_setup()

    # ------------------------------------------------------------- settings
    def _save_output_settings(self, settings: "QtCore.QSettings") -> None:
        self.output_controls.save_settings(settings)

    def _restore_output_settings(self, settings: "QtCore.QSettings") -> None:
        self.output_controls.restore_settings(settings)
