"""PanelState: what the Refine Matte panel knows, without its widgets.

The panel (:class:`refine_matte.panel.RefinePanel`) renders this state and forwards
the artist's actions to it, as krita-ai-diffusion separates its model from its UI:

- the artist's choices: trimap source, edge mode per source, diffusion steps,
  samples, band (each clamped to the range its control offers; a change emits a signal);
- the engine client (injected, or found by a factory on the worker thread and found
  again after the engine restarted);
- the running job and what it learnt (the engine is prior-only, it reports its work,
  a warning about the trimap, the time estimate);
- the last result: the delivered matte, the engine's raw matte and the layer it was
  made for, the cut-out token that drops stale cut-outs;
- the live band preview's flags;
- persistence of the choices (the ``panel`` settings group's source / edge / steps /
  samples / band keys; the panel adds the canvas's and the output controls' keys).

Qt signals only (QtCore); no widgets, so it is tested without a window.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from .engine_api import EngineApi
from .progress_text import Estimate
from .qt import QtCore, Signal

SOURCES = (
    ("sam", "SAM: points / box"),
    ("selection", "Host selection"),
    ("mask", "Active layer's mask"),
    ("scribbles", "Scribbles"),
)
SOURCE_IDS = [s[0] for s in SOURCES]
# How the engine reads a selection or mask. An artist's selection is a rough region
# around the subject (its edge is found inside it); a layer or SAM mask already
# follows the edge. Each source starts with the mode that fits it.
EDGES = (
    ("rough", "Rough: find the edge inside"),
    ("exact", "Exact: the outline is the edge"),
    ("auto", "Auto: decide from the image"),
)
EDGE_IDS = [e[0] for e in EDGES]
DEFAULT_EDGE = {"selection": "rough", "mask": "exact"}
#: (lowest, highest) of each numeric choice (the panel's controls offer the same)
STEPS_RANGE = (1, 100)
SAMPLES_RANGE = (1, 8)
BAND_RANGE = (0, 200)
DEFAULT_STEPS = 10
HINTS = {
    "sam": "Click the subject (right/Alt/Shift-click marks background), or drag a box. "
           "Fg/Bg/Unknown brushes correct the result.",
    "selection": "Select the subject roughly (lasso or rectangle around it, holes included): "
                 "its edge is found inside. Preview the band first; Fg/Bg/Unknown brushes "
                 "correct it (refine brush).",
    "mask": "Uses the active layer's existing mask; the band sets the unknown edge. "
            "Fg/Bg/Unknown brushes correct it (refine brush).",
    "scribbles": "Paint foreground (F) and background (B); unknown (U) is optional, "
                 "E erases.",
}


def band_text(value: int) -> str:
    """The band control's label: "auto" for 0, else "±N px"."""
    return "auto" if value == 0 else f"±{value} px"


def as_int(value: Any) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_UNSEEN = object()


def _clamp(value: int, bounds: Tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], int(value)))


