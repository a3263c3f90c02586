"""How the panel shows a running job's progress: the bar, the status line under it and the
canvas's progress text, fed by the worker's signals and the :class:`PanelState`.

A diffusion engine counts steps ("Refining… step 3 of 10", "step 3/10 (x0 preview)"), or
its real work in per cent where the service reports it (encoder tiles, tile x step
decodes); a prior-only engine shows its solve ("Solving the matte… 42 % (about 12 s
left)"); a band preview is a busy bar.  Qt + stdlib; owned by RefinePanel.
"""

from __future__ import annotations

from typing import Any

from . import imaging
from .canvas import MatteCanvas
from .panel_state import PanelState
from .progress_text import Estimate, solving_text
from .qt import QtWidgets
from .worker import JobSpec


class JobProgress:
    """Renders progress reports into ``bar``, ``status`` and ``canvas``."""

    def __init__(self, bar: "QtWidgets.QProgressBar", status: "QtWidgets.QLabel", canvas: MatteCanvas,
                 state: PanelState) -> None:
        self.bar, self.status, self.canvas, self.state = bar, status, canvas, state

    def reset(self, spec: JobSpec, preview: bool) -> None:
        """The bar of a new job: busy for a band preview, per cent of the solve for a
        prior-only engine, steps otherwise (until the engine reports its work)."""
        if preview:
            self.bar.setRange(0, 0)
            self.bar.setFormat("")
        elif self.state.prior_only:
            self.bar.setRange(0, 1000)
            self.bar.setFormat("%p %")
        else:
            self.bar.setRange(0, spec.steps * spec.samples)
            self.bar.setFormat("step %v / %m")
        self.bar.setValue(0)

    def engine_known(self) -> None:
        """The engine said whether it is prior-only: the first job learns it (no "step 0 / 10")."""
        if self.state.prior_only and self.state.job is not None and self.bar.maximum() > 0:
            self.bar.setRange(0, 1000)
            self.bar.setFormat("%p %")
            self.bar.setValue(0)

    def refine_started(self) -> None:
        """The refine request goes out: a prior-only solve's text and time estimate start."""
        self.state.estimate = Estimate()   # timed from the solve's first report, not the upload
        if self.state.job is not None and self.state.prior_only:
            self.bar.setValue(0)
            self.status.setText(solving_text(0.0))
            self.canvas.set_progress_text(solving_text(0.0))

    def solving(self, done: int, total: int) -> None:
        """A prior-only engine's progress: the bar in per cent, "Solving the matte… 42 %
        (about 12 s left)" under it, "Solving the matte… 42 %" on the canvas (its line
        also names the view, and the docker is narrow)."""
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(min(done, total))
        self.bar.setFormat("%p %")
        fraction = min(done / max(total, 1), 1.0)
        self.status.setText(self.state.estimate.text(fraction) if fraction < 1.0 else solving_text(1.0))
        self.canvas.set_progress_text(solving_text(fraction))

    def step(self, step: int, total: int, preview: Any) -> None:
        """A step event, with the x0 preview (PNG bytes) when the engine sent one."""
        if self.state.job_cancelled():
            return
        if isinstance(preview, (bytes, bytearray)):
            try:
                preview = imaging.png_to_qimage(preview)
            except ValueError:
                preview = None  # a bad preview must not end the job
        if self.state.prior_only:  # no steps run: the one step event comes with the solved matte
            self.solving(total, total)
            if preview is not None:
                self.canvas.set_preview(preview)
            return
        if not self.state.work_seen:  # the bar counts the engine's work where the service reports it
            self.bar.setRange(0, max(total, 1))
            self.bar.setValue(step)
        self.status.setText(f"Refining… step {step} of {total}")
        self.canvas.set_progress_text(f"step {step}/{total}"
                                      + (" (x0 preview)" if preview is not None else ""))
        if preview is not None:
            self.canvas.set_preview(preview)

    def work(self, done: int, total: int) -> None:
        """The engine's real work (encoder tiles, tile x step decodes): the bar follows it,
        so that one long step of a large photo still moves it."""
        if self.state.job_cancelled() or total <= 0:
            return
        self.state.work_seen = True
        if self.state.prior_only:
            self.solving(done, total)
            return
        self.bar.setRange(0, total)
        self.bar.setValue(min(done, total))
        self.bar.setFormat("%p %")

    def stopped(self) -> None:
        """The job failed or was cancelled: no preview, an empty bar."""
        self.canvas.set_preview(None)
        self.bar.setValue(0)
        self.bar.setFormat("")
