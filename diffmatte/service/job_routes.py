"""The refine-job routes (submit, status, events as SSE, result, cancel, delete)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, AsyncIterator, Dict

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse

from . import imaging
from .errors import ServiceError, Unavailable
from .job import DONE, TERMINAL, Job
from .jobs import QueueFull, ShuttingDown
from .schema import DEFAULT_SEED, MAX_EVENT_ID, RefineBody


def add_job_routes(app: FastAPI, service: Any) -> None:
    """Add the /v1/jobs routes, bound to ``service`` (an ``app.Service``)."""
    @app.post("/v1/jobs/refine", status_code=202)
    def submit_refine(body: RefineBody) -> Dict[str, Any]:
        _, image = service.decode_rgb(body.image, "image")
        tri = service.decode_grey(body.trimap, "trimap")
        imaging.check_same_size(image, tri, "image", "trimap")
        tri = imaging.check_trimap(tri, "trimap", body.quantize_trimap)
        seed = DEFAULT_SEED if body.seed is None else body.seed
        job = Job(image, tri, body.steps, seed, body.preview, body.preview_size, samples=body.samples,
                  widen_band=body.widen_band, band=body.band)
        try:
            ahead = service.manager.submit(job)
        except QueueFull as exc:
            raise ServiceError(str(exc), 429) from None
        except ShuttingDown as exc:
            raise Unavailable(str(exc)) from None
        return {"job": job.id, "position": ahead, "state": job.state,
                "events": f"/v1/jobs/{job.id}/events", "result": f"/v1/jobs/{job.id}/result"}

    def _job(job_id: str) -> Job:
        job = service.manager.get(job_id)
        if job is None:
            raise ServiceError(f"no job '{job_id[:64]}' (finished jobs are kept "
                               f"{service.config.finished_ttl:.0f} s)", 404)
        return job

    @app.get("/v1/jobs/{job_id}")
    def job_status(job_id: str, after: int = Query(-1, ge=-1, le=MAX_EVENT_ID)) -> Dict[str, Any]:
        job = _job(job_id)
        out = job.summary()
        if after >= 0:
            out["new_events"] = job.events_after(after)
        return out

    @app.get("/v1/jobs/{job_id}/events")
    async def job_events(job_id: str, request: Request,
                         after: int = Query(0, ge=0, le=MAX_EVENT_ID)) -> StreamingResponse:
        job = _job(job_id)
        last = request.headers.get("last-event-id")
        if last is not None and last.strip():
            after = max(after, parse_event_id(last, "the Last-Event-ID header"))
        return StreamingResponse(_stream(job, after, service.config.heartbeat),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/v1/jobs/{job_id}/result")
    def job_result(job_id: str) -> Response:
        job = _job(job_id)
        if job.state == DONE and job.result is not None:
            return imaging.png_response(job.result)
        if job.terminal:
            raise ServiceError(f"job {job.id} has no result: it {job.state} ({job.error})", 409)
        raise ServiceError(f"job {job.id} is still {job.state}; wait for its 'done' event", 409)

    @app.post("/v1/jobs/{job_id}/cancel")
    def job_cancel(job_id: str) -> Dict[str, Any]:
        job = service.manager.cancel(job_id)
        if job is None:
            _job(job_id)
        return {"job": job_id, "state": job.state if job else None}

    @app.delete("/v1/jobs/{job_id}")
    def job_delete(job_id: str) -> Dict[str, Any]:
        job = service.manager.forget(job_id)
        if job is None:
            _job(job_id)
        return {"job": job_id, "state": job.state if job else None}


def parse_event_id(text: str, what: str) -> int:
    """Parse an SSE event id: ASCII digits only, at most ``MAX_EVENT_ID`` (else 400).

    ``str.isdigit`` accepts superscripts and other scripts' digits that ``int`` then
    refuses, and ``int`` refuses more than 4300 digits: both used to end in a 500.
    """
    value = text.strip()
    if not _EVENT_ID.fullmatch(value) or int(value) > MAX_EVENT_ID:
        raise ServiceError(f"{what} must be an event id: ASCII digits, 0 to {MAX_EVENT_ID}", 400)
    return int(value)


_EVENT_ID = re.compile(r"[0-9]{1,10}")



async def _stream(job: Job, after: int, heartbeat: float) -> AsyncIterator[bytes]:
    """Yield the job's events as SSE from ``after`` on; stop once the job has ended.

    The stream ends after the terminal event, or at once when the job has already
    ended before ``after`` (a resumed stream of a finished job): it never idles on
    keep-alives for a job that can send nothing more.
    """
    loop = asyncio.get_running_loop()
    sent = after
    while True:
        for event in job.events_after(sent):
            sent = event["id"]
            yield _sse(event)
            if event["type"] in TERMINAL:
                return
        if job.ended_by(sent):
            return
        flag = asyncio.Event()
        count = job.add_waiter(loop, flag)
        try:
            if count <= sent:
                try:
                    await asyncio.wait_for(flag.wait(), timeout=heartbeat)
                except asyncio.TimeoutError:
                    yield b": keep-alive\n\n"
        finally:
            job.remove_waiter(loop, flag)


def _sse(event: Dict[str, Any]) -> bytes:
    return f"id: {event['id']}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
