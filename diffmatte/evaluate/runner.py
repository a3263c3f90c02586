"""Run matting methods over an evaluation set and collect per-image metrics."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .datasets import find_dataset, load_sample
from .metrics import METRICS, all_metrics

Method = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class MethodResult:
    """Per-image metrics of one method, plus failures (name -> error message)."""

    method: str
    rows: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def mean(self) -> dict[str, float]:
        if not self.rows:
            return {}
        keys = list(next(iter(self.rows.values())))
        return {k: float(np.mean([r[k] for r in self.rows.values()])) for k in keys}


def engine_method(weights: str, device: str = "auto", steps: int = 10, seed: int = 0,
                  samples: int = 1) -> tuple[Method, dict]:
    """A DiffMatte method from ``weights``: 'default', a weights file, or a training run/checkpoint."""
    fns, info = engine_methods(weights, device, steps, [seed], samples)
    return fns[seed], info


def engine_methods(weights: str, device: str = "auto", steps: int = 10, seeds: Iterable[int] = (0,),
                   samples: int = 1) -> tuple[dict[int, Method], dict]:
    """One engine loaded once, one method per seed (seed -> function)."""
    import diffmatte

    p = Path(weights)
    if weights != "default" and (p.is_dir() or p.suffix == ".pt"):
        from ..engine import Engine, resolve_device
        from ..modeling import build_model
        from ..modeling.config import ModelConfig
        from ..weights.training_state import LAST, load_training_state
        state = load_training_state(p / LAST if p.is_dir() else p)
        model = build_model(ModelConfig.from_json(state["model_config"]))
        model.load_state_dict(state.get("ema") or state["model"])
        engine = Engine(model, resolve_device(device), f"{p} (step {int(state['step'])})")
    else:
        engine = diffmatte.load_engine(weights=weights, device=device)

    def method(seed: int) -> Method:
        def run(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
            return engine.refine(image, trimap, steps=steps, seed=seed, samples=samples)
        return run

    return {int(s): method(int(s)) for s in seeds}, engine.info()


def ratio_lines(results: list[MethodResult], engines: list[str], baselines: list[str]) -> list[str]:
    """Mean SAD and MSE of each engine row (and of their mean over seeds, when several)
    divided by each baseline's, over the images both have."""
    by = {r.method: r for r in results}
    lines = []
    groups = [(e, [e]) for e in engines if e in by]
    if len(groups) > 1:
        groups.append(("mean over " + ", ".join(e.rsplit("@", 1)[-1] for e in engines), engines))
    for b in baselines:
        if b not in by or not by[b].rows:
            continue
        for label, members in groups:
            names = [n for n in by[b].rows if all(n in by[m].rows for m in members)]
            if not names:
                continue
            vals = {}
            for k in ("sad", "mse"):
                ours = np.mean([by[m].rows[n][k] for m in members for n in names])
                base = np.mean([by[b].rows[n][k] for n in names])
                vals[k] = ours / base if base > 0 else float("nan")
            lines.append(f"{label} / {b}: SAD x{vals['sad']:.3f}  MSE x{vals['mse']:.3f}  ({len(names)} images)")
    return lines


def evaluate(dataset_dir: str | os.PathLike, methods: dict[str, Method], limit: int = 0,
             metrics: Iterable[str] = METRICS, save_dir: str | os.PathLike | None = None,
             on_row: Callable[[str, str, dict[str, float], float], None] | None = None) -> list[MethodResult]:
    """Evaluate each method on every image; one failing image is recorded and skipped."""
    metrics = tuple(metrics)
    triplets = find_dataset(dataset_dir)[: limit or None]
    results = {m: MethodResult(m) for m in methods}
    for name, ip, ap, tp in triplets:
        try:
            sample = load_sample(name, ip, ap, tp)
        except (OSError, ValueError) as exc:
            for r in results.values():
                r.errors[name] = f"unreadable: {exc}"
            continue
        for mname, fn in methods.items():
            t0 = time.perf_counter()
            try:
                pred = fn(sample.image, sample.trimap)
            except Exception as exc:  # noqa: BLE001 (keep going past one bad item)
                results[mname].errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            dt = time.perf_counter() - t0
            row = all_metrics(pred, sample.alpha, sample.trimap, metrics)
            row["seconds"] = dt
            results[mname].rows[name] = row
            if on_row:
                on_row(mname, name, row, dt)
            if save_dir:
                _save_alpha(Path(save_dir) / mname / (name.replace("/", "__") + ".png"), pred)
    return list(results.values())