class PanelState(QtCore.QObject):
    """The panel's model. ``client`` or ``client_factory`` as for RefinePanel."""

    sourceChanged = Signal(str)
    edgeChanged = Signal(str)       # the edge mode shown for the current source
    stepsChanged = Signal(int)
    samplesChanged = Signal(int)
    bandChanged = Signal(int)

    def __init__(self, *, client: Optional[EngineApi] = None,
                 client_factory: Optional[Callable[[], EngineApi]] = None,
                 parent: Optional["QtCore.QObject"] = None) -> None:
        super().__init__(parent)
        # ---- the artist's choices
        self._source = SOURCE_IDS[0]
        self._edges: Dict[str, str] = dict(DEFAULT_EDGE)  # the artist's choice per source
        self._edge = EDGE_IDS[0]  # the mode shown (kept for sources without a choice)
        self._steps = DEFAULT_STEPS
        self._samples = 1
        self._band = 0
        # ---- the engine client
        self.client = client
        self.client_factory = client_factory
        self.client_from_factory = False  # only those are re-discovered after a restart
        self.client_lock = threading.Lock()
        # ---- the running job
        self.job: Any = None
        self.old_jobs: List[Any] = []  # keep signal objects alive until threads end
        self.job_spec: Any = None
        self.job_target: Any = None
        self.job_warning = ""
        self.work_seen = False  # the running job reports the engine's work
        self.estimate = Estimate()
        #: the engine's matte is its prior (no diffusion: steps, samples and variation
        #: change nothing); None until an engine said (its info(), asked by every job)
        self.prior_only: Optional[bool] = None
        # ---- the last result
        #: the last matte the engine returned, after the edge controls (kept when the host
        #: could not take it)
        self.last_alpha: Any = None
        #: the engine's own matte of the last refine, the layer it was made for, and its target
        self.raw_alpha: Any = None
        self.raw_image: Any = None
        self.raw_target: Any = None
        self.spec_image: Any = None  # the layer's own pixels of the job being built / run
        self.cutout_token = 0
        self._host_target: Any = _UNSEEN  # the document / layer the host last showed
        self._host_selection: Any = None  # the host selection's key at the last poll (None: none)
        # ---- the live band preview
        self.live_band = False    # strokes recompute the band preview
        self.band_pending = False  # a band preview waits to run

    # ============================================================ choices
    def source(self) -> str:
        return self._source

    def set_source(self, source: str) -> None:
        """Pick the trimap source; its remembered edge mode comes with it."""
        if source not in SOURCE_IDS:
            raise ValueError(f"unknown trimap source {source!r}")
        if source == self._source:
            return
        self._source = source
        if source in self._edges:
            self._edge = self._edges[source]
        self.sourceChanged.emit(source)

    def has_edge_choice(self) -> bool:
        """Whether the current source is read with an edge mode (selection, mask)."""
        return self._source in self._edges

    def edge(self) -> str:
        """The edge mode shown: "rough", "exact" or "auto"."""
        return self._edge

    def job_edge(self) -> str:
        """The edge mode a job of the current source gets."""
        return self._edges.get(self._source, "exact")

    def edges(self) -> Dict[str, str]:
        return dict(self._edges)

    def set_edge(self, edge: str) -> None:
        """Set the edge mode; for a source with a choice it is remembered for it."""
        if edge not in EDGE_IDS:
            raise ValueError(f"unknown edge mode {edge!r}")
        if self._source in self._edges:
            self._edges[self._source] = edge
        if edge != self._edge:
            self._edge = edge
            self.edgeChanged.emit(edge)

    def steps(self) -> int:
        return self._steps

    def set_steps(self, steps: int) -> None:
        old, self._steps = self._steps, _clamp(steps, STEPS_RANGE)
        if self._steps != old:
            self.stepsChanged.emit(self._steps)

    def samples(self) -> int:
        return self._samples

    def set_samples(self, samples: int) -> None:
        old, self._samples = self._samples, _clamp(samples, SAMPLES_RANGE)
        if self._samples != old:
            self.samplesChanged.emit(self._samples)

    def band(self) -> int:
        """The band radius in pixels; 0 is automatic."""
        return self._band

    def band_or_none(self) -> Optional[int]:
        return self._band or None

    def set_band(self, band: int) -> None:
        old, self._band = self._band, _clamp(band, BAND_RANGE)
        if self._band != old:
            self.bandChanged.emit(self._band)


    def hint(self) -> str:
        return HINTS[self._source]

    # ============================================================ engine client
    def get_client(self) -> EngineApi:
        """The engine client (called on the worker thread).

        A client found by the factory is checked first, so an engine that was
        restarted (new port or token) is found again instead of failing every click.
        """
        with self.client_lock:
            if self.client is not None and self.client_from_factory:
                alive = getattr(self.client, "alive", None)
                if alive is not None and not alive():
                    self.client = None
            if self.client is None:
                if self.client_factory is None:
                    raise RuntimeError("no engine client and no way to find one")
                self.client = self.client_factory()
                self.client_from_factory = True
            return self.client

    def drop_client(self) -> None:
        """Forget the client (the engine was stopped); the next job finds one again."""
        with self.client_lock:
            self.client = None

    # ============================================================ jobs
    def is_busy(self) -> bool:
        return self.job is not None

    def begin_job(self, job: Any, spec: Any, target: Any) -> None:
        """``job`` runs ``spec`` for the document / layer ``target``."""
        self.job_spec = spec
        self.job_warning = ""
        self.work_seen = False
        self.job = job
        self.job_target = target

    def end_job(self) -> None:
        """The job ended; its thread may still be winding down (kept alive until it has)."""
        if self.job is not None:
            self.old_jobs = [j for j in self.old_jobs if j.is_running()] + [self.job]
        self.job = None

    def set_engine_info(self, info: Any) -> bool:
        """The engine's ``info()``; returns False when it was not a dict (ignored)."""
        if not isinstance(info, dict):
            return False
        self.prior_only = bool(info.get("prior_only"))
        return True

    def job_cancelled(self) -> bool:
        """No job, or the running one was asked to stop: its late reports are dropped."""
        return self.job is None or self.job.cancel_event.is_set()

    # ============================================================ results
    def remember_raw(self, alpha: Any, image: Any, target: Any) -> None:
        self.raw_alpha, self.raw_image = alpha, image
        self.raw_target = target

    def forget_result(self) -> None:
        """A new document or layer: edge changes must not re-deliver the old matte."""
        self.raw_alpha = self.raw_image = None
        self.cutout_token += 1

    def note_host_target(self, target: Any) -> bool:
        """The host shows ``target`` (document / layer id) now; True when that is another
        one than the host showed before (the first call returns False)."""
        changed = self._host_target is not _UNSEEN and target != self._host_target
        self._host_target = target
        return changed

    def note_host_selection(self, key: Any) -> bool:
        """The host's selection has ``key`` now (``HostAdapter.selection_key``); True when
        that differs from the last poll's (no selection before the first poll)."""
        changed = key != self._host_selection
        self._host_selection = key
        return changed

    def next_cutout(self) -> int:
        """A new cut-out is due: earlier ones become stale. Returns its token."""
        self.cutout_token += 1
        return self.cutout_token

    # ============================================================ settings
    def save_settings(self, settings: Any) -> None:
        """Write the choices into the open settings group (QSettings-like ``setValue``)."""
        settings.setValue("source", self._source)
        for src, edge in self._edges.items():
            settings.setValue(f"edge_{src}", edge)
        settings.setValue("steps", self._steps)
        settings.setValue("samples", self._samples)
        settings.setValue("band", self._band)

    def restore_edges_and_source(self, settings: Any) -> None:
        """Apply saved edge modes and source; bad or missing values are ignored."""
        for key in self._edges:
            edge = settings.value(f"edge_{key}", None)
            if edge in EDGE_IDS:
                self._edges[key] = edge
        src = settings.value("source", None)
        if src in SOURCE_IDS:
            self.set_source(src)
        if self._source in self._edges:
            self._edge = self._edges[self._source]

    def restore_numbers(self, settings: Any) -> None:
        """Apply saved steps, samples and band (clamped); bad or missing values are ignored."""
        for key, setter in (("steps", self.set_steps), ("samples", self.set_samples),
                            ("band", self.set_band)):
            val = as_int(settings.value(key, None))
            if val is not None:
                setter(val)
