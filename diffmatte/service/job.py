"""One refine job: its state, its append-only event list, and the streams waiting on it.

Waiting streams live on the asyncio loop, so :meth:`Job.emit` (called by the worker
thread) wakes them with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import imaging

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
TERMINAL = (DONE, FAILED, CANCELLED)
# Seconds a finished job keeps its progress previews for late readers of its stream.
PREVIEW_TTL = 30.0

class Job:
    """One refine request and everything clients may ask about it."""

    def __init__(self, image: np.ndarray, trimap: np.ndarray, steps: int, seed: Optional[int],
                 preview: bool, preview_size: int, samples: int = 1, widen_band: bool = False,
                 band: Optional[float] = None) -> None:
        self.id = secrets.token_hex(8)
        self.samples = int(samples)
        self.widen_band = bool(widen_band)  # rough input: the engine may widen the band and solve again
        self.band = None if band is None else float(band)  # the trimap's band radius: the widening's
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
            "widen_band": self.widen_band,
            "band": self.band,
            "width": self.width, "height": self.height, "error": self.error,
            "code": self.error_code, "created": self.created, "started": self.started,
            "finished": self.finished, "events": len(self.events),
        }
