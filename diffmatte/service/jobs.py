"""The refine job queue: one worker thread owns the device, jobs wait their turn.

Jobs carry an append-only event list (queued, started, progress, done / failed /
cancelled) that HTTP handlers stream to clients. Waiting handlers live on the
asyncio loop, so the worker wakes them with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import ctypes
import gc
import logging
import secrets
import sys
import threading
import time
import traceback
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

import numpy as np

from ..errors import Cancelled
from . import imaging

log = logging.getLogger("diffmatte.service")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
TERMINAL = (DONE, FAILED, CANCELLED)
# Seconds a finished job keeps its progress previews for late readers of its stream.
PREVIEW_TTL = 30.0
# A "work" event (tiles x steps done, from the engine's progress) is sent when this many
# seconds passed without an event, so that a long step of a large image still moves the
# client's progress bar; every "progress" event carries the same counts.
WORK_EVENT_INTERVAL = 1.0


class QueueFull(Exception):
    """Raised by :meth:`JobManager.submit` when the bounded queue is full."""


class ShuttingDown(Exception):
    """Raised by :meth:`JobManager.submit` once shutdown has begun."""


class _CallbackCancel(Exception):
    """Raised from the step callback to stop an engine that ignores ``cancel``."""


def is_out_of_memory(exc: BaseException) -> bool:
    """Tell whether ``exc`` is a host or device out-of-memory error."""
    if isinstance(exc, MemoryError):
        return True
    if type(exc).__name__ in ("OutOfMemoryError", "OutOfMemory"):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "cuda error: out of memory" in text


def _trim_heap() -> None:
    """Return freed heap pages to the OS (glibc only).

    Large request bodies and images are freed after each request, but glibc keeps the
    pages in its arenas, so the service's RSS stepped up with every new peak size.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl or another libc: nothing to trim
        pass


def free_device_memory() -> None:
    """Collect garbage, return freed heap pages and cached device memory."""
    gc.collect()
    _trim_heap()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
            torch.cuda.ipc_collect()
        mps = getattr(torch, "mps", None)
        if mps is not None and hasattr(mps, "empty_cache") and torch.backends.mps.is_available():
            mps.empty_cache()
    except Exception:  # noqa: BLE001 - freeing memory must never take the worker down
        log.exception("freeing device memory failed")


