"""``diffmatte.batch.run``: plan and validate everything, then refine what is not done yet
(in this process, in ``jobs`` worker processes, or on Ray), writing outputs atomically and
recording each item in the manifest."""
from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from ..io.fsutil import atomic_path
from .manifest import Manifest, WriteStopped, describe, sha256_bytes
from .plan import MANIFEST, Item
from .work import Result, Settings

Echo = Optional[Callable[[str], None]]


@dataclass
class Summary:
    """What a run did. ``failed`` lists (item key, reason)."""

    total: int = 0
    refined: int = 0
    skipped: int = 0
    failed: List[Tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    manifest: Optional[Path] = None

    @property
    def images_per_hour(self) -> float:
        return 3600.0 * self.refined / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def line(self) -> str:
        s = (f"{self.refined} refined, {self.skipped} already done, {len(self.failed)} failed"
             + (f": {', '.join(k for k, _ in self.failed)}" if self.failed else ""))
        if self.refined:
            s += f" ({self.seconds:.1f} s, {self.images_per_hour:.0f} images/hour)"
        return s


def run(inputs: Sequence[str] = (), output: str = "", *, images: Optional[str] = None,
        trimaps: Optional[str] = None, masks: Optional[str] = None, layers: Optional[str] = None,
        image_pattern: str = "{stem}", trimap_pattern: str = "{stem}", mask_pattern: str = "{stem}",
        rgba: bool = False, weights: str = "default", device: str = "auto", prior_solver: str = "auto",
        steps: int = 10, seed: int = 0,
        samples: int = 1, bits: int = 8, band: Optional[float] = None, mask_edge: str = "auto",
        source: str = "layer", jobs: int = 1,
        threads: Optional[int] = None, ray: Optional[str] = None, ray_workers: Optional[int] = None,
        overwrite: bool = False, max_megapixels: float = 100.0, edges: str = "", decontaminate: float = 1.0,
        premultiplied: bool = False, white_point: Optional[float] = None, service: Union[bool, str] = False,
        progress: bool = True, echo: Echo = print) -> Summary:
    """Refine every image (flat or layered) under ``inputs`` into the folder ``output``.

    Flat images get ``OUT/STEM.png`` (and ``STEM_cutout.png`` with ``rgba``); in layered
    files (PSD, OpenRaster, multi-page TIFF) the layers matching ``layers`` get the refined
    matte as their layer mask in ``OUT/NAME`` (same format). Trimaps come from ``trimaps``
    (a folder; ``trimap_pattern`` names them), ``masks`` (banded with ``trimap.from_mask``)
    or, in layered files, the layer's own mask or transparency. Raises ``ValueError`` for
    problems with the whole batch (before the model loads); problems with one item are
    reported in the summary and the manifest, and the rest goes on. A rerun skips items
    whose outputs are done and unchanged. ``edges`` (JSON of diffmatte.finish.edges parameters),
    ``decontaminate`` and ``premultiplied`` finish the matte and cut-outs as ``diffmatte refine``
    does (diffmatte.finish.cutout). ``ray``: None (local), ``""``/``"local"`` (start
    or join a local Ray), ``"auto"`` or ``"ray://host:port"``. ``service``: refine through the
    running ``diffmatte serve`` (True, or its config folder) instead of loading a model.
    ``device`` and ``prior_solver`` say where the engines run (``load_engine``); they do not
    change the outputs' fingerprint. ``white_point``: the default model's white point
    (``Engine.refine``; None: its default); not with ``service``, whose refine route does not take it.
    """
    from .prepare import prepare

    t_start = time.perf_counter()
    _check_options(jobs, steps, source, output, ray)
    if service and white_point is not None:
        raise ValueError("--white-point cannot be used with --service yet: the service's refine uses the "
                         "default white point (leave --white-point out, or run without --service)")
    served = _connect_service(service, jobs, ray)
    out_dir = Path(output)
    _check_writable(out_dir)
    manifest = Manifest(out_dir / MANIFEST).open()
    summary = Summary(manifest=manifest.path)
    stopped: Optional[WriteStopped] = None
    try:
        settings = Settings(weights=str(weights), steps=steps, seed=seed, samples=samples, bits=bits, band=band,
                            mask_edge=mask_edge, rgba=rgba, source=source, edges=edges, decontaminate=decontaminate,
                            premultiplied=premultiplied, white_point=white_point)
        plan = prepare(list(inputs) + ([images] if images else []), out_dir, manifest, settings,
                       trimaps=trimaps, masks=masks, layers=layers, image_pattern=image_pattern,
                       trimap_pattern=trimap_pattern, mask_pattern=mask_pattern, overwrite=overwrite,
                       max_pixels=int(max_megapixels * 1e6), echo=echo,
                       weights_id=served.weights_id() if served is not None else None)
        pending = _pending(plan, manifest, summary, echo)
        _clean_stale_temps(out_dir, plan.items)
        if pending:
            t_work = time.perf_counter()
            _execute(pending, plan, manifest, settings, summary, (device, prior_solver), jobs, threads, ray,
                     ray_workers, progress, echo, served)
            summary.seconds = time.perf_counter() - t_work
        try:
            manifest.compact()
        except OSError as exc:  # the appended lines are a valid manifest too: say so, go on
            _say(echo, f"note: could not rewrite {manifest.path} in order ({describe(exc)}); "
                       f"it stays valid as appended")
    except WriteStopped as exc:
        stopped = exc
    finally:
        manifest.close()
    if stopped is not None:
        raise _stop_error(stopped, summary, manifest.path)
    if not summary.seconds:
        summary.seconds = time.perf_counter() - t_start if summary.refined else 0.0
    _say(echo, summary.line() + f"; manifest {manifest.path}")
    return summary


def _check_options(jobs: int, steps: int, source: str, output: str, ray: Optional[str]) -> None:
    """Refuse options that make the whole batch impossible (before any planning)."""
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    if not 1 <= steps <= 1000:
        raise ValueError(f"steps must be between 1 and 1000, got {steps}")
    if source not in ("layer", "composite"):
        raise ValueError(f"source must be 'layer' or 'composite', got {source!r}")
    if not output:
        raise ValueError("an output folder (-o) is required")
    if ray is not None:  # say now, not after planning, that Ray is missing
        from .ray_runner import _import_ray

        _import_ray()


def _connect_service(service: Union[bool, str], jobs: int, ray: Optional[str]):
    """The running service's engine for ``--service`` (None without it)."""
    if not service:
        return None
    if jobs != 1 or ray is not None:
        raise ValueError("--service sends one image at a time to the service's queue; drop --jobs / --ray")
    from .service_engine import ServiceEngine

    return ServiceEngine.connect(service)


def _pending(plan, manifest: Manifest, summary: Summary, echo: Echo) -> List[Item]:
    """Record the items planning refused as failed; return those not done yet (counting the
    done ones as skipped)."""
    summary.total = len(plan.items)
    for item in plan.items:
        if item.error:
            summary.failed.append((item.key, item.error))
            manifest.append(_record(item, plan, "failed", error=item.error))
            _say(echo, f"{item.key}: FAILED: {item.error}")
    pending = [i for i in plan.items if not i.error and not manifest.is_done(i.key, plan.settings_id,
                                                                               plan.hashes[i.key])]
    summary.skipped = sum(1 for i in plan.items if not i.error) - len(pending)
    return pending


def _stop_error(stopped: WriteStopped, summary: Summary, manifest_path: Path) -> WriteStopped:
    """One line (the CLI prints it as "error: ..."): which file, which errno, what to do."""
    err = WriteStopped(stopped.path, OSError(stopped.errno, ""), "")
    err.args = (f"batch stopped: {stopped}; {summary.refined} refined before the stop "
                f"(recorded in {manifest_path}); free space or fix the file, then rerun the same "
                f"command to continue",)
    err.summary = summary  # type: ignore[attr-defined]
    return err


def _say(echo: Echo, text: str) -> None:
    if echo is not None:
        echo(text)


PROBE_BYTES = 4096   # what the writable-folder probe writes (one block of most file systems)


def _check_writable(out_dir: Path) -> None:
    """Create OUT and prove a file can be written there, before anything expensive."""
    import tempfile

    probe = None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".refine-matte-write-test-", dir=out_dir)
        try:
            # Real bytes, flushed: creating an empty file needs no free block, so an empty
            # probe passed on a full disk (issue #25).
            block = b"\0" * PROBE_BYTES
            done = 0
            while done < len(block):
                done += os.write(fd, block[done:])
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ValueError(f"cannot write into the output folder {out_dir}: {describe(exc)}") from None
    finally:
        if probe is not None:
            try:
                os.unlink(probe)
            except OSError:
                pass


