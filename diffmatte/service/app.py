"""The HTTP API of the engine service (FastAPI), built around an injected engine.

``create_app(engine, token)`` returns an ASGI application; ``server.serve`` runs it.
Images travel as base64 PNG inside JSON bodies, results come back as PNG bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Tuple

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import imaging
from .errors import InvalidInput, ServiceError, Unavailable
from .gate import Gate
from .jobs import DONE, TERMINAL, Job, JobManager, QueueFull, ShuttingDown, free_device_memory, is_out_of_memory

API_VERSION = 1
MAX_STEPS = 1000  # the engine's own bound
MAX_EVENT_ID = 10**9  # far above any job's event count; bounds 'after' and Last-Event-ID
DEFAULT_SEED = 0


@dataclass
class ServiceConfig:
    """Limits and tunables of one service instance."""

    # A 45 MP camera photo (8256 x 5504) as PNG is ~60-140 MB; the engine's memory planner,
    # not these limits, bounds the refine itself (docs/TILING.md).
    max_body_mb: float = 256.0
    max_megapixels: float = 64.0
    # The trimap routes (mask, scribbles) run whole-image numpy / scipy work at about 60 bytes
    # a pixel: a 62 KB PNG of 7999 x 7999 zeros took 88 s and 3.6 GB there (issue #25). Their
    # images are refused from the header above this size, before any pixel is decoded.
    max_trimap_megapixels: float = 16.0
    # Host / Origin names served besides loopback ones ("*": any, for a service bound to all
    # interfaces on purpose); see gate.py. serve() adds a non-loopback --host itself.
    allowed_hosts: Tuple[str, ...] = ()
    max_queue: int = 8
    keep_finished: int = 32
    finished_ttl: float = 600.0
    heartbeat: float = 0.5
    shutdown_grace: float = 10.0
    sam_checkpoint: Any = None  # path, None (trimap.find_checkpoint) or a built SAM model
    sam_model_type: Optional[str] = None  # None: guessed from the file name, else vit_b
    sam_cache: int = 4
    device_wait: float = 300.0
    # Connection and request limits (see guard.py and gate.py for why each exists).
    max_connections: int = 256
    max_connections_per_client: int = 128
    head_timeout: float = 10.0  # seconds to deliver a complete request head
    keep_alive: float = 5.0  # idle seconds between requests on one connection
    max_active_requests: int = 64  # requests with the token in progress (event streams count)
    body_timeout: float = 30.0  # longest pause while a body is uploaded

    @property
    def max_body(self) -> int:
        return int(self.max_body_mb * 2**20)

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1e6)

    @property
    def max_trimap_pixels(self) -> int:
        return int(min(self.max_trimap_megapixels, self.max_megapixels) * 1e6)


# -- request bodies ---------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefineBody(_Body):
    image: str = Field(description="base64 image (PNG, JPEG, WEBP, TIFF or BMP)")
    trimap: str = Field(description="base64 greyscale trimap with values 0/128/255")
    steps: int = Field(10, ge=1, le=MAX_STEPS)
    # Seed 0 unless the request names one (null counts as "none"): the same request
    # gives the same matte, click after click; another seed asks for another draw.
    seed: Optional[int] = Field(0, ge=0, le=2**32 - 1)
    samples: int = Field(1, ge=1, le=8, description="average this many draws (seeds seed, seed+1, ...)")
    preview: bool = True
    preview_size: int = Field(256, ge=16, le=1024)
    quantize_trimap: bool = False


class MaskBody(_Body):
    mask: str
    band: Optional[float] = Field(None, ge=0, le=1024)
    adaptive: bool = True
    image: Optional[str] = Field(None, description="optional base64 image: the band then follows the image")
    edge: str = Field("exact", pattern="^(exact|rough|auto)$",
                      description="exact: the outline is the subject's edge (SAM, layer mask); rough: the mask "
                                  "is a region around the subject (lasso, rectangle): its edge is found inside "
                                  "it; auto: decided from the image. rough and auto need the image")


class ScribbleBody(_Body):
    image: str
    fg: str
    bg: str
    unknown: Optional[str] = None
    band: Optional[float] = Field(None, ge=0, le=1024)


class SamEmbedBody(_Body):
    image: str


class CutoutBody(_Body):
    """``/v1/cutout``: the edge controls and the decontaminated cut-out of a finished matte
    (diffmatte.finish.cutout.finish, the path the CLI's --rgba takes); no engine run."""

    image: Optional[str] = Field(None, description="base64 image; needed for output 'rgba'")
    alpha: str = Field(description="base64 grey matte (8 or 16 bit), the engine's result")
    edges: Dict[str, float] = Field(default_factory=dict, description="shift / feather / contrast / smooth")
    decontaminate: float = Field(1.0, ge=0, le=1)
    premultiplied: bool = False
    output: str = Field("rgba", pattern="^(rgba|alpha)$")


class SamBody(_Body):
    image: Optional[str] = None
    image_id: Optional[str] = Field(None, max_length=128)
    points: List[Tuple[float, float]] = Field(default_factory=list, max_length=256)
    labels: List[int] = Field(default_factory=list, max_length=256)
    box: Optional[Tuple[float, float, float, float]] = None
    band: Optional[float] = Field(None, ge=0, le=1024)
    output: str = Field("trimap", pattern="^(trimap|mask)$")


# -- helpers ----------------------------------------------------------------------------
def _png_response(data: bytes, headers: Optional[Dict[str, str]] = None) -> Response:
    return Response(content=data, media_type="image/png", headers=headers)


def _process_memory() -> Dict[str, Any]:
    """Resident memory of this process, and device memory if torch uses CUDA."""
    out: Dict[str, Any] = {"rss_bytes": None}
    try:
        with open("/proc/self/statm", "rb") as fh:
            out["rss_bytes"] = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        try:
            import resource
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out["peak_rss_bytes"] = peak if sys.platform == "darwin" else peak * 1024
        except Exception:  # noqa: BLE001 - platform without resource
            pass
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                free, total = torch.cuda.mem_get_info()
                out["cuda"] = {
                    "allocated_bytes": int(torch.cuda.memory_allocated()),
                    "reserved_bytes": int(torch.cuda.memory_reserved()),
                    "free_bytes": int(free), "total_bytes": int(total),
                }
        except Exception:  # noqa: BLE001 - info must not fail because of the driver
            pass
    return out


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            position = err.get("loc", ("body", "?"))[-1]
            reason = (err.get("ctx") or {}).get("error", "invalid")
            parts.append(f"the body is not valid JSON ({reason} at character {position})")
            continue
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        if not loc and err.get("type") in ("model_attributes_type", "dict_type", "model_type", "missing"):
            parts.append("the body must be a JSON object (Content-Type: application/json)")
            continue
        where = f"field '{'.'.join(loc)}'" if loc else "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _sse(event: Dict[str, Any]) -> bytes:
    return f"id: {event['id']}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


class _Sam:
    """Lazily built ``trimap.SamPrompter`` plus decoded images by id, for re-clicks.

    The prompter caches embeddings by image content itself; keeping the decoded
    image here lets a front end send only ``image_id`` with each further click.
    """

    def __init__(self, config: ServiceConfig, device: str) -> None:
        self.config = config
        self.device = device
        self.prompter: Any = None
        self.images: "OrderedDict[str, Any]" = OrderedDict()
        self.lock = threading.Lock()
        self.load_lock = threading.Lock()

    def load(self) -> Any:
        """Return the prompter, building it on first use (503 when impossible)."""
        with self.load_lock:
            if self.prompter is not None:
                return self.prompter
            trimap = _import_trimap()
            if not hasattr(trimap, "SamPrompter"):
                raise Unavailable("the installed trimap package has no SamPrompter")
            try:
                self.prompter = trimap.SamPrompter(
                    self.config.sam_checkpoint, model_type=self.config.sam_model_type,
                    device=self.device, cache_size=self.config.sam_cache)
            except (ImportError, OSError, ValueError, RuntimeError, KeyError) as exc:
                raise Unavailable(f"SAM is not available: {exc}. Get the checkpoint once with the "
                                  "editor's 'Download SAM' button, `diffmatte download sam-vit-b --dest "
                                  "<config dir>/sam` or `python3 installer/install.py --sam vit_b`; or start "
                                  "the service with --sam-checkpoint PATH") from None
            return self.prompter

    def remember(self, data: bytes, image: Any) -> str:
        key = hashlib.sha256(data).hexdigest()
        with self.lock:
            self.images[key] = image
            self.images.move_to_end(key)
            while len(self.images) > self.config.sam_cache:
                self.images.popitem(last=False)
        return key

    def recall(self, key: str) -> Any:
        with self.lock:
            image = self.images.get(key)
            if image is not None:
                self.images.move_to_end(key)
            return image


def _import_trimap() -> Any:
    try:
        import trimap  # noqa: PLC0415 - lazy on purpose: optional, concurrently developed
    except ImportError as exc:
        raise Unavailable(f"trimap generation is not available: cannot import 'trimap' ({exc})") from None
    return trimap


def _sam_device(info: Dict[str, Any]) -> str:
    device = str(info.get("device", "cpu"))
    return device if device.split(":")[0] in ("cpu", "cuda", "mps") else "cpu"


class Service:
    """State shared by the endpoints: engine, queue, limits, SAM and shutdown hook."""

    def __init__(self, engine: Any, config: ServiceConfig) -> None:
        self.engine = engine
        self.config = config
        self.device_lock = threading.Lock()
        self.manager = JobManager(engine, max_queue=config.max_queue,
                                  keep_finished=config.keep_finished,
                                  finished_ttl=config.finished_ttl,
                                  device_lock=self.device_lock)
        device = str(self.engine_info().get("device", "cpu"))
        self.sam = _Sam(config, device if device.split(":")[0] in ("cpu", "cuda", "mps") else "cpu")
        if hasattr(engine, "on_ready"):  # loading in the background: SAM follows its device
            engine.on_ready(lambda e: setattr(self.sam, "device", _sam_device(self.engine_info())))
        self.request_shutdown: Optional[Callable[[], None]] = None
        self.connection_stats: Optional[Callable[[], Dict[str, int]]] = None  # set by the server
        self.closed = False

    def close(self) -> None:
        """Cancel queued jobs, give the running one ``shutdown_grace`` seconds."""
        if not self.closed:
            self.closed = True
            self.manager.shutdown(self.config.shutdown_grace)

    def engine_info(self) -> Dict[str, Any]:
        try:
            info = self.engine.info()
            return dict(info) if isinstance(info, dict) else {"info": str(info)}
        except Exception as exc:  # noqa: BLE001
            return {"error": f"{type(exc).__name__}: {exc}"}

    def decode_rgb(self, b64: str, field: str, max_pixels: Optional[int] = None) -> Tuple[bytes, Any]:
        data = imaging.b64decode_field(b64, field)
        if max_pixels:
            return data, imaging.decode_rgb(data, field, max_pixels, "--max-trimap-megapixels")
        return data, imaging.decode_rgb(data, field, self.config.max_pixels)

    def decode_grey(self, b64: str, field: str, max_pixels: Optional[int] = None) -> Any:
        data = imaging.b64decode_field(b64, field)
        if max_pixels:
            return imaging.decode_grey(data, field, max_pixels, "--max-trimap-megapixels")
        return imaging.decode_grey(data, field, self.config.max_pixels)

    def with_device(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` while holding the device, so SAM never overlaps a refine job."""
        if not self.device_lock.acquire(timeout=self.config.device_wait):
            raise Unavailable(f"the device stayed busy for {self.config.device_wait:.0f} s; retry later")
        try:
            return fn()
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            message = f"out of memory on {self.sam.device}: {exc}"
        finally:
            self.device_lock.release()
        free_device_memory()
        raise Unavailable(message + "; memory was freed, retry with a smaller image")


def _check_trimap_output(result: Any, what: str) -> bytes:
    import numpy as np
    arr = np.asarray(result)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float64) * (255.0 if arr.max(initial=0) <= 1.0 else 1.0)),
                      0, 255).astype(np.uint8)
    if arr.ndim != 2:
        raise ServiceError(f"{what} returned an array of shape {arr.shape}, expected H x W", 500)
    return imaging.encode_png(arr)


def build_fastapi(service: Service) -> FastAPI:
    """Create the FastAPI application with every route bound to ``service``."""
    app = FastAPI(title="Refine Matte engine service", version=str(API_VERSION),
                  docs_url=None, redoc_url=None, openapi_url="/v1/openapi.json")

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in detail:
            detail = "the body could not be parsed: send UTF-8 JSON with Content-Type: application/json"
        return JSONResponse({"detail": detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    # -- info ---------------------------------------------------------------------------
    @app.get("/v1/info")
    def info() -> Dict[str, Any]:
        cfg = service.config
        return {
            "service": "refine-matte", "api": API_VERSION, "version": service_version(),
            "pid": os.getpid(), "engine": service.engine_info(), "memory": _process_memory(),
            "queue": service.manager.status(),
            "connections": service.connection_stats() if service.connection_stats else None,
            "limits": {"max_body_bytes": cfg.max_body, "max_megapixels": cfg.max_megapixels,
                       "max_queue": cfg.max_queue, "max_steps": MAX_STEPS},
            "sam": {"checkpoint": str(cfg.sam_checkpoint) if isinstance(cfg.sam_checkpoint, (str, os.PathLike)) else None,
                    "loaded": service.sam.prompter is not None},
        }

    @app.post("/v1/shutdown")
    def shutdown() -> Dict[str, Any]:
        if service.request_shutdown is None:
            raise ServiceError("this service cannot be shut down over HTTP", 409)
        service.request_shutdown()
        return {"shutting_down": True}

    # -- refine jobs ----------------------------------------------------------------------
    @app.post("/v1/jobs/refine", status_code=202)
    def submit_refine(body: RefineBody) -> Dict[str, Any]:
        _, image = service.decode_rgb(body.image, "image")
        tri = service.decode_grey(body.trimap, "trimap")
        imaging.check_same_size(image, tri, "image", "trimap")
        tri = imaging.check_trimap(tri, "trimap", body.quantize_trimap)
        seed = DEFAULT_SEED if body.seed is None else body.seed
        job = Job(image, tri, body.steps, seed, body.preview, body.preview_size, samples=body.samples)
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
            return _png_response(job.result)
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

    # -- trimaps --------------------------------------------------------------------------
    @app.post("/v1/trimap/mask")
    def trimap_mask(body: MaskBody) -> Response:
        tm = _import_trimap()
        limit = service.config.max_trimap_pixels
        mask = service.decode_grey(body.mask, "mask", limit)
        image = None
        if body.image is not None:
            _, image = service.decode_rgb(body.image, "image", limit)
            imaging.check_same_size(image, mask, "image", "mask")
        if body.edge != "exact" and image is None:
            raise InvalidInput(f"trimap from mask: edge={body.edge!r} needs the image (send image=...)")
        try:
            if body.edge == "exact":
                result, edge = tm.from_mask(mask, band=body.band, adaptive=body.adaptive, image=image), "exact"
            else:
                result, edge = tm.from_selection(mask, image, band=body.band, adaptive=body.adaptive,
                                                 edge=body.edge)
        except ValueError as exc:
            raise InvalidInput(f"trimap from mask: {exc}") from None
        return _png_response(_check_trimap_output(result, "trimap.from_mask"), {"X-Trimap-Edge": edge})

    @app.post("/v1/trimap/scribbles")
    def trimap_scribbles(body: ScribbleBody) -> Response:
        tm = _import_trimap()
        limit = service.config.max_trimap_pixels
        _, image = service.decode_rgb(body.image, "image", limit)
        maps = {}
        for name in ("fg", "bg", "unknown"):
            value = getattr(body, name)
            if value is None:
                maps[name] = None
                continue
            arr = service.decode_grey(value, name, limit)
            imaging.check_same_size(image, arr, "image", name)
            maps[name] = arr > 127
        try:
            # Strokes go through the rough-input path (colour models + graph cut): with a
            # few strokes the random walker left most of a photo unknown (issue #27).
            result = tm.from_region(image, None, band=body.band, fg=maps["fg"], bg=maps["bg"],
                                    unknown=maps["unknown"])
        except ValueError as exc:
            raise InvalidInput(f"trimap from scribbles: {exc}") from None
        return _png_response(_check_trimap_output(result, "trimap.from_region"))

    @app.post("/v1/sam/embed")
    def sam_embed(body: SamEmbedBody) -> Dict[str, Any]:
        data, image = service.decode_rgb(body.image, "image")
        prompter = service.sam.load()
        key = service.sam.remember(data, image)
        service.with_device(lambda: prompter.set_image(image))
        return {"image_id": key, "width": int(image.shape[1]), "height": int(image.shape[0])}

    @app.post("/v1/sam/trimap")
    def sam_trimap(body: SamBody) -> Response:
        if body.image is not None:
            data, image = service.decode_rgb(body.image, "image")
            service.sam.remember(data, image)
        elif body.image_id is not None:
            image = service.sam.recall(body.image_id)
            if image is None:
                raise ServiceError(f"unknown or evicted image_id '{body.image_id}'; send the image again", 404)
        else:
            raise InvalidInput("send 'image' or an 'image_id' from /v1/sam/embed")
        prompter = service.sam.load()
        points = [list(p) for p in body.points] or None
        labels = list(body.labels) or None
        box = list(body.box) if body.box is not None else None

        def run() -> Any:
            if body.output == "mask":
                logits, _ = prompter.predict_logits(image, points=points, labels=labels, box=box)
                import numpy as np
                return (np.asarray(logits) > 0).astype(np.uint8) * 255
            return prompter.trimap(image, points=points, labels=labels, box=box, band=body.band)

        try:
            result = service.with_device(run)
        except ValueError as exc:
            raise InvalidInput(f"SAM: {exc}") from None
        return _png_response(_check_trimap_output(result, f"SamPrompter.{body.output}"))

    @app.post("/v1/cutout")
    def cutout(body: CutoutBody) -> Response:
        import numpy as np

        from diffmatte.finish.cutout import finish
        from diffmatte.finish.edges import EdgeParams

        try:
            edges = EdgeParams.from_dict(body.edges)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if body.image is None and body.output == "rgba":
            raise InvalidInput("output 'rgba' needs the 'image'")
        alpha = imaging.decode_alpha(imaging.b64decode_field(body.alpha, "alpha"), "alpha",
                                     service.config.max_pixels)
        if body.output == "alpha":
            from diffmatte.finish.edges import apply_edges

            final = apply_edges(alpha, edges)
            return _png_response(imaging.encode_png(np.rint(final * 65535.0).astype(np.uint16)))
        _, image = service.decode_rgb(body.image, "image")
        imaging.check_same_size(image, alpha, "image", "alpha")
        _, rgba = finish(image, alpha, edges=edges,
                        decontaminate=body.decontaminate, premultiplied=body.premultiplied)
        return _png_response(imaging.encode_png(rgba))

    return app


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


def service_version() -> str:
    """Version of the diffmatte package, or '0' while it has none."""
    try:
        from diffmatte import __version__  # noqa: PLC0415
        return str(__version__)
    except Exception:  # noqa: BLE001 - any import problem just means "unknown"
        return "0"


def create_app(engine: Any, token: str, config: Optional[ServiceConfig] = None) -> Tuple[Any, Service]:
    """Build the ASGI app around ``engine``; return ``(asgi_app, service)``.

    ``engine`` needs ``refine(image, trimap, steps, seed, callback, cancel)`` and
    ``info()``; tests may pass any object with those methods.
    """
    config = config or ServiceConfig()
    service = Service(engine, config)
    app = build_fastapi(service)
    return Gate(app, token, config.max_body, max_active=config.max_active_requests,
                body_timeout=config.body_timeout, hosts=config.allowed_hosts), service


__all__ = ["ServiceConfig", "Service", "create_app", "API_VERSION"]
