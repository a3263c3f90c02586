#!/usr/bin/env python
"""Benchmark: trimaps generated from coarse masks vs the dataset's own trimaps.

For every photo with ground-truth alpha: simulate the coarse mask a user starts
from (threshold at 0.5, thin strands knocked out, outline jittered; see
``trimap.evaluate.coarse_mask_from_alpha``), make trimaps from it with each
method and report per method
  cov    share of ground-truth transition pixels (0 < alpha < 1) left unknown,
  area   unknown area / the reference trimap's (mean and max over the photos),
  forced SAD (thousands) that the trimap's fg/bg labels alone impose,
  and with ``--weights``: the whole-image SAD (thousands) of the engine's matte
  made from that trimap, next to the SAD of the matte made from the reference trimap.

Methods: ``product`` (``trimap.from_mask(mask, image=photo)``, what the editor,
panel and service send), ``mask`` (``from_mask(mask)``, no image), ``const:R``
(a constant band of radius R px on both sides of the outline).

    python bench/trimap_bench.py --data ../shared/data/dev/alphamatting-real
    python bench/trimap_bench.py --data ../shared/data/dev/alphamatting-real --weights default --threads 1
    python bench/trimap_bench.py --data ../shared/data/dev --sets comp1k-crops gandalf

A folder with ``gt/``, ``input/`` and ``trimap2/`` (alphamatting.com layout) is read
as one set, its reference being ``--reference`` (``trimap2``, the looser one, by
default); otherwise ``--sets`` names comp1k-style sub-folders (``N_image.png``,
``N_alpha.png``, ``N_trimap.png``) or ``gandalf``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trimap  # noqa: E402
from trimap._validate import as_trimap  # noqa: E402
from trimap.evaluate import coarse_mask_from_alpha, sad, trimap_scores  # noqa: E402

# Issue #16's goals for the product default (whole-image SAD, area vs the reference).
GOAL_SAD = 1.2
GOAL_AREA = 2.0
DEFAULT_METHODS = ["product", "const:15", "const:25", "const:35"]


def load_l(path: Path) -> np.ndarray:
    """Load a PNG as single-channel uint8 (alpha PNGs may be RGB, trimaps palette or LA)."""
    with Image.open(path) as im:
        if im.mode in ("LA", "PA"):
            im = im.convert("LA").getchannel(0)
        return np.asarray(im.convert("L"))


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def find_samples(data: Path, sets: List[str], reference: str = "trimap2") -> Iterator[Tuple[str, Path, Path, Path]]:
    """Yield (name, image, alpha, trimap) paths for each sample with GT alpha."""
    if (data / "gt").is_dir() and (data / "input").is_dir():
        for al in sorted((data / "gt").glob("*.png")):
            img, tr = data / "input" / al.name, data / reference / al.name
            if img.exists() and tr.exists():
                yield al.stem, img, al, tr
        return
    for sub in sets:
        folder = data / sub
        if not folder.is_dir():
            print(f"warning: {folder} not found, skipped", file=sys.stderr)
            continue
        if sub == "gandalf":
            img, al, tr = folder / "gandalf.png", folder / "gandalfAlpha.png", folder / "gandalfTrimap.png"
            if img.exists() and al.exists() and tr.exists():
                yield "gandalf", img, al, tr
            continue
        alphas = sorted(folder.glob("*_alpha.png"), key=lambda p: (len(p.name), p.name))
        for al in alphas:
            stem = al.name[: -len("_alpha.png")]
            img, tr = folder / f"{stem}_image.png", folder / f"{stem}_trimap.png"
            if img.exists() and tr.exists():
                yield f"{sub}/{stem}", img, al, tr


def resize_max(arr: np.ndarray, max_side: int, resample: int) -> np.ndarray:
    h, w = arr.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return arr
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(arr).resize(size, resample))


def parse_method(spec: str) -> str:
    """Validate a method name (argparse type)."""
    if spec in ("product", "mask"):
        return spec
    if spec.startswith("const:"):
        try:
            if float(spec[6:]) >= 0:
                return spec
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"unknown method {spec!r}: use product, mask or const:R (R >= 0 px)")


def make_trimap(method: str, coarse: np.ndarray, image: np.ndarray, band_scale: float) -> np.ndarray:
    """The trimap ``method`` makes from ``coarse`` (and ``image``)."""
    if method.startswith("const:"):
        return trimap.from_mask(coarse, band=float(method[6:]), adaptive=False)
    band = trimap.default_band(coarse.shape) * band_scale
    return trimap.from_mask(coarse, band=band, image=image if method == "product" else None)


def load_engine(args: argparse.Namespace):
    """The engine for (c), or None without --weights; raises on a bad weights path."""
    if not args.weights:
        return None
    import torch

    import diffmatte

    if args.threads:
        torch.set_num_threads(args.threads)
    return diffmatte.load_engine(weights=args.weights, device=args.device)


def run(args: argparse.Namespace) -> int:
    data = Path(args.data)
    if not data.is_dir():
        print(f"error: --data {data} is not a folder", file=sys.stderr)
        return 2
    try:
        engine = load_engine(args)
    except Exception as exc:  # weights missing / engine not installed
        print(f"error: cannot load engine ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    if engine is not None:
        print(f"engine: {engine.info()}  steps {args.steps}, seed {args.seed}, max side {args.max_side or 'full'}")
    methods = args.methods
    rows: List[Dict[str, object]] = []
    print(f"{'sample':<18} {'method':<9} {'cov':>6} {'area':>6} {'forced':>7} {'sec':>5}" + (f" {'SAD':>7} {'SADref':>7}" if engine else ""))
    for name, img_p, al_p, tr_p in find_samples(data, args.sets, args.reference):
        try:
            image, alpha, ref = load_rgb(img_p), load_l(al_p), as_trimap(load_l(tr_p))
        except Exception as exc:
            print(f"{name:<18} skipped: {exc}", file=sys.stderr)
            continue
        if image.shape[:2] != alpha.shape or ref.shape != alpha.shape:
            print(f"{name:<18} skipped: sizes differ", file=sys.stderr)
            continue
        coarse = coarse_mask_from_alpha(alpha, jitter=args.jitter, strand=args.strand, seed=args.seed)
        small = None
        s_ref: Optional[float] = None
        if engine is not None:
            small = (resize_max(image, args.max_side, Image.BILINEAR), resize_max(alpha, args.max_side, Image.BILINEAR))
            s_ref = matte_sad(engine, small, ref, args)
        for method in methods:
            t0 = time.perf_counter()
            tri = make_trimap(method, coarse, image, args.band_scale)
            dt = time.perf_counter() - t0
            sc = trimap_scores(tri, alpha, reference=ref)
            row: Dict[str, object] = {"sample": name, "method": method, "seconds": dt, **sc}
            line = f"{name:<18} {method:<9} {sc['coverage']:>6.1%} {sc['area_ratio']:>5.2f}x {sc['forced_sad']:>7.2f} {dt:>5.2f}"
            if engine is not None:
                row["sad"], row["sad_reference"] = matte_sad(engine, small, tri, args), s_ref
                line += f" {row['sad']:>7.2f} {s_ref:>7.2f}"
            print(line, flush=True)
            rows.append(row)
    if not rows:
        print("error: no samples found", file=sys.stderr)
        return 2
    summary = summarise(rows, methods)
    alphamatting = (data / "gt").is_dir() and (data / "input").is_dir()
    print_summary(summary, args.reference if alphamatting else "the dataset trimap")
    if args.json:
        out = Path(args.json)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps({"args": vars(args), "rows": rows, "summary": summary}, indent=1, default=str))
        os.replace(tmp, out)
    return 0


def matte_sad(engine, small: Tuple[np.ndarray, np.ndarray], tri: np.ndarray, args: argparse.Namespace) -> float:
    """Whole-image SAD (thousands) of the engine's matte from ``tri`` at the engine's size."""
    image, alpha = small
    tri = resize_max(tri, args.max_side, Image.NEAREST)
    return sad(engine.refine(image, tri, steps=args.steps, seed=args.seed), alpha)


def summarise(rows: List[Dict[str, object]], methods: List[str]) -> Dict[str, Dict[str, float]]:
    """Per method: mean coverage, mean/max area, total forced SAD, total SAD and SAD vs the reference."""
    out: Dict[str, Dict[str, float]] = {}
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        area = np.array([r["area_ratio"] for r in rs], float)
        s = {
            "photos": len(rs),
            "coverage": float(np.mean([r["coverage"] for r in rs])),
            "coverage_visible": float(np.mean([r["coverage_visible"] for r in rs])),
            "area_mean": float(area.mean()),
            "area_max": float(area.max()),
            "area_within_goal": int((area <= GOAL_AREA).sum()),
            "forced_sad": float(np.sum([r["forced_sad"] for r in rs])),
        }
        if all("sad" in r for r in rs):
            s["sad"] = float(np.sum([r["sad"] for r in rs]))
            s["sad_reference"] = float(np.sum([r["sad_reference"] for r in rs]))
            s["sad_ratio"] = s["sad"] / max(s["sad_reference"], 1e-9)
        out[m] = s
    return out


def print_summary(summary: Dict[str, Dict[str, float]], reference: str) -> None:
    has_sad = all("sad" in s for s in summary.values())
    print()
    head = f"| method | coverage | visible cov. | area vs {reference}: mean / max | photos with area <= {GOAL_AREA:g}x | forced SAD |"
    if has_sad:
        head += f" SAD (total) | SAD with {reference} | ratio |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for m, s in summary.items():
        line = (f"| {m} | {s['coverage']:.1%} | {s['coverage_visible']:.1%} | {s['area_mean']:.2f}x / {s['area_max']:.2f}x "
                f"| {s['area_within_goal']}/{s['photos']} | {s['forced_sad']:.2f} |")
        if has_sad:
            line += f" {s['sad']:.2f} | {s['sad_reference']:.2f} | {s['sad_ratio']:.2f}x |"
        print(line)
    prod = summary.get("product")
    if prod is None:
        return
    goals = [f"area <= {GOAL_AREA:g}x {reference} on every photo: {'yes' if prod['area_within_goal'] == prod['photos'] else 'NO'}"]
    if has_sad:
        consts = {m: s["sad"] for m, s in summary.items() if m.startswith("const:")}
        beats = all(prod["sad"] < v for v in consts.values())
        goals.append(f"SAD below every constant band ({', '.join(consts) or 'none run'}): {'yes' if beats and consts else 'NO'}")
        goals.append(f"SAD <= {GOAL_SAD:g}x the SAD with {reference}: {'yes' if prod['sad_ratio'] <= GOAL_SAD else 'NO'} ({prod['sad_ratio']:.2f}x)")
    print("\nproduct default: " + "; ".join(goals))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="an alphamatting-style folder (gt/, input/, trimap2/) or the dev folder")
    p.add_argument("--sets", nargs="+", default=["comp1k-crops", "comp1k-full", "gandalf"], help="sub-folders of a dev folder")
    p.add_argument("--reference", default="trimap2", help="reference trimap folder of an alphamatting-style set (default %(default)s)")
    p.add_argument("--methods", nargs="+", type=parse_method, default=DEFAULT_METHODS,
                   help="trimap methods: product, mask, const:R (default: %(default)s)")
    p.add_argument("--band-scale", type=float, default=1.0, help="multiply the default band of product/mask (a sweep knob)")
    p.add_argument("--jitter", type=float, default=3.0, help="coarse-mask outline jitter, pixels at 512 px")
    p.add_argument("--strand", type=float, default=2.0, help="opening radius that knocks out strands, pixels at 512 px")
    p.add_argument("--seed", type=int, default=0, help="coarse-mask jitter and the engine's sampling noise")
    p.add_argument("--weights", default=None, help="engine weights (path or 'default'): adds the whole-image SAD")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--max-side", type=int, default=0, help="downscale photo, trimap and alpha to this long side for the engine (0: full size)")
    p.add_argument("--json", default=None, help="also write the rows and the summary to this JSON file")
    return p


if __name__ == "__main__":
    sys.exit(run(build_parser().parse_args()))
