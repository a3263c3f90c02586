"""A job's event stream as the engine client reads it (stdlib only): the service's
server-sent events (``GET /v1/jobs/{id}/events``) parsed into dicts, and each event
handed to the caller's callbacks (:meth:`EngineClient.events` and :meth:`EngineClient.wait`)."""

import base64
import http.client
import json
from typing import Any, Callable, Dict, Iterator, List, Optional

from .client_errors import EngineError, JobCancelled

ProgressCallback = Callable[[int, int, Optional[bytes]], None]
TERMINAL = ("done", "failed", "cancelled")


def read_events(resp: Any, job_id: str, before_line: Callable[[], None]) -> Iterator[Dict[str, Any]]:
    """Yield the events of the open stream ``resp`` up to and including a terminal one;
    ``before_line()`` runs before each line is read (the client sends a cancel there)."""
    data_lines: List[str] = []
    while True:
        before_line()
        try:
            raw = resp.readline()
        except (OSError, http.client.HTTPException) as exc:
            raise EngineError("lost the event stream of job %s: %s" % (job_id, exc)) from None
        if not raw:
            raise EngineError("the service closed the event stream of job %s early" % job_id)
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("data:"):
            data_lines.append(line[5:].lstrip())
        elif not line and data_lines:
            event = json.loads("\n".join(data_lines))
            data_lines = []
            yield event
            if event.get("type") in TERMINAL:
                return


def dispatch(event: Dict[str, Any], on_progress: Optional[ProgressCallback],
             on_work: Optional[Callable[[int, int], None]],
             on_warning: Optional[Callable[[str], None]]) -> None:
    """Hand one event to the callbacks; raise :class:`JobCancelled` or :class:`EngineError`
    for a job that ended so. ``on_work(done, total)`` gets the engine's real work (encoder
    tiles and tile x step decodes) from every event that carries it."""
    kind = event.get("type")
    if on_work is not None:
        done, total = ((event.get("done"), event.get("total")) if kind == "work"
                       else (event.get("work_done"), event.get("work_total")))
        if kind in ("work", "progress") and isinstance(done, int) and isinstance(total, int) and total > 0:
            on_work(done, total)
    if kind == "warning" and on_warning is not None:
        on_warning(str(event.get("message") or ""))
    elif kind == "progress" and on_progress is not None:
        preview = event.get("preview")
        on_progress(int(event.get("step", 0)), int(event.get("total", 0)),
                    base64.b64decode(preview) if preview else None)
    elif kind == "cancelled":
        raise JobCancelled(event.get("error") or "cancelled", code="cancelled")
    elif kind == "failed":
        raise EngineError(event.get("error") or "the job failed", code=event.get("code"))
