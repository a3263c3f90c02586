#!/usr/bin/env python
"""Benchmark: trimaps generated from coarse masks vs the dataset's own trimaps.

For every dev photo with ground-truth alpha: simulate a coarse mask (threshold at
0.5, knock out thin strands, jitter the boundary; see
``trimap.evaluate.coarse_mask_from_alpha``), build a trimap with
``trimap.from_mask`` and report
  (a) coverage: share of ground-truth transition pixels (0 < alpha < 1) that are unknown,
  (b) area: unknown area relative to the dataset's trimap,
  and also: transition pixels labelled fg / bg, coverage of 0.05 <= alpha <= 0.95 only,
      and "forced" SAD (thousands) that the trimap's fg/bg labels alone impose,
  (c) with ``--weights``: end-to-end SAD (whole image, thousands) of the engine
      run with the generated trimap vs with the dataset trimap.

    python bench/trimap_bench.py --data /work/shared/data/dev               # image-aware band (default)
    python bench/trimap_bench.py --data /work/shared/data/dev --mask-only   # mask-only band
    python bench/trimap_bench.py --data /work/shared/data/dev --weights default --steps 10
    python bench/trimap_bench.py --data /work/shared/data/dev --pictures docs   # docs/trimap_*.png
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trimap  # noqa: E402
from trimap._validate import as_trimap  # noqa: E402
from trimap.evaluate import coarse_mask_from_alpha, sad, simulated_unknown_brush, trimap_scores  # noqa: E402

GOAL_COVERAGE = 0.98
GOAL_AREA = 1.5
GOAL_SAD = 1.2


def load_l(path: Path) -> np.ndarray:
    """Load a PNG as single-channel uint8 (alpha PNGs may be RGB, trimaps palette or LA)."""
    with Image.open(path) as im:
        if im.mode in ("LA", "PA"):
            im = im.convert("LA").getchannel(0)
        return np.asarray(im.convert("L"))


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def find_samples(data: Path, sets: List[str]) -> Iterator[Tuple[str, Path, Path, Path]]:
    """Yield (name, image, alpha, trimap) paths for each sample with GT alpha."""
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


def run(args: argparse.Namespace) -> int:
    data = Path(args.data)
    if not data.is_dir():
        print(f"error: --data {data} is not a folder", file=sys.stderr)
        return 2
    band = None if args.band == "auto" else float(args.band)
    # Ablation knobs of the image path (module constants; defaults leave them alone).
    import trimap.guided

    if args.guided_reach is not None:
        trimap.guided.REACH = args.guided_reach
    if args.image_floor is not None:
        trimap.band.IMAGE_FLOOR = args.image_floor
    engine = None
    if args.weights:
        try:
            import diffmatte

            engine = diffmatte.load_engine(weights=args.weights, device=args.device)
        except Exception as exc:  # the engine may not be installed / weights missing
            print(f"error: cannot load engine ({type(exc).__name__}: {exc})", file=sys.stderr)
            return 2
        if args.seed_engine is not None:
            import torch

            torch.manual_seed(args.seed_engine)
        print(f"engine: {engine.info()}")

    rows: List[Dict[str, object]] = []
    head = f"{'sample':<20} {'size':>10} {'cov(a)':>7} {'area(b)':>7} {'wrongFG':>7} {'wrongBG':>7} {'cov5-95':>7} {'forced':>7} {'band':>6} {'sec':>5}"
    if engine is not None:
        head += f" {'SADgen':>8} {'SADref':>8} {'ratio':>6}"
    print(head)
    for name, img_p, al_p, tr_p in find_samples(data, args.sets):
        try:
            image = load_rgb(img_p)
            alpha = load_l(al_p)
            ref = as_trimap(load_l(tr_p))
        except Exception as exc:
            print(f"{name:<20} skipped: {exc}", file=sys.stderr)
            continue
        if image.shape[:2] != alpha.shape or ref.shape != alpha.shape:
            print(f"{name:<20} skipped: sizes differ", file=sys.stderr)
            continue
        coarse = coarse_mask_from_alpha(alpha, jitter=args.jitter, strand=args.strand, seed=args.seed)
        t0 = time.perf_counter()
        b = trimap.default_band(alpha.shape) if band is None else band
        if args.band_fraction is not None:
            b = max(trimap.band.MIN_DEFAULT_BAND, args.band_fraction * float(np.sqrt(alpha.size)))
        tri = trimap.from_mask(
            coarse,
            band=b,
            adaptive=not args.no_adaptive,
            image=image,
            transparency=args.transparency,
            image_aware=not args.mask_only,
        )
        if args.unknown_brush:
            tri = trimap.mark_unknown(tri, simulated_unknown_brush(alpha))
        dt = time.perf_counter() - t0
        sc = trimap_scores(tri, alpha, reference=ref)
        row: Dict[str, object] = {"sample": name, "h": alpha.shape[0], "w": alpha.shape[1], "band": b, "seconds": dt, **sc}
        line = (
            f"{name:<20} {alpha.shape[1]:>4}x{alpha.shape[0]:<5} {sc['coverage']*100:>6.2f}% {sc['area_ratio']:>6.2f}x"
            f" {sc['wrong_fg']*100:>6.2f}% {sc['wrong_bg']*100:>6.2f}% {sc['coverage_visible']*100:>6.2f}%"
            f" {sc['forced_sad']:>7.2f} {b:>6.1f} {dt:>5.2f}"
        )
        if engine is not None and (args.e2e_max_side <= 0 or max(alpha.shape) <= args.e2e_max_side or args.e2e_resize):
            im_s = resize_max(image, args.e2e_max_side if args.e2e_resize else 0, Image.BILINEAR)
            tg_s = resize_max(tri, args.e2e_max_side if args.e2e_resize else 0, Image.NEAREST)
            tr_s = resize_max(ref, args.e2e_max_side if args.e2e_resize else 0, Image.NEAREST)
            al_s = resize_max(alpha, args.e2e_max_side if args.e2e_resize else 0, Image.BILINEAR)
            a_gen = engine.refine(im_s, tg_s, steps=args.steps, seed=args.seed)
            a_ref = engine.refine(im_s, tr_s, steps=args.steps, seed=args.seed)
            s_gen, s_ref = sad(a_gen, al_s), sad(a_ref, al_s)
            row.update({"sad_generated": s_gen, "sad_reference": s_ref, "sad_ratio": s_gen / max(s_ref, 1e-9)})
            line += f" {s_gen:>8.2f} {s_ref:>8.2f} {row['sad_ratio']:>6.2f}"
        print(line, flush=True)
        rows.append(row)

    if not rows:
        print("error: no samples found", file=sys.stderr)
        return 2
    keys = ("coverage", "area_ratio", "wrong_fg", "wrong_bg", "coverage_visible", "forced_sad")
    mean = {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}
    print("-" * len(head))
    line = f"{'mean':<20} {'':>10} {mean['coverage']*100:>6.2f}% {mean['area_ratio']:>6.2f}x {mean['wrong_fg']*100:>6.2f}% {mean['wrong_bg']*100:>6.2f}% {mean['coverage_visible']*100:>6.2f}% {mean['forced_sad']:>7.2f}"
    sads = [r for r in rows if "sad_generated" in r]
    if sads:
        g = float(np.sum([r["sad_generated"] for r in sads]))
        f = float(np.sum([r["sad_reference"] for r in sads]))
        mean["sad_ratio_total"] = g / max(f, 1e-9)
        line += f"   total SAD gen/ref = {g:.2f}/{f:.2f} = {mean['sad_ratio_total']:.2f}x"
    print(line)
    n_cov = sum(r["coverage"] >= GOAL_COVERAGE for r in rows)
    n_area = sum(r["area_ratio"] <= GOAL_AREA for r in rows)
    n_both = sum(r["coverage"] >= GOAL_COVERAGE and r["area_ratio"] <= GOAL_AREA for r in rows)
    print(
        f"goal: coverage >= {GOAL_COVERAGE:.0%} on {n_cov}/{len(rows)} images, "
        f"area <= {GOAL_AREA}x on {n_area}/{len(rows)} images, both on {n_both}/{len(rows)}"
    )
    if args.json:
        out = Path(args.json)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps({"args": vars(args), "rows": rows, "mean": mean}, indent=1, default=str))
        os.replace(tmp, out)
    return 0


def _tile(arrays: List[np.ndarray], labels: List[str], height: int = 240) -> Image.Image:
    """Side-by-side panels with a caption under each."""
    from PIL import ImageDraw

    panels = []
    for arr, text in zip(arrays, labels):
        im = Image.fromarray(arr if arr.ndim == 3 else np.repeat(arr[..., None], 3, 2))
        w = max(1, round(im.width * height / im.height))
        im = im.resize((w, height), Image.BILINEAR)
        panel = Image.new("RGB", (w, height + 18), "white")
        panel.paste(im, (0, 0))
        ImageDraw.Draw(panel).text((4, height + 3), text, fill="black")
        panels.append(panel)
    out = Image.new("RGB", (sum(p.width for p in panels) + 4 * (len(panels) - 1), height + 18), "white")
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + 4
    return out


def _save(img: Image.Image, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp.png")
    img.save(tmp)
    os.replace(tmp, path)
    print(f"wrote {path}")


def _overlay(image: np.ndarray, masks: List[np.ndarray], colours: List[Tuple[int, int, int]]) -> np.ndarray:
    out = image.copy()
    for m, c in zip(masks, colours):
        out[m] = c
    return out


def pictures(args: argparse.Namespace) -> int:
    """Write one picture per method (mask, scribbles, SAM) to ``args.pictures``; returns an exit code."""
    from scipy import ndimage as ndi

    data, out = Path(args.data), Path(args.pictures)
    out.mkdir(parents=True, exist_ok=True)
    samples = {n: (i, a, t) for n, i, a, t in find_samples(data, ["comp1k-crops", "gandalf"])}
    if not samples:
        print("error: no samples found", file=sys.stderr)
        return 2
    # Mask: a hairy crop, fixed band vs smart radius vs the dataset trimap.
    name = args.picture_sample if args.picture_sample in samples else sorted(samples)[0]
    img_p, al_p, tr_p = samples[name]
    image, alpha, ref = load_rgb(img_p), load_l(al_p), as_trimap(load_l(tr_p))
    coarse = coarse_mask_from_alpha(alpha, seed=args.seed)
    band = trimap.default_band(alpha.shape)
    fixed = trimap.from_mask(coarse, adaptive=False)
    smart = trimap.from_mask(coarse)
    aware = trimap.from_mask(coarse, image=image)
    sf, ss, sa = (trimap_scores(t, alpha, ref) for t in (fixed, smart, aware))
    _save(
        _tile(
            [image, alpha, coarse.astype(np.uint8) * 255, fixed, smart, aware, ref],
            [
                name,
                "ground-truth alpha",
                "coarse mask (simulated)",
                f"fixed {band:.0f}px: cov {sf['coverage']:.0%} area {sf['area_ratio']:.2f}x",
                f"smart radius: cov {ss['coverage']:.0%} area {ss['area_ratio']:.2f}x",
                f"+ image: cov {sa['coverage']:.0%} area {sa['area_ratio']:.2f}x",
                "dataset trimap",
            ],
        ),
        out / "trimap_mask.png",
    )

    # Scribbles: a few strokes placed deep inside the object and the background.
    fg_core = ndi.distance_transform_edt(alpha >= 250) > 25
    bg_core = ndi.distance_transform_edt(alpha <= 5) > 25
    strokes_fg, strokes_bg = _strokes_in(fg_core, 4, args.seed), _strokes_in(bg_core, 4, args.seed + 1)
    h, w = alpha.shape
    fg_m = trimap.strokes_to_mask((h, w), strokes_fg, radius=3)
    bg_m = trimap.strokes_to_mask((h, w), strokes_bg, radius=3)
    t0 = time.perf_counter()
    scrib = trimap.from_scribbles(image, fg_m, bg_m)
    dt = time.perf_counter() - t0
    sc = trimap_scores(scrib, alpha, ref)
    _save(
        _tile(
            [_overlay(image, [fg_m, bg_m], [(255, 40, 40), (40, 120, 255)]), scrib, ref],
            [
                "strokes: red fg, blue bg",
                f"from_scribbles ({dt:.1f}s): cov {sc['coverage']:.0%} area {sc['area_ratio']:.2f}x",
                "dataset trimap",
            ],
        ),
        out / "trimap_scribbles.png",
    )

    # SAM: the plumbing with random weights unless a checkpoint is configured.
    import torch
    from segment_anything import sam_model_registry

    torch.manual_seed(args.seed)
    try:
        prompter = trimap.SamPrompter(args.sam_checkpoint) if args.sam_checkpoint else None
        label = "SAM (checkpoint)"
    except Exception as exc:
        print(f"warning: {exc}; using random weights", file=sys.stderr)
        prompter = None
    if prompter is None:
        prompter = trimap.SamPrompter(sam_model_registry["vit_b"](checkpoint=None))
        label = "SAM vit_b, RANDOM weights (plumbing only)"
    # Deepest point of the object, counting the image border as outside.
    inside = ndi.distance_transform_edt(np.pad(alpha >= 250, 1))[1:-1, 1:-1]
    cy, cx = np.unravel_index(int(np.argmax(inside)), inside.shape)
    point = (float(cx), float(cy))  # the deepest point of the object
    t0 = time.perf_counter()
    logits, score = prompter.predict_logits(image, points=[point], labels=[1])
    t1 = time.perf_counter()
    tri = prompter.trimap(image, points=[point], labels=[1])
    t2 = time.perf_counter()
    hard = prompter.trimap(image, points=[point], labels=[1], logit_range=(0.0, 0.0))
    dot = np.zeros((h, w), bool)
    dot[max(0, int(point[1]) - 4) : int(point[1]) + 5, max(0, int(point[0]) - 4) : int(point[0]) + 5] = True
    lg = np.clip((logits - logits.min()) / max(float(np.ptp(logits)), 1e-6) * 255, 0, 255).astype(np.uint8)
    _save(
        _tile(
            [_overlay(image, [dot], [(255, 40, 40)]), lg, tri, hard],
            [
                "click (red)",
                f"{label}: logits (first call {t1 - t0:.1f}s)",
                f"trimap (cached embedding: {t2 - t1:.2f}s)",
                "same, logit range (0, 0): band only",
            ],
        ),
        out / "trimap_sam.png",
    )
    return 0


def _strokes_in(region: np.ndarray, n: int, seed: int, length: int = 80) -> List[List[Tuple[float, float]]]:
    """``n`` straight strokes of up to ``length`` px that stay inside ``region``."""
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return []
    rng = np.random.default_rng(seed)
    h, w = region.shape
    strokes = []
    for _ in range(n):
        k = int(rng.integers(len(ys)))
        x, y = float(xs[k]), float(ys[k])
        ang = rng.uniform(0, np.pi)
        pts = [(x, y)]
        for step in range(1, length):
            px, py = x + step * np.cos(ang), y + step * np.sin(ang)
            if not (0 <= px < w and 0 <= py < h and region[int(py), int(px)]):
                break
            pts.append((px, py))
        strokes.append([pts[0], pts[-1]])
    return strokes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dev data folder (holds comp1k-crops/, comp1k-full/, gandalf/)")
    p.add_argument("--sets", nargs="+", default=["comp1k-crops", "comp1k-full", "gandalf"])
    p.add_argument("--band", default="auto", help="band radius in pixels, or 'auto' (product default)")
    p.add_argument("--band-fraction", type=float, default=None, help="band radius as a fraction of sqrt(H*W) (overrides --band)")
    p.add_argument("--no-adaptive", action="store_true", help="constant band radius")
    p.add_argument("--mask-only", action="store_true", help="mask-only band: do not let the image grow it (the pre-#4 behaviour)")
    p.add_argument("--guided-reach", type=float, default=None, help="ablation: guided-filter reach in band radii (0 turns the image evidence off)")
    p.add_argument("--image-floor", type=float, default=None, help="ablation: smart-radius floor on the image path, in band radii")
    p.add_argument("--transparency", action="store_true", help="use the image to widen the band where it looks see-through")
    p.add_argument(
        "--unknown-brush",
        action="store_true",
        help="also apply a simulated 'definitely unknown' brush over broad see-through areas (mark_unknown)",
    )
    p.add_argument("--jitter", type=float, default=3.0, help="coarse-mask boundary jitter, pixels at 512 px")
    p.add_argument("--strand", type=float, default=2.0, help="opening radius that knocks out strands, pixels at 512 px")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", default=None, help="engine weights (path or 'default') to measure end-to-end SAD (c)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed-engine", type=int, default=0, help="torch seed for the engine")
    p.add_argument("--e2e-max-side", type=int, default=640, help="run the engine only on images up to this size (0: all)")
    p.add_argument("--e2e-resize", action="store_true", help="downscale larger images to --e2e-max-side instead of skipping them")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--pictures", default=None, help="instead of the table, write docs pictures (trimap_*.png) to this folder")
    p.add_argument("--picture-sample", default="comp1k-crops/7", help="sample shown in the pictures")
    p.add_argument("--sam-checkpoint", default=None, help="SAM checkpoint for the picture (default: random weights)")
    return p


if __name__ == "__main__":
    _args = build_parser().parse_args()
    sys.exit(pictures(_args) if _args.pictures else run(_args))
