"""A trimap route's answer with its progress: for a body with ``"progress": true`` the
mask and scribble routes answer with server-sent events instead of the PNG (issue #23: a
24 MP trimap from a rough selection takes 15 s or more, and the docker's bar sat still).

Events, as ``data:`` lines like a refine job's (``job_routes``):

- ``{"type": "work", "done": d, "total": 1000}``: thousandths of the trimap done (decoding
  the images, then ``trimap.progress``), sent when they change, at most every ``POLL`` s;
- ``{"type": "done", "trimap": base64 PNG, "headers": {"X-Trimap-Edge": ...}}``: the
  PNG and the headers the plain answer carries;
- ``{"type": "failed", "status": 413, "detail": ...}``: what the plain answer's error
  would have been (the client raises the same error).

A ``: keep-alive`` comment at least every ``heartbeat`` s lets the client check its cancel.
When the client goes away, the computation stops at the next progress report.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from typing import Any, AsyncIterator, Callable, Dict, Tuple

from fastapi.responses import StreamingResponse

from .errors import ServiceError

log = logging.getLogger("diffmatte.service")

#: how often the stream looks at the computation's progress (seconds)
POLL = 0.1
#: (PNG bytes, headers) of a finished trimap; ``check(fraction)`` is its progress listener
Compute = Callable[[Callable[[float], None]], Tuple[bytes, Dict[str, str]]]


class _Stopped(Exception):
    """Raised from the progress listener once the client has gone."""


class _Run:
    """One trimap computation on its own thread, and what the stream reads of it."""

    def __init__(self, compute: Compute) -> None:
        self.fraction = 0.0
        self.outcome: Dict[str, Any] = {}
        self.stop = threading.Event()
        self.done = threading.Event()
        self._compute = compute
        threading.Thread(target=self._run, name="diffmatte-trimap", daemon=True).start()

    def _check(self, fraction: float) -> None:
        if self.stop.is_set():
            raise _Stopped()
        self.fraction = max(self.fraction, float(fraction))

    def _run(self) -> None:
        try:
            png, headers = self._compute(self._check)
            self.outcome = {"type": "done", "trimap": base64.b64encode(png).decode("ascii"), "headers": headers}
        except _Stopped:
            self.outcome = {"type": "failed", "status": 499, "detail": "the client went away"}
        except ServiceError as exc:
            self.outcome = {"type": "failed", "status": exc.status, "detail": exc.message}
        except Exception as exc:  # noqa: BLE001 - the plain route would have answered 500
            log.exception("trimap computation failed")
            self.outcome = {"type": "failed", "status": 500, "detail": f"{type(exc).__name__}: {exc}"}
        finally:
            self.done.set()


def progress_response(compute: Compute, heartbeat: float) -> StreamingResponse:
    """Run ``compute`` on a thread and stream its progress and result (see the module)."""
    return StreamingResponse(_events(_Run(compute), heartbeat), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(run: _Run, heartbeat: float) -> AsyncIterator[bytes]:
    sent, quiet = -1, 0.0
    try:
        while True:
            finished = run.done.is_set()
            done = min(999, int(run.fraction * 1000))
            if done > sent:
                sent, quiet = done, 0.0
                yield _sse({"type": "work", "done": done, "total": 1000})
            if finished:
                yield _sse(run.outcome)
                return
            if quiet >= heartbeat:
                quiet = 0.0
                yield b": keep-alive\n\n"
            await asyncio.sleep(POLL)
            quiet += POLL
    finally:
        run.stop.set()  # the client went away (or the stream ended): stop at the next report


def _sse(event: Dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