class Job:
    """One refine request and everything clients may ask about it."""

    def __init__(self, image: np.ndarray, trimap: np.ndarray, steps: int, seed: Optional[int],
                 preview: bool, preview_size: int, samples: int = 1) -> None:
        self.id = secrets.token_hex(8)
        self.samples = int(samples)
        self.image: Optional[np.ndarray] = image
        self.trimap: Optional[np.ndarray] = trimap
        self.steps = steps
        self.seed = seed
        self.preview = preview
        self.preview_size = preview_size
        self.width, self.height = imaging.image_size(image)
        self.state = QUEUED
        self.error: Optional[str] = None
        self.error_code: Optional[str] = None
        self.result: Optional[bytes] = None
        self.created = time.time()
        self.started: Optional[float] = None
        self.finished: Optional[float] = None
        self.cancel_event = threading.Event()
        self.forgotten = False
        self.events: List[Dict[str, Any]] = []
        self._lock = threading.Lock()
        self._waiters: List[Tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    # -- events -------------------------------------------------------------------------
    def emit(self, kind: str, **data: Any) -> None:
        """Append an event and wake every waiting stream."""
        with self._lock:
            event = {"id": len(self.events) + 1, "type": kind, "job": self.id}
            event.update(data)
            self.events.append(event)
            waiters = list(self._waiters)
        for loop, flag in waiters:
            try:
                loop.call_soon_threadsafe(flag.set)
            except RuntimeError:  # loop already closed: that stream is gone
                pass

    def events_after(self, after: int) -> List[Dict[str, Any]]:
        """Return the events whose id is greater than ``after``."""
        with self._lock:
            return list(self.events[max(0, after):])

    def ended_by(self, event_id: int) -> bool:
        """True when the job's terminal event exists and has an id <= ``event_id``.

        A stream that has sent (or was asked to skip) that far has nothing more to
        wait for; checking the event rather than ``state`` avoids ending a stream in
        the instant between ``finish`` setting the state and emitting the event.
        """
        with self._lock:
            if not self.events:
                return False
            last = self.events[-1]
            return last["type"] in TERMINAL and last["id"] <= event_id

    def add_waiter(self, loop: asyncio.AbstractEventLoop, flag: asyncio.Event) -> int:
        """Register a stream to be woken on the next event; return the event count."""
        with self._lock:
            self._waiters.append((loop, flag))
            return len(self.events)

    def remove_waiter(self, loop: asyncio.AbstractEventLoop, flag: asyncio.Event) -> None:
        with self._lock:
            try:
                self._waiters.remove((loop, flag))
            except ValueError:
                pass

    # -- state --------------------------------------------------------------------------
    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def finish(self, state: str, error: Optional[str] = None, code: Optional[str] = None) -> None:
        """Move to a terminal state, drop the inputs and large previews, emit the event."""
        self.state = state
        self.error = error
        self.error_code = code
        self.finished = time.time()
        self.image = None
        self.trimap = None
        if state == DONE:
            self.emit("done", width=self.width, height=self.height,
                      seconds=round(self.finished - (self.started or self.created), 3))
        elif state == FAILED:
            self.emit("failed", error=error, code=code)
        else:
            self.emit("cancelled", error=error or "cancelled")

    def drop_previews(self) -> None:
        """Forget preview images: they only matter live, and would pile up in memory."""
        with self._lock:
            for event in self.events:
                event.pop("preview", None)

    def summary(self) -> Dict[str, Any]:
        """JSON-ready description of the job (no pixel data)."""
        return {
            "job": self.id, "state": self.state, "steps": self.steps, "seed": self.seed, "samples": self.samples,
            "width": self.width, "height": self.height, "error": self.error,
            "code": self.error_code, "created": self.created, "started": self.started,
            "finished": self.finished, "events": len(self.events),
        }


def _trimap_warning(image: Any, trimap: Any) -> Optional[str]:
    """A warning for a trimap the matte cannot get right (unexplained colours), or None.
    Only a warning: a failed check never fails the job."""
    try:
        from trimap.check import describe_unexplained, unexplained_region

        box = unexplained_region(image, trimap)
    except Exception:  # noqa: BLE001 - the check is advice, the refine goes on
        log.debug("trimap check failed", exc_info=True)
        return None
    return describe_unexplained(box) if box is not None else None


class JobManager:
    """Bounded FIFO of refine jobs served one at a time by a single worker thread."""

    def __init__(self, engine: Any, max_queue: int = 8, keep_finished: int = 32,
                 finished_ttl: float = 600.0, device_lock: Optional[threading.Lock] = None) -> None:
        self.engine = engine
        self.max_queue = max_queue
        self.keep_finished = keep_finished
        self.finished_ttl = finished_ttl
        self.device_lock = device_lock or threading.Lock()
        self.jobs: Dict[str, Job] = {}
        self.completed = 0
        self._pending: Deque[Job] = collections.deque()
        self._running: Optional[Job] = None
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="diffmatte-worker", daemon=True)
        self._thread.start()

    # -- client side --------------------------------------------------------------------
    def submit(self, job: Job) -> int:
        """Queue ``job``; return how many jobs are ahead of it."""
        with self._cond:
            if self._closing:
                raise ShuttingDown("the service is shutting down")
            if len(self._pending) >= self.max_queue:
                raise QueueFull(f"the queue is full ({self.max_queue} jobs waiting); retry later")
            self._prune_locked()
            ahead = len(self._pending) + (1 if self._running is not None else 0)
            self.jobs[job.id] = job
            self._pending.append(job)
            job.emit("queued", position=ahead)
            self._cond.notify_all()
        return ahead

    def get(self, job_id: str) -> Optional[Job]:
        with self._cond:
            return self.jobs.get(job_id)

    def cancel(self, job_id: str, reason: str = "cancelled by client") -> Optional[Job]:
        """Cancel a queued or running job; finished jobs are left as they are."""
        with self._cond:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            if job.state == QUEUED:
                self._pending.remove(job)
                job.finish(CANCELLED, reason)
                self._renumber_locked()
            elif job.state == RUNNING:
                job.cancel_event.set()
            return job

    def forget(self, job_id: str) -> Optional[Job]:
        """Cancel if needed and drop the job and its result from memory.

        A running job is only flagged here; the worker drops it when it stops.
        """
        job = self.cancel(job_id, "deleted by client")
        if job is not None:
            job.forgotten = True
            if job.terminal:
                with self._cond:
                    self.jobs.pop(job_id, None)
        return job

    def status(self) -> Dict[str, Any]:
        with self._cond:
            return {
                "queued": len(self._pending), "max_queue": self.max_queue,
                "running": self._running.id if self._running else None,
                "completed": self.completed, "known_jobs": len(self.jobs),
            }

    def shutdown(self, grace: float) -> None:
        """Refuse new jobs, cancel queued ones, let the running one finish for ``grace`` s."""
        with self._cond:
            self._closing = True
            while self._pending:
                self._pending.popleft().finish(CANCELLED, "the service is shutting down")
            running = self._running
            self._cond.notify_all()
        if running is not None:
            deadline = time.monotonic() + max(0.0, grace)
            while not running.terminal and time.monotonic() < deadline:
                time.sleep(0.05)
            if not running.terminal:
                running.cancel_event.set()
        self._thread.join(timeout=max(5.0, grace))

    # -- worker side --------------------------------------------------------------------
    def _renumber_locked(self) -> None:
        base = 1 if self._running is not None else 0
        for i, job in enumerate(self._pending):
            job.emit("queued", position=base + i)

    def _prune_locked(self) -> None:
        """Forget old finished jobs so results and events cannot pile up."""
        now = time.time()
        finished = [j for j in self.jobs.values() if j.terminal]
        finished.sort(key=lambda j: j.finished or 0.0)
        excess = len(finished) - self.keep_finished
        for i, job in enumerate(finished):
            age = now - (job.finished or now)
            if i < excess or age > self.finished_ttl:
                del self.jobs[job.id]
            elif age > PREVIEW_TTL:
                job.drop_previews()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait(timeout=30.0)
                    self._prune_locked()
                if not self._pending:
                    return  # closing and nothing left
                job = self._pending.popleft()
                self._running = job
                job.state = RUNNING
                job.started = time.time()
                self._renumber_locked()
            try:
                self._run(job)
            except Exception:  # noqa: BLE001 - a dead worker would hang every later job
                log.exception("worker error on job %s", job.id)
                if not job.terminal:
                    job.finish(FAILED, "internal error in the service worker; see its log", "internal")
            finally:
                with self._cond:
                    self._running = None
                    self.completed += 1
                    if job.forgotten:
                        self.jobs.pop(job.id, None)
                    idle = not self._pending
                # Give cached device memory back between bursts so the GPU footprint of
                # an idle service does not creep up with each request.
                # Drop the worker's own reference before it idles: it would pin the last
                # job (result and events) for as long as the service stays quiet.
                del job
                if idle:
                    free_device_memory()

    def _run(self, job: Job) -> None:
        job.emit("started", width=job.width, height=job.height, steps=job.steps * job.samples)
        warning = _trimap_warning(job.image, job.trimap)
        if warning:
            job.emit("warning", message=warning)
        work = {"done": None, "total": None, "last": time.monotonic()}

        def on_work(done: int, total: int) -> None:
            if job.cancel_event.is_set():
                raise _CallbackCancel()
            work["done"], work["total"] = int(done), int(total)
            now = time.monotonic()
            if now - work["last"] >= WORK_EVENT_INTERVAL and done < total:
                work["last"] = now
                job.emit("work", done=int(done), total=int(total))

        def on_step(info: Any) -> None:
            if job.cancel_event.is_set():
                raise _CallbackCancel()
            index = int(getattr(info, "index", 0))
            total = int(getattr(info, "total", job.steps * job.samples))
            preview = None
            x0 = getattr(info, "x0", None)
            if job.preview and x0 is not None:
                png = imaging.preview_png(np.asarray(x0), job.preview_size)
                if png is not None:
                    preview = base64.b64encode(png).decode("ascii")
            t = getattr(info, "t", None)
            work["last"] = time.monotonic()
            job.emit("progress", step=index, total=total,
                     t=float(t) if isinstance(t, (int, float, np.number)) else None,
                     preview=preview, work_done=work["done"], work_total=work["total"])

        try:
            with self.device_lock:
                alpha = self._refine(job, on_step, on_work)
            png = imaging.alpha_to_png16(alpha)
            del alpha
        except Exception as exc:  # noqa: BLE001 - every failure becomes a job state
            self._fail(job, exc)
            return
        job.result = png
        job.finish(DONE)

    def _refine(self, job: Job, on_step: Callable[[Any], None],
                on_work: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
        ready = getattr(self.engine, "wait", None)
        if callable(ready):  # the model still loads in the background (diffmatte serve): the
            ready()         # job waits, and torch is not touched while another thread imports it
        torch = sys.modules.get("torch")
        kwargs = dict(steps=job.steps, seed=job.seed, callback=on_step, cancel=job.cancel_event)
        if job.samples != 1:  # engines (and test fakes) without averaging still serve samples=1
            kwargs["samples"] = job.samples
        if on_work is not None:
            kwargs["progress"] = on_work  # tile x step counts (Engine.refine's progress)
        if torch is not None:
            # Belt and braces against autograd graphs kept alive across requests, the
            # cause of the per-request GPU memory growth reported for DiffMatte.
            with torch.inference_mode():
                return self.engine.refine(job.image, job.trimap, **kwargs)
        return self.engine.refine(job.image, job.trimap, **kwargs)

    def _fail(self, job: Job, exc: Exception) -> None:
        if job.cancel_event.is_set() or isinstance(exc, (_CallbackCancel, Cancelled)):
            job.finish(CANCELLED, "cancelled by client")
        elif is_out_of_memory(exc):
            # Drop every reference to the failed step's tensors before freeing the cache.
            job.image = job.trimap = None
            if exc.__traceback__ is not None:
                traceback.clear_frames(exc.__traceback__)
            exc.__traceback__ = None
            free_device_memory()
            job.finish(FAILED, (
                f"out of memory on {self._device_name()} while refining a "
                f"{job.width}x{job.height} image; the service freed memory and keeps "
                "serving: try a smaller image or fewer megapixels"), "out_of_memory")
            log.warning("job %s: out of memory", job.id)
        elif _is_input_error(exc):
            job.finish(FAILED, f"invalid input: {exc}", "invalid_input")
        else:
            log.exception("job %s failed", job.id, exc_info=exc)
            job.finish(FAILED, f"engine error: {type(exc).__name__}: {exc}", "engine_error")

    def _device_name(self) -> str:
        try:
            return str(self.engine.info().get("device", "the device"))
        except Exception:  # noqa: BLE001
            return "the device"


def _is_input_error(exc: BaseException) -> bool:
    """True only for the engine's own verdict on its input (diffmatte.errors.InputError). Any
    other ValueError out of a refine (numpy's "zero-size array ...", a shape bug) is the
    engine's fault, not the client's (issue #25)."""
    from diffmatte.errors import InputError

    return isinstance(exc, InputError)
