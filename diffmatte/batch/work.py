"""Refining one batch item: input bytes in, output bytes out.

The same function runs in the main process (``--jobs 1``), in worker processes and in
Ray actors, so every path produces the same files. Inputs come as bytes (a Ray actor
may run on a machine without the input files); outputs go back as bytes and only the
main process writes them, atomically, next to the manifest.
"""
from __future__ import annotations

import io
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import RESULTS_REVISION
from .plan import Item


@dataclass(frozen=True)
class Settings:
    """Everything that changes the outputs (their fingerprint decides what a rerun redoes)."""

    weights: str = "default"
    steps: int = 10
    seed: int = 0
    samples: int = 1
    bits: int = 8
    band: Optional[float] = None
    mask_edge: str = "auto"  # masks: "rough" (a region around the subject), "exact" or "auto"
    rgba: bool = False
    source: str = "layer"   # layered files: matte the layer's own pixels, or the "composite"
    edges: str = ""         # diffmatte.finish.edges parameters as JSON ("" = the engine's matte as is)
    decontaminate: float = 1.0
    premultiplied: bool = False
    white_point: Optional[float] = None   # the default model's white point (None: the engine's default)

    def finish(self, image: np.ndarray, alpha: np.ndarray, bits: Optional[int] = None):
        """(final alpha, RGBA cut-out) through the project's one cut-out path."""
        import json

        from ..finish.cutout import finish

        return finish(image, alpha, edges=json.loads(self.edges) if self.edges else None,
                      decontaminate=self.decontaminate if self.rgba else 0.0, premultiplied=self.premultiplied,
                      bits=bits)

    def params(self) -> dict:
        """The result parameters stored in each cut-out (as ``diffmatte refine`` does)."""
        import json

        return {"steps": self.steps, "seed": self.seed, "samples": self.samples,
                "edges": json.loads(self.edges) if self.edges else {}, "decontaminate": self.decontaminate,
                "premultiplied": self.premultiplied}

    def fingerprint(self, weights_hash: str, sam: Optional[str] = None) -> str:
        """What the outputs depend on besides the inputs; ``sam``: the installed SAM checkpoint
        (``trimap.installed_sam_id``) when masks are read and a rectangle may go to it."""
        import os

        d = asdict(self)
        if d["white_point"] is None:   # the default: fingerprints stay those of runs before the option
            del d["white_point"]
        if sam is not None:   # absent otherwise: fingerprints of runs without SAM stay as they were
            d["sam"] = sam
        d["weights"] = weights_hash
        d["tile_size"] = os.environ.get("DIFFMATTE_TILE_SIZE", "")  # decoder tiling changes the numbers
        d["results_revision"] = RESULTS_REVISION   # an engine whose matte changed redoes the outputs
        return json_hash(d)


def json_hash(obj) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Result:
    key: str
    outputs: Dict[str, bytes] = field(default_factory=dict)  # output path -> bytes
    seconds: Dict[str, float] = field(default_factory=dict)
    error: Optional[str] = None
    warnings: List[str] = field(default_factory=list)  # for the user, with the item's name


def process(item: Item, settings: Settings, engine, read: Callable[[str], bytes]) -> Result:
    """Refine ``item``; errors in the item (not in the engine's setup) become ``Result.error``."""
    from ..errors import Cancelled

    t0 = time.perf_counter()
    res = Result(item.key)
    # Items are independent: the engine's tile cache (kept for interactive re-runs, it snaps
    # to earlier runs of the same geometry) would make an image's matte depend, by ~1e-7, on
    # which image the same worker refined before, so local, --jobs and Ray runs would differ.
    cache = getattr(engine, "cache", None)
    if cache is not None and hasattr(cache, "clear"):
        cache.clear()
    try:
        if item.kind == "flat":
            _flat(item, settings, engine, read, res)
        else:
            _layered(item, settings, engine, read, res)
    except Cancelled:
        raise
    except (ValueError, OSError, MemoryError) as exc:
        res.outputs.clear()
        res.error = str(exc) or type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - a bug on one file fails that file, never the batch
        res.outputs.clear()
        res.error = f"{item.image}: internal error ({type(exc).__name__}: {exc})"
    res.seconds["total"] = round(time.perf_counter() - t0, 3)
    return res


class _Named(io.BytesIO):
    """A file's bytes that print as the file's path: the readers' errors name what failed
    ('<_io.BytesIO object at 0x...>' did, issue #25)."""

    def __init__(self, data: bytes, path: str) -> None:
        super().__init__(data)
        self.path = str(path)

    def __str__(self) -> str:
        return self.path

    __repr__ = __str__


def _trimap_from(mask: np.ndarray, image: np.ndarray, settings: Settings, res: Result) -> Tuple[np.ndarray, bool]:
    """The mask's trimap, and whether it was read as a rough region (``--mask-edge rough``, or
    ``auto`` deciding so): its band may have missed the edge, so the refine widens it. A rough
    or auto rectangle goes to the installed SAM's box prompt (not widened), as in the service."""
    import trimap
    from refine_matte import widen_rule  # the docker's and the CLI's rule (stdlib only)

    # the service's reading (trimap.read_selection): a rectangle goes to the installed SAM's box prompt
    tri, edge = trimap.read_selection(mask, image, band=settings.band, edge=settings.mask_edge,
                                      report=res.warnings, sam_box=trimap.installed_sam_box(image, settings.band))
    return tri, widen_rule.widens("mask", edge)


