"""How the panel shows a running job's progress: the bar, the status line under it and the
canvas's progress text, fed by the worker's signals and the :class:`PanelState`.

The status line names the work under way with the bar's own per cent ("Building the
trimap… 12 %", "Solving the matte… 42 % (about 12 s left)"): one number, the whole job's.

The bar fills with the whole job: the preparation (encoding the layer, the trimap, the
upload) and then the engine's refine. A diffusion engine counts steps ("Refining… step 3
of 10", "step 3/10 (x0 preview)"), or its real work where the service reports it (encoder
tiles, tile x step decodes); a prior-only engine shows its solve ("Solving the matte… 42 %
(about 12 s left)"); a band preview is a busy bar.  Qt + stdlib; owned by RefinePanel.
"""

from __future__ import annotations

from typing import Any

from . import imaging
from .canvas import MatteCanvas
from .panel_state import PanelState
from .progress_text import SOLVING, Estimate, stage_text
from .qt import QtWidgets
from .worker import JobSpec


#: the bar's share for a refine's preparation (encoding the layer, the service's trimap,
#: the refine's upload): about 4 % of a 24 MP refine's time, 20 % of a 1 MP one's
PREP_SHARE = 0.1
#: the bar's range for a refine: fine enough that every work event of a long solve moves it
BAR_MAX = 10000


class JobProgress:
    """Renders progress reports into ``bar``, ``status`` and ``canvas``.

    A refine's bar is its whole job (0..BAR_MAX), never going back: the preparation fills
    the first ``PREP_SHARE`` (the worker's ``prepared`` fractions), the engine's refine the
    rest (a prior-only solve's fraction, the engine's work, or steps). The words and numbers
    are in the status line ("Building the trimap… 12 %", "Solving the matte… 42 % (about
    12 s left)", "Refining… step 3 of 10"), so the bar carries no text of its own; the per
    cent is the bar's (a band preview's busy bar: the trimap's)."""

    def __init__(self, bar: "QtWidgets.QProgressBar", status: "QtWidgets.QLabel", canvas: MatteCanvas,
                 state: PanelState) -> None:
        self.bar, self.status, self.canvas, self.state = bar, status, canvas, state
        self._preview = False
        self._done = 0.0                  # the job's fraction the status shows (the bar's)
        self._stage = ""                  # the work under way, as the worker names it
        self._left: "float | None" = None  # the solve's seconds left, once estimated

    def reset(self, spec: JobSpec, preview: bool) -> None:
        """The bar of a new job: busy for a band preview, else empty (0..BAR_MAX)."""
        if preview:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, BAR_MAX)
        self.bar.setFormat("")
        self.bar.setValue(0)
        self._preview, self._done, self._stage, self._left = preview, 0.0, "", None

    def stage(self, text: str) -> None:
        """The worker names the work under way ("Building the trimap…"): shown with the per
        cent done (not once the job is cancelled: "Cancelling…" stays)."""
        if not self.state.job_cancelled():
            self._stage, self._left = text, None
            self._render()

    def _render(self) -> None:
        if self._stage:
            self.status.setText(stage_text(self._stage, self._done, self._left))

    def _show(self, fraction: float) -> None:
        """Fill the bar to ``fraction`` of the job and say so; never back (a report that
        comes late)."""
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction <= self._done:
            return
        self._done = fraction
        self._render()  # first: whoever watches the bar reads the text that goes with it
        value = int(BAR_MAX * fraction)
        if self.bar.maximum() == BAR_MAX and value > self.bar.value():
            self.bar.setValue(value)

    def prepared(self, fraction: float) -> None:
        """The preparation's progress (the worker's share of it done, 0..1): a band
        preview's whole job."""
        if not self.state.job_cancelled():
            self._show(fraction if self._preview else PREP_SHARE * fraction)

    def _refined(self, fraction: float) -> None:
        """The engine's refine has done ``fraction`` of its work."""
        self._show(PREP_SHARE + (1.0 - PREP_SHARE) * fraction)

    def refine_started(self) -> None:
        """The refine request goes out: a prior-only solve's text and time estimate start."""
        self.state.estimate = Estimate()   # timed from the solve's first report, not the upload
        if self.state.job is not None and self.state.prior_only:
            self.stage(SOLVING)
            self.canvas.set_progress_text(stage_text(SOLVING, self._done))

    def solving(self, done: int, total: int) -> None:
        """A prior-only engine's progress: the bar, "Solving the matte… 42 % (about 12 s
        left)" under it, "Solving the matte… 42 %" on the canvas (its line also names the
        view, and the docker is narrow). The per cent is the bar's; the time left is the
        solve's, from its own rate."""
        fraction = min(done / max(total, 1), 1.0)
        self._stage = SOLVING
        self._left = self.state.estimate.update(fraction) if fraction < 1.0 else None
        self._refined(fraction)
        self._render()
        self.canvas.set_progress_text(stage_text(SOLVING, self._done))

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
        self._stage = ""  # the steps are the words now (the bar's per cent would read as a step's)
        self.status.setText(f"Refining… step {step} of {total}")
        if not self.state.work_seen:  # the bar counts the engine's work where the service reports it
            self._refined(step / max(total, 1))
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
        self._refined(done / total)

    def stopped(self) -> None:
        """The job failed or was cancelled: no preview, an empty bar."""
        self.canvas.set_preview(None)
        self.bar.setValue(0)
        self.bar.setFormat("")
        self._stage = ""