def _clean_stale_temps(out_dir: Path, items: List[Item]) -> None:
    """Remove temp files that a killed run left for our outputs (``.NAME.XXXXXXXX.tmp``, the
    fsutil.atomic_path naming); files of any other name are left alone."""
    names = {Path(p).name for it in items for p in it.outputs.values()} | {MANIFEST}
    pat = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")
    folders = {out_dir} | {Path(p).parent for it in items for p in it.outputs.values()}
    for folder in folders:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for p in entries:
            m = pat.fullmatch(p.name)
            if m and m.group("name") in names and p.is_file():
                try:
                    p.unlink()
                except OSError:
                    pass


def _record(item: Item, plan, status: str, outputs: Optional[Dict[str, Optional[str]]] = None,
            error: Optional[str] = None, seconds: Optional[dict] = None) -> dict:
    rec = {"key": item.key, "status": status, "image": item.image, "kind": item.kind,
           "inputs": plan.hashes.get(item.key, {}), "settings": plan.settings_id,
           "layers": [list(x) for x in item.layers],
           "outputs": outputs if outputs is not None else {plan.rel(p): None for p in item.outputs.values()},
           "error": error}
    if seconds is not None:
        rec["timing"] = {"seconds": seconds, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return rec


def _finish(result: Result, item: Item, plan, manifest: Manifest, summary: Summary, echo: Echo) -> None:
    """Write one item's outputs atomically and record it (the main process is the only writer)."""
    if result.error is None:
        manifest.append(_record(item, plan, "writing"))  # from here on the outputs are known to be ours
        try:
            hashes = {}
            for path, data in result.outputs.items():
                with atomic_path(path) as tmp:
                    Path(tmp).write_bytes(data)
                hashes[plan.rel(path)] = sha256_bytes(data)
        except OSError as exc:
            # A full disk, a quota, a read-only folder: every later output would fail the
            # same way. Stop the batch; its manifest says this item is not done (issue #25).
            raise WriteStopped(path, exc) from None
    if result.error is not None:
        summary.failed.append((item.key, result.error))
        manifest.append(_record(item, plan, "failed", error=result.error, seconds=result.seconds))
        _say(echo, f"{item.key}: FAILED: {result.error}")
        return
    summary.refined += 1
    for message in result.warnings:
        _say(echo, f"{item.key}: warning: {message}")
    record = _record(item, plan, "done", outputs=hashes, seconds=result.seconds)
    if result.warnings:
        record["warnings"] = list(result.warnings)
    manifest.append(record)
    _say(echo, f"{item.key} -> {', '.join(sorted(hashes))}")


def _execute(pending: List[Item], plan, manifest: Manifest, settings: Settings, summary: Summary, where: tuple,
             jobs: int, threads: Optional[int], ray: Optional[str], ray_workers: Optional[int], progress: bool,
             echo: Echo, served=None) -> None:
    from tqdm import tqdm

    bar = tqdm(total=len(pending), unit="img", desc="refine", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    say = (lambda s: bar.write(s)) if progress and echo is not None else echo
    by_key = {i.key: i for i in pending}

    def done(result: Result) -> None:
        _finish(result, by_key[result.key], plan, manifest, summary, say)
        bar.update(1)

    try:
        if served is not None:
            from .work import process

            for item in pending:
                done(process(item, settings, served, lambda p: Path(p).read_bytes()))
        elif ray is not None:
            from .ray_runner import run_on_ray

            run_on_ray(pending, settings, where, threads, ray, ray_workers or jobs, done)
        elif jobs == 1:
            _run_here(pending, settings, where, threads, done)
        else:
            _run_pool(pending, settings, where, threads, jobs, done)
    finally:
        bar.close()


def _run_here(pending: List[Item], settings: Settings, where: tuple, threads: Optional[int], done) -> None:
    """In this process; ``where`` is (device, prior_solver)."""
    from ..engine import load_engine
    from .work import process

    if threads:
        import torch

        torch.set_num_threads(threads)
    engine = load_engine(settings.weights, device=where[0], prior_solver=where[1])
    for item in pending:
        done(process(item, settings, engine, lambda p: Path(p).read_bytes()))


def _run_pool(pending: List[Item], settings: Settings, where: tuple, threads: Optional[int], jobs: int,
              done) -> None:
    """``jobs`` spawned processes, each loading the engine once; CPU threads split between them."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from .work import init_worker, process_in_worker

    per = threads or max(1, (os.cpu_count() or 1) // jobs)
    ctx = multiprocessing.get_context("spawn")  # no forked torch state
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=init_worker,
                             initargs=(settings.weights, where, per, os.getpid())) as pool:
        futures = {pool.submit(process_in_worker, item, settings): item for item in pending}
        try:
            left = set(futures)
            while left:
                finished, left = wait(left, return_when=FIRST_COMPLETED)
                for fut in finished:
                    item = futures[fut]
                    try:
                        result = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker died (e.g. out of memory)
                        result = Result(item.key, error=f"worker failed: {exc}")
                    done(result)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