def _save_alpha(path: Path, alpha: np.ndarray) -> None:
    from PIL import Image

    from ..io.fsutil import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)).save(tmp)


def format_table(results: list[MethodResult], per_image: bool = True) -> str:
    """Plain-text table: SAD, MSE x1e3, Grad, Conn, seconds; per image then the means."""
    header = f"{'method':<22} {'image':<22} {'SAD':>8} {'MSE(e3)':>8} {'Grad':>8} {'Conn':>8} {'sec':>7}"
    lines = [header, "-" * len(header)]

    def fmt(method: str, name: str, r: dict[str, float]) -> str:
        def g(k: str, scale: float = 1.0) -> str:
            return f"{r[k] * scale:8.3f}" if k in r else f"{'-':>8}"
        return (f"{method:<22} {name:<22} {g('sad')} {g('mse', 1e3)} {g('grad')} {g('conn')} "
                f"{r.get('seconds', float('nan')):7.2f}")

    if per_image:
        for res in results:
            for name, r in res.rows.items():
                lines.append(fmt(res.method, name, r))
            for name, err in res.errors.items():
                lines.append(f"{res.method:<22} {name:<22} FAILED: {err}")
        lines.append("-" * len(header))
    for res in results:
        n = len(res.rows)
        lines.append(fmt(res.method, f"MEAN ({n} images)", res.mean()) if n else f"{res.method:<22} no results")
    return "\n".join(lines)


def comparison_figure(dataset_dir: str | os.PathLike, alpha_dirs: dict[str, str | os.PathLike],
                      limit: int = 0, tile: int = 160, cases: Iterable[str] = ()) -> np.ndarray:
    """uint8 RGB sheet, one row per image: photo, trimap, ground truth, then each method's
    saved alpha (``alpha_dirs``: method -> folder written by :func:`evaluate` ``save_dir``).
    ``cases`` (names such as ``GT04@trimap1``) picks rows, in that order."""
    from PIL import Image, ImageDraw

    rows = []
    labels = ["image", "trimap", "ground truth", *alpha_dirs]
    found = find_dataset(dataset_dir)[: limit or None]
    cases = list(cases)
    if cases:
        by_name = {f[0]: f for f in found}
        missing = [c for c in cases if c not in by_name]
        if missing:
            raise ValueError(f"no such cases in {dataset_dir}: {', '.join(missing)}")
        found = [by_name[c] for c in cases]
    for name, ip, ap, tp in found:
        s = load_sample(name, ip, ap, tp)
        h, w = s.alpha.shape
        scale = tile / h
        size = (max(1, round(w * scale)), tile)

        def grey(a: np.ndarray) -> Image.Image:
            return Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)).convert("RGB").resize(size)

        tiles = [Image.fromarray((s.image * 255).round().astype(np.uint8)).resize(size),
                 Image.fromarray(s.trimap).convert("RGB").resize(size, Image.NEAREST), grey(s.alpha)]
        for method, folder in alpha_dirs.items():
            p = Path(folder) / (name.replace("/", "__") + ".png")
            tiles.append(grey(np.asarray(Image.open(p).convert("L"), np.float32) / 255) if p.exists()
                         else Image.new("RGB", size, (90, 0, 0)))
        rows.append([np.asarray(t) for t in tiles])
    if not rows:
        raise ValueError(f"no images in {dataset_dir}")
    # Columns as wide as the widest tile, so that portrait and landscape rows line up.
    col_w = max(t.shape[1] for r in rows for t in r)

    def cell(t: np.ndarray) -> np.ndarray:
        left = (col_w - t.shape[1]) // 2
        return np.pad(t, ((0, 0), (left, col_w - t.shape[1] - left), (0, 0)), constant_values=255)

    rows = [np.pad(np.concatenate([cell(t) for t in r], axis=1), ((0, 4), (0, 0), (0, 0)), constant_values=255)
            for r in rows]
    width = rows[0].shape[1]
    sheet = np.concatenate(rows, axis=0)
    header = Image.new("RGB", (width, 22), (255, 255, 255))
    draw = ImageDraw.Draw(header)
    for i, lab in enumerate(labels):
        draw.text((i * col_w + 4, 5), lab, fill=(0, 0, 0))
    return np.concatenate([np.asarray(header), sheet], axis=0)
