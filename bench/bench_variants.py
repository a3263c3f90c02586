#!/usr/bin/env python3
"""Parameters, CPU time and peak memory per DiffMatte variant (random weights).

    python bench/bench_variants.py [--sizes 512 1024] [--steps 10] [--threads 2] [--variants ViTS lite]

Each (variant, size) runs in a fresh subprocess so peak RSS is its own. Times: one
full ``engine.refine`` with N DDIM steps (encoder once + N decoder passes), wall and
process CPU seconds of that refine; the decoder per step is read from the step
callbacks, and the encoder is timed on its own in a second, warm call.
Numbers depend on the machine and on its load: the table prints both.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(variant: str, size: int, steps: int, threads: int) -> dict:
    import resource
    import time

    import numpy as np
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT))
    from diffmatte.engine import Engine
    from diffmatte.modeling import build_model
    from diffmatte.modeling.variants import get_config
    from diffmatte.prior.solve import prior_for

    torch.manual_seed(0)
    model = build_model(get_config(variant)).eval()
    engine = Engine(model, torch.device("cpu"), "random")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    trimap = np.full((size, size), 128, np.uint8)
    trimap[: size // 4] = 0
    trimap[-size // 4:] = 255
    marks = []
    w0, c0 = time.perf_counter(), time.process_time()
    engine.refine(image, trimap, steps=steps, seed=0, callback=lambda s: marks.append(time.perf_counter()))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    per_step = (marks[-1] - marks[0]) / max(len(marks) - 1, 1)
    # The encoder alone, timed directly (warm: after the refine above).
    with torch.inference_mode():
        img_t = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        tri_t = torch.from_numpy(trimap)[None, None].float() / 255
        tri_t = torch.where(tri_t < 0.1, 0.0, torch.where(tri_t > 0.9, 1.0, 0.5))
        cond = engine.model.condition(img_t, tri_t, prior_for(engine.model.cfg.prior, img_t, tri_t))
        e0 = time.perf_counter()
        engine.model.encode(cond)
        encoder_s = time.perf_counter() - e0
    return {"variant": variant, "size": size, "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "wall_s": wall, "cpu_s": cpu, "encoder_s": encoder_s, "decoder_step_s": per_step,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
            "load1": os.getloadavg()[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=["ViTS", "ViTB", "ViTS_1024", "Res34", "lite"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.steps, args.threads)))
        return 0
    print(f"| variant | params (M) | size | total {args.steps} steps wall (s) | CPU (s) | encoder (s) | "
          f"decoder/step (s) | peak RSS (GB) | load avg |")
    print("|---|---|---|---|---|---|---|---|---|")
    for variant in args.variants:
        for size in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--child", variant, str(size), "--steps", str(args.steps),
                                  "--threads", str(args.threads)], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {variant} | - | {size} | failed: {out.stderr.strip().splitlines()[-1]} |||||")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {variant} | {r['params_m']:.2f} | {size} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                  f"{r['encoder_s']:.2f} | {r['decoder_step_s']:.2f} | {r['peak_rss_gb']:.2f} | {r['load1']:.1f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
