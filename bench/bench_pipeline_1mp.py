#!/usr/bin/env python
"""What the default pipeline costs on a 1-megapixel photo: prior solve, network, total,
next to closed-form matting, all in one run.

A real dev photo (alphamatting.com layout) is resized to about 1 MP with its trimap
(nearest), so the unknown band has a real photo's shape:

    python bench/bench_pipeline_1mp.py --data ../shared/data/dev/alphamatting-real --case GT04 --threads 2

Times are wall seconds of this process; say what else the machine was doing when quoting.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load(data: Path, case: str, trimap_set: str, megapixels: float):
    img = Image.open(data / "input" / f"{case}.png").convert("RGB")
    tri = Image.open(data / trimap_set / f"{case}.png").convert("L")
    s = (megapixels * 1e6 / (img.width * img.height)) ** 0.5
    size = (round(img.width * s), round(img.height * s))
    image = np.asarray(img.resize(size, Image.LANCZOS), np.float32) / 255.0
    trimap = np.asarray(tri.resize(size, Image.NEAREST))
    return image, trimap


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="alphamatting-style folder (input/, trimap1/, trimap2/)")
    p.add_argument("--case", default="GT04")
    p.add_argument("--trimap", default="trimap1")
    p.add_argument("--megapixels", type=float, default=1.0)
    p.add_argument("--weights", default="default")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-cf", action="store_true", help="skip the closed-form row (needs pymatting)")
    args = p.parse_args(argv)

    import torch

    import diffmatte
    from diffmatte.prior.solve import solve_prior

    torch.set_num_threads(args.threads)
    image, trimap = load(Path(args.data), args.case, args.trimap, args.megapixels)
    h, w = trimap.shape
    unknown = float(((trimap > 0) & (trimap < 255)).mean())
    engine = diffmatte.load_engine(weights=args.weights, device="cpu")
    kind = getattr(engine.model.cfg, "prior", "")
    rows = []
    if kind:
        t0 = time.perf_counter()
        tri01 = np.where(trimap < 64, 0.0, np.where(trimap > 191, 1.0, 0.5)).astype(np.float32)
        solve_prior(kind, torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(tri01)[None, None])
        rows.append((f"prior '{kind}' alone", time.perf_counter() - t0))
    t0 = time.perf_counter()
    engine.refine(image, trimap, steps=args.steps, seed=0)
    total = time.perf_counter() - t0
    rows.append((f"default pipeline ({engine.info()['variant']}, {args.steps} steps)", total))
    if kind and engine.info().get("prior_only"):
        rows.append(("  network passes: none (prior-only model)", float("nan")))
    elif kind:
        rows.append(("  of which the network (total - prior)", total - rows[0][1]))
    if not args.no_cf:
        from diffmatte.evaluate.baselines import get_baseline

        cf = get_baseline("cf")
        warm = np.full((32, 32), 128, np.uint8)
        warm[:, :4], warm[:, -4:] = 0, 255
        cf(image[:32, :32], warm)  # pymatting's JIT compile, not counted
        t0 = time.perf_counter()
        cf(image, trimap)
        rows.append(("closed-form (pymatting)", time.perf_counter() - t0))
    print(f"{args.case} {args.trimap} resized to {w}x{h} ({w * h / 1e6:.2f} MP), {unknown:.1%} unknown, "
          f"{args.threads} threads, torch {torch.__version__}")
    print(f"{'what':<52} {'wall s':>8}")
    for name, sec in rows:
        print(f"{name:<52} {sec:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
