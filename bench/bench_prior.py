#!/usr/bin/env python3
"""The default model's prior (information flow) on real photos: windowed vs one solve, and
incremental re-runs after a brush dab (#11). Every row measured in one run.

    python bench/bench_prior.py [--data ../shared/data/dev/alphamatting-real] [--agreement]
                                [--incremental] [--core 512] [--margins 64 32] [--limit N]

``--agreement``: every photo and trimap solved once whole (``tile=0``) and once in windows
of ``--core`` px (forced; large bands take this path by themselves), once per
``--margins`` value (the windows' context around each core): SAD against the ground
truth, mean / max |alpha difference| in the unknown region, CPU seconds.
``--incremental``: per photo (trimap1), a first refine with the default engine, then a
16 x 16 px foreground dab on the band where the ground truth is foreground, refined with
the engine's prior memo and again from scratch: wall seconds and the difference.
The machine's load average is printed: timings on a busy machine are not comparable.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEV = Path(os.environ.get("REFINE_MATTE_SHARED", ROOT.parent / "shared")) / "data" / "dev" / "alphamatting-real"


def _load(data: Path, name: str, trimap_set: str):
    from PIL import Image

    img = np.asarray(Image.open(data / "input" / name).convert("RGB"))
    tri = np.asarray(Image.open(data / trimap_set / name).convert("L")).copy()
    gt = np.asarray(Image.open(data / "gt" / name).convert("L"), np.float32) / 255
    return img, tri, gt


def agreement(data: Path, names, core: int, margins) -> None:
    from diffmatte.prior import windows
    from diffmatte.prior.solve import information_flow_alpha

    print(f"\n### Windows of {core} px (margins {', '.join(map(str, margins))} px) vs one solve\n")
    print("| trimap | photo | margin | unknown | SAD whole | SAD windows | change | mean abs diff (unknown) | max abs diff | CPU whole (s) | CPU windows (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for tset in ("trimap1", "trimap2"):
        tot = {m: np.zeros(4) for m in margins}
        diffs: dict = {m: [] for m in margins}
        for name in names:
            img, tri, gt = _load(data, name, tset)
            img = img.astype(np.float32) / 255
            c0 = time.process_time()
            a0 = information_flow_alpha(img, tri, tile=0)
            c1 = time.process_time()
            u = tri == 128
            s0 = np.abs(a0 - gt).sum() / 1000
            for m in margins:
                windows.TILE_MARGIN = m   # the module's default for every window of this solve
                c2 = time.process_time()
                a1 = information_flow_alpha(img, tri, tile=core)
                c3 = time.process_time()
                s1 = np.abs(a1 - gt).sum() / 1000
                d = np.abs(a1 - a0)
                diffs[m].append(d[u].mean())
                tot[m] += (s0, s1, c1 - c0, c3 - c2)
                print(f"| {tset} | {name[:-4]} | {m} | {u.mean():.1%} | {s0:.3f} | {s1:.3f} | "
                      f"{100 * (s1 - s0) / s0:+.2f} % | {d[u].mean():.1e} | {d.max():.3f} | {c1 - c0:.1f} | "
                      f"{c3 - c2:.1f} |", flush=True)
        n = len(names)
        for m in margins:
            t = tot[m]
            print(f"| {tset} | **mean** | {m} | | {t[0] / n:.3f} | {t[1] / n:.3f} | {100 * (t[1] - t[0]) / t[0]:+.2f} % | "
                  f"{np.mean(diffs[m]):.1e} | | {t[2]:.0f} (total) | {t[3]:.0f} (total) |", flush=True)


def incremental(data: Path, names) -> None:
    import diffmatte

    engine = diffmatte.load_engine("default", device="cpu")
    print("\n### Refine after a 16 x 16 px brush dab (default engine, trimap1)\n")
    print("| photo | unknown | first (s) | after the dab (s) | how | from scratch (s) | mean abs diff (unknown) | max abs diff | SAD after | SAD scratch |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        img, tri, gt = _load(data, name, "trimap1")
        engine.prior_memo.clear()
        t0 = time.perf_counter()
        engine.refine(img, tri)
        t1 = time.perf_counter()
        ys, xs = np.nonzero((tri == 128) & (gt > 0.9))
        if not len(ys):
            continue
        y, x = ys[len(ys) // 2], xs[len(xs) // 2]
        tri2 = tri.copy()
        tri2[max(0, y - 8):y + 8, max(0, x - 8):x + 8] = 255
        t2 = time.perf_counter()
        a1 = engine.refine(img, tri2)
        t3 = time.perf_counter()
        how = engine.prior_memo.last.how
        engine.prior_memo.clear()
        t4 = time.perf_counter()
        a2 = engine.refine(img, tri2)
        t5 = time.perf_counter()
        u = tri2 == 128
        d = np.abs(a1 - a2)
        print(f"| {name[:-4]} | {u.mean():.1%} | {t1 - t0:.1f} | {t3 - t2:.1f} | {how} | {t5 - t4:.1f} | {d[u].mean():.1e} | "
              f"{d.max():.3f} | {np.abs(a1 - gt).sum() / 1000:.3f} | {np.abs(a2 - gt).sum() / 1000:.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEV)
    ap.add_argument("--agreement", action="store_true")
    ap.add_argument("--incremental", action="store_true")
    ap.add_argument("--core", type=int, default=512, help="window core for --agreement (px)")
    ap.add_argument("--margins", type=int, nargs="+", default=None,
                    help="window margins for --agreement (px; default: the product's TILE_MARGIN)")
    ap.add_argument("--limit", type=int, default=0, help="first N photos only")
    args = ap.parse_args()
    if not (args.data / "input").is_dir():
        sys.exit(f"no dev photos at {args.data} (expected input/, gt/, trimap1/, trimap2/)")
    if not (args.agreement or args.incremental):
        sys.exit("nothing to do: pass --agreement and/or --incremental")
    names = sorted(p.name for p in (args.data / "input").iterdir())[: args.limit or None]
    print(f"# bench_prior: {len(names)} photos, {os.cpu_count()} CPUs, load avg at start {os.getloadavg()[0]:.1f}")
    if args.agreement:
        from diffmatte.prior.windows import TILE_MARGIN

        agreement(args.data, names, args.core, args.margins or [TILE_MARGIN])
    if args.incremental:
        incremental(args.data, names)
    print(f"\nload avg at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
