"""Decontamination benchmark: foreground-colour error of cut-outs on synthetic composites.

The training generator (diffmatte.train.synth) knows the true foreground colours F of
every composite, so the error of a cut-out's colours against F can be measured where it
matters, in 0.05 < alpha < 0.95, with the TRUE alpha (the colour method is judged
alone, not the matte). Rows: raw image colours (what a cut-out without decontamination
keeps), diffmatte.finish.cutout's estimate, and pymatting's estimate_foreground_ml when
installed (reference implementation of the same method).

    python bench/cutout_decontam.py --n 40 --size 256
    python bench/cutout_decontam.py --scale      # time on a 4000 x 3000 photo with a thin soft rim
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="composites (default 40)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--no-pymatting", action="store_true")
    ap.add_argument("--scale", action="store_true", help="time a 4000 x 3000 image with an 80-px soft rim instead")
    args = ap.parse_args()
    if args.scale:
        return scale()

    from diffmatte.finish.cutout import estimate_foreground
    from diffmatte.train.photos import PhotoPool
    from diffmatte.train.synth import SynthMattingDataset

    ds = SynthMattingDataset(PhotoPool.from_dirs(), size=args.size, seed=args.seed)
    ml = None
    if not args.no_pymatting:
        try:
            from pymatting import estimate_foreground_ml as ml
        except ImportError:
            ml = None
    rows = {"raw": [], "diffmatte.finish.cutout": [], "pymatting ml": []}
    times = {"diffmatte.finish.cutout": 0.0, "pymatting ml": 0.0}
    used = 0
    for i in range(args.n):
        s = ds.raw(i)
        img, a, fg = s["image"].astype(np.float32), s["alpha"].astype(np.float32), s["fg"].astype(np.float32)
        band = (a > 0.05) & (a < 0.95)
        if band.sum() < 50:
            continue
        used += 1
        img8 = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)  # what a user's file holds
        rgb = img8.astype(np.float32) / 255

        def err(est: np.ndarray) -> float:
            return float(np.abs(est[band] - fg[band]).mean() * 255)

        rows["raw"].append(err(rgb))
        t = time.perf_counter()
        rows["diffmatte.finish.cutout"].append(err(estimate_foreground(img8, a)))
        times["diffmatte.finish.cutout"] += time.perf_counter() - t
        if ml is not None:
            if i == 0:
                ml(rgb.astype(np.float64), a.astype(np.float64))  # numba JIT outside the timing
            t = time.perf_counter()
            rows["pymatting ml"].append(err(ml(rgb.astype(np.float64), a.astype(np.float64))))
            times["pymatting ml"] += time.perf_counter() - t
    print(f"{used} composites of {args.size}x{args.size} (seed {args.seed}); mean |F_est - F| in "
          "0.05 < alpha < 0.95, 0..255 scale, true alpha")
    raw = np.mean(rows["raw"])
    for name, vals in rows.items():
        if not vals:
            continue
        m = float(np.mean(vals))
        extra = f"  {times[name] / used * 1000:7.1f} ms/image" if name in times else ""
        print(f"  {name:18s} {m:6.2f}  ({m / raw:5.3f} x raw){extra}")
    return 0


def scale() -> int:
    """Full-size photo, thin edge: the tiles cover only the soft pixels."""
    import resource

    from diffmatte.finish.cutout import estimate_foreground, finish

    h, w = 3000, 4000
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha = np.clip(0.5 - (np.hypot(yy - h / 2, xx - w / 2) - 1100) / 40, 0, 1).astype(np.float32)
    img = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
    t = time.perf_counter()
    estimate_foreground(img, alpha)
    t1 = time.perf_counter() - t
    t = time.perf_counter()
    finish(img, alpha, edges={"feather": 2})
    t2 = time.perf_counter() - t
    soft = int(((alpha > 0) & (alpha < 1)).sum())
    print(f"{w}x{h}, {soft / 1e6:.2f} M soft pixels: estimate_foreground {t1:.1f} s; finish (feather 2 + "
          f"decontaminated cut-out) {t2:.1f} s; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
