"""A trimap request that follows the computation's progress (stdlib only): the body asks for
``"progress": true`` and the service answers with server-sent events (its
``service/trimap_stream.py``): work events, then the PNG and its headers. A 24 MP trimap
from a rough selection takes 15 s or more; the docker's bar follows it (issue #23).

A service older than the field answers 422 naming it: the request is sent again without it
(the trimap comes, without progress). Setting ``cancel_event`` closes the connection, which
stops the service's computation at its next progress report.
"""

import base64
import http.client
import json
import threading
from typing import Any, Callable, Dict, Optional, Tuple

from .client_errors import EngineError, JobCancelled, error_from, rejects_field
from .client_events import read_events

#: the headers of a trimap answer that the client reads
TRIMAP_HEADERS = ("X-Trimap-Edge", "X-Trimap-Warning")


def headers_of(resp: http.client.HTTPResponse) -> Dict[str, str]:
    """The trimap headers that ``resp`` carries."""
    return {name: resp.getheader(name) for name in TRIMAP_HEADERS if resp.getheader(name)}


def trimap_request(client: Any, path: str, payload: Dict[str, Any], on_warning: Optional[Callable[[str], None]],
                   on_work: Optional[Callable[[int, int], None]] = None,
                   cancel_event: Optional[threading.Event] = None) -> Tuple[bytes, Dict[str, str]]:
    """A trimap route's PNG and headers from ``client`` (an EngineClient); its
    ``X-Trimap-Warning`` (the input gave the segmentation too little to go on) goes to
    ``on_warning``. With ``on_work(done, total)`` the service reports the computation's
    progress; setting ``cancel_event`` then stops it and raises ``JobCancelled``."""
    if on_work is not None:
        data, headers = trimap_with_progress(client, path, payload, on_work, cancel_event)
    else:
        data, resp = client._exchange("POST", path, payload, None)
        headers = headers_of(resp)
    note = headers.get("X-Trimap-Warning")
    if note and on_warning is not None:
        on_warning(note)
    return data, headers


def trimap_with_progress(client: Any, path: str, payload: Dict[str, Any], on_work: Callable[[int, int], None],
                         cancel_event: Optional[threading.Event] = None) -> Tuple[bytes, Dict[str, str]]:
    """POST ``payload`` to the trimap route ``path`` of ``client`` (an EngineClient) with
    progress: ``on_work(done, total)`` as the service reports it; (PNG, trimap headers)."""
    try:
        return _stream(client, path, dict(payload, progress=True), on_work, cancel_event)
    except EngineError as exc:
        if rejects_field(exc, "progress"):  # an engine older than the plugin
            data, resp = client._exchange("POST", path, payload, None)
            return data, headers_of(resp)
        raise


def _stream(client: Any, path: str, payload: Dict[str, Any], on_work: Callable[[int, int], None],
            cancel_event: Optional[threading.Event]) -> Tuple[bytes, Dict[str, str]]:
    body = json.dumps(payload).encode("utf-8")
    conn = client._connection(None)
    try:
        try:
            conn.request("POST", path, body=body, headers=client._headers(
                {"Content-Type": "application/json", "Accept": "text/event-stream"}))
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise EngineError("request POST %s failed: %s" % (path, exc)) from None
        if resp.status >= 400:
            raise error_from(resp.status, resp.read())
        if not (resp.getheader("Content-Type") or "").startswith("text/event-stream"):
            return resp.read(), headers_of(resp)  # a service that answers with the PNG itself

        def cancel_if_asked() -> None:
            if cancel_event is not None and cancel_event.is_set():
                raise JobCancelled("trimap cancelled", code="cancelled")

        for event in read_events(resp, "trimap", cancel_if_asked):
            kind = event.get("type")
            if kind == "work" and isinstance(event.get("done"), int) and isinstance(event.get("total"), int):
                on_work(event["done"], event["total"])
            elif kind == "done":
                return base64.b64decode(event.get("trimap") or ""), dict(event.get("headers") or {})
            elif kind == "failed":
                status = int(event.get("status") or 500)
                raise error_from(status, json.dumps({"detail": event.get("detail")}).encode("utf-8"))
        raise EngineError("the service ended the trimap stream without a result")
    finally:
        conn.close()
