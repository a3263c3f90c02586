"""``diffmatte serve``: run the local engine service (registered by diffmatte/cli.py)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import urllib.error
import urllib.request
from typing import Any, Optional


def register(subparsers: Any) -> None:
    """Add the ``serve`` sub-command to the ``diffmatte`` parser."""
    parser = subparsers.add_parser(
        "serve", help="run the local engine service shared by the plugin, editor and batch tools",
        description="Load the model once and serve refine / trimap requests over HTTP on "
                    "loopback. The port and the access token are published in the config "
                    "directory (REFINE_MATTE_CONFIG_DIR overrides it).")
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``serve`` (shared with ``python -m diffmatte.service``)."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; anything else is exposed to the network)")
    parser.add_argument("--port", type=int, default=0,
                        help="TCP port (default 0: a free port, published in service.json)")
    parser.add_argument("--weights", default="default", help="checkpoint path or 'default'")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    from ..cli_options import add_prior_solver_arg

    add_prior_solver_arg(parser)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                        help="inference precision (default auto: bf16 for this project's network models "
                             "on a CPU with AVX512-BF16 / AMX, else fp32; fp16 needs CUDA)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for inference (default: torch's choice); 1 avoids "
                             "thrashing on a busy machine")
    parser.add_argument("--max-queue", type=int, default=8, help="refine jobs allowed to wait (default 8)")
    parser.add_argument("--max-megapixels", type=float, default=64.0,
                        help="largest image accepted, in megapixels (default 64)")
    parser.add_argument("--max-trimap-megapixels", type=float, default=25.0,
                        help="largest image the trimap routes (mask, scribbles) accept, in megapixels "
                             "(default 25: a 6000 x 4000 photo; they need about 60 bytes a pixel)")
    parser.add_argument("--max-body-mb", type=float, default=256.0,
                        help="largest request body in MiB (default 256)")
    parser.add_argument("--sam-checkpoint", default=None, help="SAM checkpoint for point/box prompts")
    parser.add_argument("--sam-model-type", default=None, choices=["vit_b", "vit_l", "vit_h"],
                        help="SAM model type (default: guessed from the file name, else vit_b)")
    parser.add_argument("--shutdown-grace", type=float, default=10.0,
                        help="seconds a running job may take to finish on shutdown before it is cancelled")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def _already_running() -> Optional[str]:
    """Return the URL of a live service published in the config dir, if any."""
    from . import config as cfgfiles

    data = cfgfiles.read_service_file()
    if not data:
        return None
    try:
        token = (cfgfiles.config_dir() / cfgfiles.TOKEN_FILE).read_text(encoding="ascii").strip()
        url = f"http://{data['host']}:{int(data['port'])}"
        req = urllib.request.Request(url + "/v1/info", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=2.0) as resp:
            json.loads(resp.read())
        return url
    except (OSError, KeyError, ValueError, TypeError, urllib.error.URLError):
        return None


def run(args: argparse.Namespace) -> int:
    """Entry point of ``diffmatte serve``; returns the process exit code."""
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name, value, low in (("--max-queue", args.max_queue, 1), ("--max-megapixels", args.max_megapixels, 0.001),
                             ("--max-trimap-megapixels", args.max_trimap_megapixels, 0.001),
                             ("--max-body-mb", args.max_body_mb, 0.001)):
        if value < low:
            sys.stderr.write(f"error: {name} must be at least {low}\n")
            return 2
    running = _already_running()
    if running:
        sys.stderr.write(f"error: a Refine Matte service already runs at {running}; "
                         "stop it first (POST /v1/shutdown) or use another REFINE_MATTE_CONFIG_DIR\n")
        return 3

    from .app import ServiceConfig
    from .server import serve

    def load() -> Any:
        _wait_until_listening()  # the web server first: health checks answer within a second
        import diffmatte  # noqa: PLC0415 - heavy engine import only when actually serving

        engine = diffmatte.load_engine(weights=args.weights, device=args.device, precision=args.precision,
                                       prior_solver=args.prior_solver)
        if args.threads is not None:
            import torch  # noqa: PLC0415 - already loaded by the engine

            torch.set_num_threads(max(1, args.threads))
        return engine

    def failed(exc: BaseException) -> None:
        # Report any load failure as one clear line, then end the service (exit status 2).
        sys.stderr.write(f"error: cannot load the engine ({args.weights!r} on {args.device!r}): "
                         f"{type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        import os

        from . import config as cfgfiles

        # No job can have run (they wait for the model): unpublish and end at once.
        cfgfiles.remove_service_file(os.getpid())
        logging.shutdown()
        os._exit(2)

    # The service answers (health checks, /v1/info with "loading": true) while the model
    # loads in the background; jobs wait for it. A load that fails ends the service (exit 2).
    engine = LoadingEngine(load, device=args.device, on_error=failed)
    config = ServiceConfig(max_body_mb=args.max_body_mb, max_megapixels=args.max_megapixels,
                           max_trimap_megapixels=args.max_trimap_megapixels,
                           max_queue=args.max_queue, shutdown_grace=args.shutdown_grace,
                           sam_checkpoint=args.sam_checkpoint, sam_model_type=args.sam_model_type)
    return serve(engine, host=args.host, port=args.port, config=config, log_level=args.log_level)


def _wait_until_listening(timeout: float = 15.0) -> None:
    """Wait until this process's service answers TCP connections (its service.json names
    our pid and the port accepts), so torch's import does not slow the server's start."""
    import os
    import socket
    import time

    from . import config as cfgfiles

    deadline = time.monotonic() + timeout
    path = cfgfiles.config_dir() / cfgfiles.SERVICE_FILE
    while time.monotonic() < deadline:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if int(data.get("pid", -1)) == os.getpid():
                with socket.create_connection((str(data["host"]), int(data["port"])), timeout=1.0):
                    return
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.05)


class LoadingEngine:
    """An engine that loads on a background thread: ``info()`` answers at once (with
    ``"loading": True`` until the model is ready, then the engine's own info), every other
    use waits for the load (and raises when it failed)."""

    def __init__(self, load: Any, device: str = "auto", on_error: Any = None) -> None:
        import threading

        self._load, self._device, self._on_error = load, device, on_error
        self._engine: Any = None
        self.error: Optional[BaseException] = None
        self._ready = threading.Event()
        self._callbacks: list = []
        self._lock = threading.Lock()
        threading.Thread(target=self._run, name="diffmatte-engine-load", daemon=True).start()

    def _run(self) -> None:
        try:
            engine = self._load()
        except BaseException as exc:  # noqa: BLE001 - reported through info() and on_error
            self.error = exc
            self._ready.set()
            if self._on_error is not None:
                self._on_error(exc)
            return
        with self._lock:
            self._engine = engine
            self._ready.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(engine)

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def on_ready(self, fn: Any) -> None:
        """Call ``fn(engine)`` once the model is loaded (now, if it already is)."""
        with self._lock:
            if self._engine is None:
                self._callbacks.append(fn)
                return
        fn(self._engine)

    def wait(self, timeout: Optional[float] = None) -> Any:
        if not self._ready.wait(timeout):
            raise TimeoutError("the engine is still loading")
        if self.error is not None:
            raise RuntimeError(f"the engine failed to load: {type(self.error).__name__}: {self.error}")
        return self._engine

    def info(self) -> dict:
        if self._engine is not None:
            return self._engine.info()
        if self.error is not None:
            return {"loading": False, "error": f"{type(self.error).__name__}: {self.error}"}
        return {"loading": True, "device": self._device}

    def refine(self, image: Any, trimap: Any, progress: Any = None, **kwargs: Any) -> Any:
        return self.wait().refine(image, trimap, progress=progress, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.wait(), name)
