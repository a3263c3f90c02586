#!/usr/bin/env python
"""Experiment: tighten a generous trimap with a first matting pass ("two-pass trimap").

Issue #4 asks for >= 98 % coverage of the true transition at <= 1.5x the dataset
trimap's unknown area. A band drawn from a mask cannot know where the strands are
(``bench/trimap_oracle.py``); this script tests the obvious next idea, letting a
matting pass find them:

1. simulate the coarse mask as ``bench/trimap_bench.py`` does and build a *generous*
   trimap (``trimap.from_mask`` on the image path, band ``--wide`` x the default);
2. matte it (the engine, or a pymatting baseline with ``--solver cf``) at most
   ``--max-side`` pixels on the long side, upsample the alpha;
3. new unknown = pixels whose predicted alpha lies in ``(--lo, --hi)``, grown by
   ``--grow`` x the default band, kept inside the generous band; fg/bg from
   predicted alpha >= 0.5.

It reports (a) coverage and (b) area as ``trimap_bench.py`` does, for the generous
trimap and the tightened one, plus how hazy the first pass is: the median and 90th
percentile of predicted alpha on true-background pixels of the generous band.

    python bench/trimap_two_pass.py --data ../shared/data/dev --weights default
    python bench/trimap_two_pass.py --data ../shared/data/dev --solver cf --sets comp1k-crops
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import trimap  # noqa: E402
from trimap._validate import as_trimap  # noqa: E402
from trimap.evaluate import coarse_mask_from_alpha, trimap_scores  # noqa: E402
from trimap_bench import find_samples, load_l, load_rgb, resize_max  # noqa: E402


def tighten(pred: np.ndarray, generous: np.ndarray, lo: float, hi: float, grow: float) -> np.ndarray:
    """Trimap from a first-pass alpha: partial predictions (grown) are unknown, within ``generous``'s band."""
    partial = (pred > lo) & (pred < hi)
    unknown = (ndi.distance_transform_edt(~partial) <= grow) & (generous == 128)
    tri = np.where(pred >= 0.5, np.uint8(255), np.uint8(0))
    tri[unknown] = 128
    return tri


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--sets", nargs="+", default=["comp1k-crops", "gandalf", "comp1k-full"])
    p.add_argument("--solver", default="engine", choices=["engine", "cf", "lkm"])
    p.add_argument("--weights", default="default", help="engine weights (solver engine)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--wide", type=float, default=2.0, help="generous band, times the default band")
    p.add_argument("--max-side", type=int, default=512, help="first pass at most this long side")
    p.add_argument("--lo", type=float, default=0.02)
    p.add_argument("--hi", type=float, default=0.98)
    p.add_argument("--grow", type=float, default=0.5, help="grow partial predictions by this x the default band")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    if args.solver == "engine":
        import diffmatte

        engine = diffmatte.load_engine(weights=args.weights, device="cpu")

        def solve(img: np.ndarray, tri: np.ndarray) -> np.ndarray:
            return engine.refine(img, tri, steps=args.steps, seed=args.seed)
    else:
        from diffmatte.evaluate.baselines import get_baseline

        baseline = get_baseline(args.solver)

        def solve(img: np.ndarray, tri: np.ndarray) -> np.ndarray:
            return baseline(img / 255.0, tri)

    print("| sample | generous: cov / area | tightened: cov / area | pass-1 alpha on true bg: median / p90 | sec |")
    print("|---|---|---|---|---|")
    rows = []
    for name, img_p, al_p, tr_p in find_samples(Path(args.data), args.sets):
        image, alpha, ref = load_rgb(img_p), load_l(al_p), as_trimap(load_l(tr_p))
        coarse = coarse_mask_from_alpha(alpha, seed=args.seed)
        band = trimap.default_band(alpha.shape)
        generous = trimap.from_mask(coarse, band=args.wide * band, image=image)
        t0 = time.perf_counter()
        small = solve(resize_max(image, args.max_side, Image.BILINEAR), resize_max(generous, args.max_side, Image.NEAREST))
        pred = np.asarray(Image.fromarray(np.clip(small, 0, 1).astype(np.float32), mode="F")
                          .resize(alpha.shape[::-1], Image.BILINEAR))
        dt = time.perf_counter() - t0
        tight = tighten(pred, generous, args.lo, args.hi, args.grow * band)
        s0 = trimap_scores(generous, alpha, reference=ref)
        s1 = trimap_scores(tight, alpha, reference=ref)
        true_bg = (generous == 128) & (alpha == 0)
        haze = np.percentile(pred[true_bg], [50, 90]) if true_bg.any() else (0.0, 0.0)
        rows.append((s1["coverage"], s1["area_ratio"]))
        print(f"| {name} | {s0['coverage']:.1%} / {s0['area_ratio']:.2f}x | {s1['coverage']:.1%} / "
              f"{s1['area_ratio']:.2f}x | {haze[0]:.3f} / {haze[1]:.3f} | {dt:.1f} |", flush=True)
    if not rows:
        print("error: no samples found", file=sys.stderr)
        return 2
    cov, area = np.array(rows).T
    both = int(((cov >= 0.98) & (area <= 1.5)).sum())
    print(f"\ntightened: mean coverage {cov.mean():.1%}, mean area {area.mean():.2f}x; "
          f"coverage >= 98 % on {(cov >= 0.98).sum()}/{len(rows)}, area <= 1.5x on {(area <= 1.5).sum()}/{len(rows)}, "
          f"both on {both}/{len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
