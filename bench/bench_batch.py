"""Images per hour of ``diffmatte batch`` with --jobs 1, --jobs 2 and Ray (2 workers), on the
same folder, in one run.

    python bench/bench_batch.py                      # bundled default model, 8 crops of 160 px
    python bench/bench_batch.py --weights tiny       # tiny random-weight model: the overhead only
    python bench/bench_batch.py --n 16 --size 256 --steps 10

The folder holds ``--n`` crops of the bundled sample photo (diffmatte/samples) with the
matching crops of its trimap. Each mode starts from an empty output folder; its wall time
includes starting the workers and loading the engine in each (what a user waits for);
"s/image" is the refining phase (engine loads included) per image. Ray's own start-up (ray.init) is timed separately.
The machine's load average is printed because other work skews the numbers.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_folder(folder: Path, n: int, size: int) -> tuple:
    img = Image.open(ROOT / "diffmatte" / "samples" / "sample_image.png").convert("RGB")
    tri = Image.open(ROOT / "diffmatte" / "samples" / "sample_trimap.png").convert("L")
    images, trimaps = folder / "images", folder / "trimaps"
    images.mkdir(parents=True)
    trimaps.mkdir()
    rng = np.random.default_rng(0)
    w, h = img.size
    for i in range(n):
        side = int(rng.integers(size, min(w, h) + 1))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        box = (x, y, x + side, y + side)
        img.crop(box).resize((size, size), Image.BILINEAR).save(images / f"{i:03d}.png")
        t = np.asarray(tri.crop(box).resize((size, size), Image.NEAREST))
        t = np.where(t < 64, 0, np.where(t > 192, 255, 128)).astype(np.uint8)
        if not (t == 128).any():
            t[size // 2 - 4:size // 2 + 4] = 128
        Image.fromarray(t).save(trimaps / f"{i:03d}.png")
    return images, trimaps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="images in the folder (default 8)")
    ap.add_argument("--size", type=int, default=160, help="image side in pixels (default 160)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--weights", default="default", help="'default', 'tiny' (random weights) or a checkpoint")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray row")
    args = ap.parse_args()

    from diffmatte import batch

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as d:
        d = Path(d)
        weights = args.weights
        if weights == "tiny":
            sys.path.insert(0, str(ROOT / "tests"))  # the test doubles (tests/doubles)
            from doubles.checkpoints import write_tiny_checkpoint
            weights = str(write_tiny_checkpoint(d / "tiny.safetensors"))
        images, trimaps = make_folder(d, args.n, args.size)
        print(f"{args.n} images {args.size}x{args.size}, {args.steps} steps, weights {args.weights}, "
              f"{cores} cores, load average {os.getloadavg()[0]:.1f}")
        # Every mode gets the same thread budget (all cores); '--jobs 1 --threads 1' shows
        # what one engine does with one core, the unit the others multiply.
        half = max(1, cores // 2)
        modes = [("--jobs 1 -t 1", dict(jobs=1, threads=1)),
                 ("--jobs 1", dict(jobs=1, threads=cores)),
                 ("--jobs 2", dict(jobs=2, threads=half))]
        if not args.no_ray:
            try:
                import ray
                t = time.perf_counter()
                ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
                print(f"ray.init: {time.perf_counter() - t:.1f} s (not counted below)")
                modes.append(("Ray, 2 workers", dict(ray="local", jobs=2, threads=half)))
            except ImportError:
                print("ray is not installed (pip install 'refine-matte[ray]'): no Ray row")
        print(f"{'mode':16s} {'wall s':>8s} {'images/hour':>12s} {'s/image':>8s} {'load avg':>9s}")
        outs = []
        for name, kw in modes:
            out = d / f"out{len(outs)}"
            t = time.perf_counter()
            s = batch.run([str(images)], str(out), trimaps=str(trimaps), weights=weights, steps=args.steps,
                          progress=False, echo=None, **kw)
            wall = time.perf_counter() - t
            if s.failed or s.refined != args.n:
                print(f"{name}: {s.line()}")
                return 1
            outs.append(out)
            print(f"{name:16s} {wall:8.1f} {3600 * args.n / wall:12.0f} {s.seconds / args.n:8.2f} "
                  f"{os.getloadavg()[0]:9.1f}")
        # Float results depend on the thread count per engine (summation order), so outputs
        # are compared between modes whose engines use the same number of threads.
        for (na, ka), oa in zip(modes, outs):
            for (nb, kb), ob in zip(modes, outs):
                if na < nb and ka["threads"] == kb["threads"]:
                    same = all((oa / f"{i:03d}.png").read_bytes() == (ob / f"{i:03d}.png").read_bytes()
                               for i in range(args.n))
                    print(f"outputs of '{na}' and '{nb}' ({ka['threads']} thread(s) per engine) identical: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
