#!/usr/bin/env python
"""Figure of hard cases for the product band: photo, coarse mask, band, matte.

    python bench/trimap_figure.py --data ../shared/data/dev --out docs/trimap_hard_cases.png

One row per case (default: a solid plush toy, a doll's hair, a glass), each photo
downscaled to ``--max-side``: the photo, the simulated coarse mask
(``trimap.evaluate.coarse_mask_from_alpha``), the product's band
(``trimap.from_mask(mask, image=photo)``; red = unknown over the photo, background
dimmed) and the engine's matte from that band. Captions give the band's coverage
and area against the dataset trimap and the matte's whole-image SAD.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import trimap  # noqa: E402
from trimap._validate import as_trimap  # noqa: E402
from trimap.evaluate import coarse_mask_from_alpha, sad, trimap_scores  # noqa: E402
from trimap_bench import load_l, load_rgb, resize_max  # noqa: E402

# (label, image, alpha, reference trimap) relative to --data.
CASES = [
    ("solid: plush toy (alphamatting GT05)", "alphamatting-real/input/GT05.png", "alphamatting-real/gt/GT05.png",
     "alphamatting-real/trimap2/GT05.png"),
    ("hair: trolls (alphamatting GT04)", "alphamatting-real/input/GT04.png", "alphamatting-real/gt/GT04.png",
     "alphamatting-real/trimap2/GT04.png"),
    ("glass (Composition-1k full/6)", "comp1k-full/6_image.png", "comp1k-full/6_alpha.png", "comp1k-full/6_trimap.png"),
]


def band_overlay(image: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """The photo with the unknown band in red and the background dimmed."""
    out = image.astype(np.float32)
    out[tri == 0] *= 0.35
    unk = tri == 128
    out[unk] = out[unk] * 0.45 + np.array([255, 40, 40], np.float32) * 0.55
    return out.clip(0, 255).astype(np.uint8)


def row(panels: List[np.ndarray], captions: List[str], height: int) -> Image.Image:
    ims = []
    for arr, text in zip(panels, captions):
        im = Image.fromarray(arr if arr.ndim == 3 else np.repeat(arr[..., None], 3, 2))
        im = im.resize((max(1, round(im.width * height / im.height)), height), Image.BILINEAR)
        tile = Image.new("RGB", (im.width, height + 16), "white")
        tile.paste(im, (0, 0))
        ImageDraw.Draw(tile).text((3, height + 2), text, fill="black")
        ims.append(tile)
    out = Image.new("RGB", (sum(t.width for t in ims) + 4 * (len(ims) - 1), height + 16), "white")
    x = 0
    for t in ims:
        out.paste(t, (x, 0))
        x += t.width + 4
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dev data folder (alphamatting-real/, comp1k-full/)")
    p.add_argument("--out", default="docs/trimap_hard_cases.png")
    p.add_argument("--weights", default="default")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-side", type=int, default=800, help="photos are downscaled to this long side first")
    p.add_argument("--height", type=int, default=190, help="panel height in the figure (px)")
    args = p.parse_args(argv)
    import torch

    import diffmatte

    torch.set_num_threads(args.threads)
    engine = diffmatte.load_engine(weights=args.weights, device="cpu")
    data = Path(args.data)
    rows = []
    for label, img_p, al_p, tr_p in CASES:
        if not (data / img_p).exists():
            print(f"error: {data / img_p} not found", file=sys.stderr)
            return 2
        image = resize_max(load_rgb(data / img_p), args.max_side, Image.BILINEAR)
        alpha = resize_max(load_l(data / al_p), args.max_side, Image.BILINEAR)
        ref = resize_max(as_trimap(load_l(data / tr_p)), args.max_side, Image.NEAREST)
        coarse = coarse_mask_from_alpha(alpha, seed=args.seed)
        tri = trimap.from_mask(coarse, image=image)
        sc = trimap_scores(tri, alpha, reference=ref)
        matte = engine.refine(image, tri, steps=args.steps, seed=args.seed)
        print(f"{label}: coverage {sc['coverage']:.1%}, area {sc['area_ratio']:.2f}x, SAD {sad(matte, alpha):.2f}", flush=True)
        rows.append(row(
            [image, coarse.astype(np.uint8) * 255, band_overlay(image, tri), (matte * 255).round().astype(np.uint8)],
            [label, "coarse mask (simulated SAM)",
             f"product band: cov {sc['coverage']:.0%}, area {sc['area_ratio']:.2f}x dataset",
             f"matte (default model), SAD {sad(matte, alpha):.1f}"],
            args.height))
    width = max(r.width for r in rows)
    fig = Image.new("RGB", (width, sum(r.height for r in rows) + 6 * (len(rows) - 1)), "white")
    y = 0
    for r in rows:
        fig.paste(r, (0, y))
        y += r.height + 6
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.save(tmp)
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
