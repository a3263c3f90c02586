#!/usr/bin/env python
"""Pictures of the trimap generators for docs/: mask, scribbles, SAM.

    python bench/trimap_pictures.py --data ../shared/data/dev --out docs

writes ``trimap_mask.png`` (coarse mask -> constant band vs smart radius vs image
path vs the dataset trimap), ``trimap_scribbles.png`` and ``trimap_sam.png`` (SAM with
random weights unless ``--sam-checkpoint`` is given: plumbing only).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import trimap  # noqa: E402
from trimap._validate import as_trimap  # noqa: E402
from trimap.evaluate import coarse_mask_from_alpha, trimap_scores  # noqa: E402
from trimap_bench import find_samples, load_l, load_rgb  # noqa: E402


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
    """Write one picture per method (mask, scribbles, SAM) to ``args.out``; returns an exit code."""
    from scipy import ndimage as ndi

    data, out = Path(args.data), Path(args.out)
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dev data folder (holds comp1k-crops/, gandalf/)")
    p.add_argument("--out", default="docs", help="folder for the pictures")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--picture-sample", default="comp1k-crops/7", help="sample shown in the mask picture")
    p.add_argument("--sam-checkpoint", default=None, help="SAM checkpoint for the picture (default: random weights)")
    return pictures(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
