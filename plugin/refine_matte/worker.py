"""Runs one trimap + refine job off the GUI thread and reports back with signals.

The engine client blocks (HTTP), so each job runs in a plain Python thread;
signals emitted there reach GUI-thread slots through queued connections.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import imaging, widen_rule
from .adapter import HostError
from .client import EngineError, EngineNotRunning, JobCancelled
from .engine_api import EngineApi
from .progress_text import PREPARING, TRIMAP
from .qt import QtCore, QtGui, Signal


ImageData = Any  # PNG bytes, or a QImage the worker encodes (PNG encoding of a big
                 # layer takes a noticeable time, so it is kept off the GUI thread)


@dataclass
class JobSpec:
    """Everything a job needs; images are PNG bytes or detached QImage copies."""

    image_png: ImageData
    source: str                      # "sam" | "selection" | "mask" | "scribbles" | "trimap"
    steps: int = 10
    samples: int = 1                 # draws averaged by the engine (slower, less noisy)
    band: Optional[int] = None
    mask_png: Optional[ImageData] = None
    fg_png: Optional[ImageData] = None
    bg_png: Optional[ImageData] = None
    unknown_png: Optional[ImageData] = None
    trimap_png: Optional[ImageData] = None
    points: Optional[List[Tuple[float, float]]] = None
    labels: Optional[List[int]] = None
    box: Optional[Tuple[float, float, float, float]] = None
    seed: Optional[int] = 0          # the variation: fixed, so results repeat (0 = the CLI's default)
    override_png: Optional[ImageData] = None  # refine brush over a non-scribble source (ARGB)
    trimap_only: bool = False        # band preview: compute the trimap, do not refine
    edge: str = "exact"              # selection / mask: "rough" (a region around the subject), "exact", "auto"


#: The preparation of a refine, as shares of it (0..1) that the worker reports as each part
#: ends (and within the parts that report their own progress): the layer read (the spec is
#: built), its PNG encoded band by band, the engine found, the service's trimap (upload,
#: decode, computation), the trimap read back, the refine's upload and its start. Measured
#: at 24 MP on a busy 2-core machine: encode ~4 s, trimap ~15 s, upload ~3 s.
PREP = {"start": 0.02, "encoded": 0.2, "connected": 0.22, "trimap": (0.24, 0.84), "trimap_read": 0.87,
        "submitted": 0.95, "started": 0.98}


class JobSignals(QtCore.QObject):
    """Signals of a RefineJob; created in (and owned by) the GUI thread."""

    stage = Signal(str)                   # the work under way ("Building the trimap…"; the panel adds the %)
    trimapReady = Signal(object)          # QImage
    progress = Signal(int, int, object)   # step, total, preview PNG bytes | None (decoded by the GUI)
    work = Signal(int, int)               # engine work done, total (tile x step decodes)
    finished = Signal(object)             # QImage alpha
    failed = Signal(str)
    cancelled = Signal()
    warning = Signal(str)                 # the service's advice on the trimap (shown, not an error)
    engineInfo = Signal(object)           # the engine's info() dict ("prior_only", "variant", ...)
    refineStarted = Signal()              # the refine request is being sent (after the trimap)
    prepared = Signal(float)              # share of the preparation done, 0..1 (see PREP)


class RefineJob:
    """Compute the trimap for ``spec`` then refine, on a daemon thread."""

    def __init__(self, spec: JobSpec, get_client: Callable[[], EngineApi]) -> None:
        self.spec = spec
        self.signals = JobSignals()
        self.cancel_event = threading.Event()
        self._get_client = get_client
        #: how the trimap step read a selection / mask ("rough" or "exact"; None: not said)
        self.trimap_edge: Optional[str] = None
        self._thread = threading.Thread(target=self._run, name="refine-matte-job", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: Optional[float] = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------
    def _encode(self) -> None:
        """Turn every QImage of the spec into PNG bytes (on the worker thread), band by band
        with progress (imaging.qimage_to_png): the layer takes most of it, the masks the last tenth."""
        s = self.spec
        lo, hi = PREP["start"], PREP["encoded"]
        part = self._prepared_part
        if not isinstance(s.image_png, (bytes, bytearray)):
            s.image_png = imaging.qimage_to_png(imaging.rgb_for_engine(s.image_png), part(lo, lo + 0.9 * (hi - lo)))
        for name in ("mask_png", "fg_png", "bg_png", "unknown_png", "trimap_png"):
            value = getattr(s, name)
            if value is not None and not isinstance(value, (bytes, bytearray)):
                setattr(s, name, imaging.qimage_to_png(imaging.to_grey8(value)))
        # override_png stays a QImage: it is painted onto the trimap on this thread.
        self.signals.prepared.emit(hi)

    def _prepared_part(self, lo: float, hi: float) -> Callable[[float], None]:
        """A progress callback for the part ``lo``..``hi`` of the preparation; it also stops
        the part once the job is cancelled (so a cancel need not wait for a 24 MP encode)."""
        def report(fraction: float) -> None:
            if self.cancel_event.is_set():
                raise JobCancelled("cancelled", code="cancelled")
            self.signals.prepared.emit(lo + (hi - lo) * min(max(float(fraction), 0.0), 1.0))
        return report

    def _run(self) -> None:
        sig = self.signals
        try:
            sig.stage.emit(PREPARING)
            sig.prepared.emit(PREP["start"])  # the spec is built: the layer has been read
            self._encode()
            sig.stage.emit("Connecting to the engine… (the first time it may have to start: "
                           "about 15 s, once per session)")
            client = self._get_client()
            if self.cancel_event.is_set():
                sig.cancelled.emit()
                return
            info = engine_info(client)
            if info is not None:
                sig.engineInfo.emit(info)
            sig.prepared.emit(PREP["connected"])
            sig.stage.emit(TRIMAP)
            trimap_png = self._trimap(client)
            if self.spec.override_png is not None and self.spec.source != "scribbles":
                trimap_png = apply_overrides(trimap_png, self.spec.override_png)
            sig.trimapReady.emit(imaging.png_to_qimage(trimap_png))
            sig.prepared.emit(PREP["trimap_read"])
            if self.spec.trimap_only:
                sig.finished.emit(None)
                return
            if self.cancel_event.is_set():
                sig.cancelled.emit()
                return
            sig.stage.emit("Refining…")
            sig.refineStarted.emit()

            def on_progress(step: int, total: int, preview: Optional[bytes]) -> None:
                # Previews stay bytes here: every step's decode happens on the GUI thread,
                # which keeps Qt work on this thread to a few calls per job.
                sig.progress.emit(int(step), int(total), bytes(preview) if preview else None)

            alpha_png = client.refine(self.spec.image_png, trimap_png, steps=self.spec.steps,
                                      seed=self.spec.seed, on_progress=on_progress, samples=self.spec.samples,
                                      cancel_event=self.cancel_event, preview=True,
                                      on_work=lambda done, total: sig.work.emit(int(done), int(total)),
                                      on_warning=sig.warning.emit,
                                      widen_band=widen_rule.widens(self.spec.source, self.trimap_edge),
                                      band=self.spec.band,
                                      on_status=lambda status: sig.prepared.emit(PREP[status]))
            if self.cancel_event.is_set():
                sig.cancelled.emit()
                return
            sig.finished.emit(imaging.png_to_qimage(alpha_png))
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the panel
            if self.cancel_event.is_set():  # whatever the exception: a cancel was asked for
                sig.cancelled.emit()
            else:
                traceback.print_exc()  # full detail for logs; the panel shows one line
                sig.failed.emit(describe_error(exc))

    def _trimap_work(self, done: int, total: int) -> None:
        """The service's progress of the trimap: its share of the preparation."""
        lo, hi = PREP["trimap"]
        fraction = min(max(done / max(total, 1), 0.0), 1.0)
        self.signals.prepared.emit(lo + (hi - lo) * fraction)

    def _trimap(self, client: EngineApi) -> bytes:
        s = self.spec
        follow = {"on_work": self._trimap_work, "cancel_event": self.cancel_event}
        if s.source == "trimap":
            if not s.trimap_png:
                raise ValueError("no trimap given")
            return s.trimap_png
        if s.source in ("selection", "mask"):
            return client.trimap_from_mask(s.mask_png, band=s.band, image_png=s.image_png, edge=s.edge,
                                           on_warning=self.signals.warning.emit, on_edge=self._edge_used, **follow)
        if s.source == "scribbles":
            return client.trimap_from_scribbles(s.image_png, s.fg_png, s.bg_png,
                                                unknown_png=s.unknown_png, band=s.band,
                                                on_warning=self.signals.warning.emit, **follow)
        if s.source == "sam":
            kwargs: Dict[str, Any] = {"points": list(s.points or []),
                                      "labels": list(s.labels or []), "box": s.box}
            if s.band is not None:
                kwargs["band"] = s.band
            return client.sam_trimap(s.image_png, **kwargs)
        raise ValueError(f"unknown trimap source {s.source!r}")

    def _edge_used(self, edge: str) -> None:
        self.trimap_edge = edge


