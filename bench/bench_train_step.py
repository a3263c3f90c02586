"""Training-step time with NCHW vs channels_last tensors (the `--no-channels-last` switch).

Random weights and random batches; both layouts are timed alternately in one run, so the
ratio holds even on a busy machine.

    python bench/bench_train_step.py                       # lite, 256 px, batch 4, 2 threads
    python bench/bench_train_step.py --variant Res34 --crop 512 --batch 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from diffmatte.modeling import build_model  # noqa: E402
from diffmatte.train.objective import DiffusionObjective  # noqa: E402
from diffmatte.modeling.variants import get_config  # noqa: E402


def step_times(variant: str, crop: int, batch: int, fmt: torch.memory_format, steps: int, warmup: int) -> list[float]:
    """Seconds per forward + backward + AdamW step (normal mode), after ``warmup`` steps."""
    torch.manual_seed(0)
    model = build_model(get_config(variant)).to(memory_format=fmt)
    objective = DiffusionObjective(model)
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    image = torch.rand(batch, 3, crop, crop).contiguous(memory_format=fmt)
    trimap = (torch.rand(batch, 1, crop, crop) > 0.5).float().contiguous(memory_format=fmt)
    x0 = torch.rand(batch, 1, crop, crop) * 2 - 1
    noise, t = torch.randn_like(x0), torch.rand(batch)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        loss = (objective(image, trimap, x0, noise, t, t, False) - x0).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="lite")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=4, help="timed steps per layout and round")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds of both layouts")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    layouts = {"NCHW": torch.contiguous_format, "channels_last": torch.channels_last}
    results: dict[str, list[float]] = {name: [] for name in layouts}
    for _ in range(args.rounds):
        for name, fmt in layouts.items():
            results[name] += step_times(args.variant, args.crop, args.batch, fmt, args.steps, warmup=2)
    print(f"{args.variant}, {args.crop} px, batch {args.batch}, {args.threads} threads, CPU")
    print("| layout | median s/step | min s/step |")
    print("|---|---|---|")
    for name, times in results.items():
        print(f"| {name} | {statistics.median(times):.3f} | {min(times):.3f} |")
    ratio = statistics.median(results["NCHW"]) / statistics.median(results["channels_last"])
    print(f"\nchannels_last speed-up (median NCHW / median channels_last): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
