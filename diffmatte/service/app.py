"""The HTTP API of the engine service (FastAPI), built around an injected engine.

``create_app(engine, token)`` returns an ASGI application; ``server.serve`` runs it.
Images travel as base64 PNG inside JSON bodies, results come back as PNG bytes.

Here: :class:`Service` (the state the routes share), the error handlers and the info /
shutdown routes. The routes of refine jobs are in ``job_routes``, those of trimaps, SAM
and cut-outs in ``image_routes``; settings and request bodies in ``schema``.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable, Dict, Optional, Tuple

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import imaging
from .device_memory import free_device_memory, is_out_of_memory
from .errors import ServiceError, Unavailable
from .gate import Gate
from .image_routes import add_image_routes
from .job_routes import add_job_routes
from .jobs import JobManager
from .sam import SamState, sam_device
from .schema import API_VERSION, MAX_STEPS, ServiceConfig


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
        self.sam = SamState(config, device if device.split(":")[0] in ("cpu", "cuda", "mps") else "cpu")
        if hasattr(engine, "on_ready"):  # loading in the background: SAM follows its device
            engine.on_ready(lambda e: setattr(self.sam, "device", sam_device(self.engine_info())))
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

    add_job_routes(app, service)
    add_image_routes(app, service)
    return app


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