def apply_overrides(trimap_png: bytes, overrides: Any) -> bytes:
    """Paint the refine brush (opaque 255 / 128 / 0 pixels of an ARGB image) over a trimap."""
    tri = imaging.png_to_qimage(trimap_png).convertToFormat(imaging.Fmt.Format_RGB32)
    if overrides.size() != tri.size():
        raise ValueError(f"the brush strokes are {overrides.width()}x{overrides.height()} but the "
                         f"trimap is {tri.width()}x{tri.height()}")
    p = QtGui.QPainter(tri)
    p.drawImage(0, 0, overrides)  # opaque where painted, transparent elsewhere: no blending
    p.end()
    return imaging.qimage_to_png(imaging.to_grey8(tri))


def engine_info(client: EngineApi) -> Optional[Dict[str, Any]]:
    """The engine's part of ``client.info()`` (the service nests it under "engine"; test
    stand-ins may answer it flat), or None when the client cannot say."""
    ask = getattr(client, "info", None)
    if not callable(ask):
        return None
    try:
        info = ask()
    except Exception:  # noqa: BLE001 - the info is a nicety; the refine still runs
        return None
    engine = info.get("engine", info) if isinstance(info, dict) else None
    return engine if isinstance(engine, dict) else None


def describe_error(exc: BaseException) -> str:
    """One readable line for the panel."""
    msg = str(exc).strip()
    if isinstance(exc, EngineNotRunning):
        if any(word in msg for word in ("exited", "did not come up", "cannot start")):
            return f"The engine could not start: {msg}"
        return ("Engine not running: start it with `diffmatte serve`."
                + (f"\n{msg}" if msg else ""))
    if isinstance(exc, (HostError, ValueError)):
        return msg or type(exc).__name__
    if isinstance(exc, EngineError):
        return f"Engine error: {msg}" if msg else "The engine reported an error."
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return f"Cannot reach the engine ({type(exc).__name__}: {msg})."
    return f"Unexpected error ({type(exc).__name__}): {msg}"