def _refine(engine, image: np.ndarray, tri: np.ndarray, settings: Settings, res: Result,
            widen_band: bool = False) -> np.ndarray:
    t = time.perf_counter()
    alpha = engine.refine(image, tri, steps=settings.steps, seed=settings.seed, samples=settings.samples,
                          widen_band=widen_band, band=settings.band,  # a rough mask's trimap: a second pass
                          white_point=settings.white_point)
    res.seconds["refine"] = round(res.seconds.get("refine", 0.0) + time.perf_counter() - t, 3)
    return alpha


def _encode(write: Callable[[Path], object], name: str) -> bytes:
    """Run one of the project's file writers into a private temp folder and return the bytes,
    so batch files are exactly what ``diffmatte refine`` would write."""
    with tempfile.TemporaryDirectory(prefix="refine-matte-batch-") as d:
        path = Path(d) / name
        write(path)
        return path.read_bytes()


def _write_cutout(path: Path, rgba: np.ndarray, icc: Optional[bytes], settings: Settings) -> None:
    from ..io.cutout_files import write_cutout

    write_cutout(path, rgba, icc, settings.params())


def _flat(item: Item, settings: Settings, engine, read, res: Result) -> None:
    from ..io.cutout_files import read_icc
    from ..io.images import read_image, read_trimap, write_alpha

    data = read(item.image)
    image = read_image(_Named(data, item.image))
    rough = False
    if item.trimap:
        tri = read_trimap(_Named(read(item.trimap), item.trimap))
    else:
        tri, rough = _trimap_from(read_trimap(_Named(read(item.mask), item.mask)), image, settings, res)
    final, cut = settings.finish(image, _refine(engine, image, tri, settings, res, rough))
    out = item.outputs
    res.outputs[out["alpha"]] = _encode(lambda p: write_alpha(p, final, bits=settings.bits), "alpha.png")
    if "cutout" in out:
        icc = read_icc(io.BytesIO(data))
        res.outputs[out["cutout"]] = _encode(lambda p: _write_cutout(p, cut, icc, settings), "cutout.png")


def _layered(item: Item, settings: Settings, engine, read, res: Result) -> None:
    from ..io import layered
    from ..io.images import read_trimap

    doc = layered.read(read(item.image), item.fmt, item.image)
    by_path = dict(doc.leaves())
    shared_tri = read_trimap(_Named(read(item.trimap), item.trimap)) if item.trimap else None
    shared_mask = read_trimap(_Named(read(item.mask), item.mask)) if item.mask else None
    composite = doc.composite() if settings.source == "composite" else None
    for path, source in item.layers:
        layer = by_path.get(path)
        if layer is None:
            raise ValueError(f"{item.image}: layer {path!r} is gone")
        if source == "layer-mask" and layer.mask is None:
            raise ValueError(f"{item.image}: layer {path!r} has no layer mask any more")
        rgba = composite if composite is not None else doc.canvas_rgba(layer)
        image = rgba[..., :3]
        rough = False
        if source == "trimap":
            tri = shared_tri
        elif source == "mask":
            tri, rough = _trimap_from(shared_mask, image, settings, res)
        elif source == "layer-mask":
            tri, rough = _trimap_from(layer.mask.canvas(doc.width, doc.height), image, settings, res)
        else:  # transparency
            tri, rough = _trimap_from(doc.canvas_rgba(layer)[..., 3], image, settings, res)
        final, cut = settings.finish(image, _refine(engine, image, tri, settings, res, rough), bits=doc.bits)
        layer.set_mask(final, bits=doc.bits, name="refined matte")
        key = f"cutout:{path}"
        if key in item.outputs:
            res.outputs[item.outputs[key]] = _encode(lambda p: _write_cutout(p, cut, None, settings), "cutout.png")
    t = time.perf_counter()
    res.outputs[item.outputs["layered"]] = layered.encode(doc, item.fmt)
    res.seconds["encode"] = round(time.perf_counter() - t, 3)


# ---------------------------------------------------------------- worker processes
_ENGINE = None


def init_worker(weights: str, where: tuple, threads: int, parent: Optional[int] = None) -> None:
    """Process-pool initializer: tie this worker's life to its ``parent`` process, set the
    thread budget, then load the engine once on ``where`` = (device, prior_solver)."""
    import os

    if parent is not None:
        end_with_parent(parent)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    global _ENGINE
    from ..engine import load_engine

    _ENGINE = load_engine(weights, device=where[0], prior_solver=where[1])


def process_in_worker(item: Item, settings: Settings) -> Result:
    return process(item, settings, _ENGINE, lambda p: Path(p).read_bytes())


def end_with_parent(parent: int, poll: float = 0.5) -> None:
    """Make this worker process end when ``parent`` (the batch) ends, however it ends: a
    SIGKILL or SIGTERM of the batch left its workers running for ever, ~790 MB each, since a
    pool worker waiting for work never learns that its parent is gone (issue #25).

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); on every
    system a daemon thread also checks every ``poll`` s that the parent is still this
    process's parent, which covers a parent that died before the ``prctl`` call."""
    import os
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl (another libc): the watchdog still runs
            pass

    def orphaned() -> bool:
        if os.getppid() != parent:
            return True
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass
        return False

    if orphaned():
        os._exit(1)

    def watch() -> None:
        import time

        while not orphaned():
            time.sleep(poll)
        os._exit(1)   # no cleanup to do: the parent writes every output and the manifest

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()
