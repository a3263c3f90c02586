"""The batch on Ray: the same items and the same :func:`work.process` as a local run, in
Ray actors that each load the engine once (and take a GPU when the cluster has one).

Inputs travel as bytes through Ray's object store and outputs come back as bytes, so
worker machines need the package (``pip install refine-matte[ray]``, same version) but
not the input folder; the driver writes every file and the manifest.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..errors import missing_extra
from .plan import Item
from .work import Result, Settings


class _Worker:
    """One engine per actor."""

    def __init__(self, weights: str, weights_blob: Optional[bytes], device: str, threads: int,
                 engine_env: Dict[str, str], prior_solver: str = "auto") -> None:
        import tempfile

        os.environ["OMP_NUM_THREADS"] = str(threads)
        os.environ.update(engine_env)  # --max-memory / --tile-size of the driver's command line
        import torch

        torch.set_num_threads(threads)
        from ..engine import load_engine

        if weights_blob is not None:  # a local checkpoint file: ship it, the node may not have it
            self._tmp = tempfile.TemporaryDirectory(prefix="refine-matte-ray-")
            path = Path(self._tmp.name) / Path(weights).name
            path.write_bytes(weights_blob)
            weights = str(path)
        self.engine = load_engine(weights, device=device, prior_solver=prior_solver)

    def process(self, item: Item, settings: Settings, blobs: Dict[str, bytes]) -> Result:
        from .work import process

        return process(item, settings, self.engine, blobs.__getitem__)


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ValueError(missing_extra("--ray", "Ray", "ray")) from exc
    return ray


def run_on_ray(pending: List[Item], settings: Settings, where: tuple, threads: Optional[int], address: str,
               workers: int, done: Callable[[Result], None]) -> None:
    """Run ``pending`` on ``workers`` Ray actors; ``done`` gets each result on the driver.
    ``where``: (device, prior_solver) of the actors' engines."""
    device, prior_solver = where
    ray = _import_ray()
    from ray.util import ActorPool

    if not ray.is_initialized():
        ray.init(address=None if address in ("", "local") else address, include_dashboard=False,
                 log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0)
    use_gpu = gpus >= 1 and device != "cpu"
    per = threads or 1
    weights_blob = None
    wpath = Path(settings.weights)
    if settings.weights != "default" and wpath.is_file():
        weights_blob = wpath.read_bytes()
    actor_cls = ray.remote(num_cpus=per, num_gpus=1 if use_gpu else 0)(_Worker)
    n = max(1, min(workers, len(pending)))
    engine_env = {k: v for k, v in os.environ.items() if k in ("DIFFMATTE_MAX_MEMORY", "DIFFMATTE_TILE_SIZE")}
    actors = [actor_cls.remote(settings.weights, weights_blob, "cuda" if use_gpu else device, per, engine_env,
                                 prior_solver)
              for _ in range(n)]
    pool = ActorPool(actors)

    def submit(actor, item: Item):
        blobs = {p: Path(p).read_bytes() for p in item.inputs()}
        return actor.process.remote(item, settings, blobs)

    try:
        for result in pool.map_unordered(submit, pending):
            done(result)
    finally:
        for a in actors:
            ray.kill(a)
