"""The refine job queue: one worker thread owns the device, jobs wait their turn.

A :class:`~diffmatte.service.job.Job` carries an append-only event list (queued, started,
progress, done / failed / cancelled) that HTTP handlers stream to clients
(``job_routes``); the worker here runs the engine and emits those events.
"""

from __future__ import annotations

import base64
import collections
import logging
import sys
import threading
import time
import traceback
from typing import Any, Callable, Deque, Dict, Optional

import numpy as np

from ..errors import Cancelled
from . import imaging
from .device_memory import free_device_memory, is_out_of_memory
from .job import CANCELLED, DONE, FAILED, PREVIEW_TTL, QUEUED, RUNNING, Job

log = logging.getLogger("diffmatte.service")

# A "work" event (tiles x steps done, from the engine's progress) is sent when this many
# seconds passed without an event, so that a long step of a large image still moves the
# client's progress bar; every "progress" event carries the same counts. A quarter second:
# with a whole second, reports just under a second apart reached the docker two seconds
# apart (the 24 MP solve's, issue #23).
WORK_EVENT_INTERVAL = 0.25


class QueueFull(Exception):
    """Raised by :meth:`JobManager.submit` when the bounded queue is full."""


class ShuttingDown(Exception):
    """Raised by :meth:`JobManager.submit` once shutdown has begun."""


class _CallbackCancel(Exception):
    """Raised from the step callback to stop an engine that ignores ``cancel``."""


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
        if job.widen_band:  # likewise: only a rough-input job asks for the second pass
            kwargs["widen_band"] = True
            if job.band is not None:  # the user's band: the widening grows the band by it
                kwargs["band"] = job.band
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
