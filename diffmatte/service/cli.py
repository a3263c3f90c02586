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
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                        help="inference precision (default auto: bf16 for this project's network models "
                             "on a CPU with AVX512-BF16 / AMX, else fp32; fp16 needs CUDA)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for inference (default: torch's choice); 1 avoids "
                             "thrashing on a busy machine")
    parser.add_argument("--max-queue", type=int, default=8, help="refine jobs allowed to wait (default 8)")
    parser.add_argument("--max-megapixels", type=float, default=64.0,
                        help="largest image accepted, in megapixels (default 64)")
    parser.add_argument("--max-trimap-megapixels", type=float, default=16.0,
                        help="largest image the trimap routes (mask, scribbles) accept, in megapixels "
                             "(default 16; they need about 60 bytes a pixel)")
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

    import diffmatte  # noqa: PLC0415 - heavy engine import only when actually serving

    from .app import ServiceConfig
    from .server import serve

    try:
        engine = diffmatte.load_engine(weights=args.weights, device=args.device, precision=args.precision)
    except Exception as exc:  # noqa: BLE001 - report any load failure as one clear line
        sys.stderr.write(f"error: cannot load the engine ({args.weights!r} on {args.device!r}): "
                         f"{type(exc).__name__}: {exc}\n")
        return 2
    if args.threads is not None:
        import torch  # noqa: PLC0415 - already loaded by the engine

        torch.set_num_threads(max(1, args.threads))
    config = ServiceConfig(max_body_mb=args.max_body_mb, max_megapixels=args.max_megapixels,
                           max_trimap_megapixels=args.max_trimap_megapixels,
                           max_queue=args.max_queue, shutdown_grace=args.shutdown_grace,
                           sam_checkpoint=args.sam_checkpoint, sam_model_type=args.sam_model_type)
    return serve(engine, host=args.host, port=args.port, config=config, log_level=args.log_level)
