"""A GPU burst: train for a fixed wall-clock budget, export, and leave everything in one folder.

    python -m diffmatte.train.burst --out $OUT --minutes 8 --photos .carry/photos \
        --init diffmatte/weights/default.safetensors [--resume last.pt]

Made for lent GPU machines with minutes, not hours: the run first measures its own speed
for a few dozen iterations, then sets the cosine schedule's length so that the learning
rate has decayed when the time is up. A later burst resumes from the ``last.pt`` that an
earlier one left (``--resume``), with the optimiser, EMA and step count. The folder ends up
with ``last.pt``, ``<variant>-step<N>.safetensors`` (EMA, fp16), ``train.log`` and
``metrics.jsonl``. Needs only torch, numpy, scipy and pillow (scikit-image, from the optional
``walker`` extra, adds its sample photos to the default photo folders).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from .config import TrainConfig
from .state import LAST


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m diffmatte.train.burst", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="run folder (checkpoints, logs, export)")
    p.add_argument("--minutes", type=float, required=True, help="wall-clock budget for training")
    p.add_argument("--variant", default="lite_cf")
    p.add_argument("--init", default="", help="weights to start from on a fresh run")
    p.add_argument("--resume", default="", help="a last.pt from an earlier burst to continue")
    p.add_argument("--photos", nargs="*", default=[], help="photo folders for the synthetic composites")
    p.add_argument("--crop", type=int, default=384)
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--workers", type=int, default=15)
    p.add_argument("--ema", type=float, default=0.998)
    p.add_argument("--jpeg", type=float, default=0.4)
    p.add_argument("--trimap-mix", default="0.3,0.3,0.15,0.25")
    p.add_argument("--self-align-frac", type=float, default=0.4,
                   help="the self-aligned stage starts at this fraction of the burst's iterations")
    p.add_argument("--probe-steps", type=int, default=40, help="iterations used to measure the speed")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    from .export import export_weights
    from .loop import Trainer

    t_start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.resume:
        if not Path(args.resume).is_file():
            print(f"error: --resume {args.resume} not found", file=sys.stderr)
            return 2
        if Path(args.resume).resolve() != (out / LAST).resolve():
            shutil.copy2(args.resume, out / LAST)
    mix = [float(v) for v in args.trimap_mix.split(",")]
    cfg = TrainConfig(out=str(out), variant=args.variant, crop=args.crop, batch=args.batch, lr=args.lr,
                      warmup=min(100, args.probe_steps), max_iters=10 ** 7, self_align_step=10 ** 7,
                      ema=args.ema, photos=list(args.photos), workers=args.workers, device="auto",
                      seed=args.seed, ckpt_minutes=2.0, eval_every=0, log_every=20, init=args.init,
                      trimap_mix=mix + [0.0] * (4 - len(mix)), jpeg=args.jpeg, keep_every=0)
    torch.backends.cudnn.benchmark = True
    trainer = Trainer(cfg)
    try:
        first = trainer.step
        t0 = time.time()
        trainer.run(max_steps=args.probe_steps)
        spi = (time.time() - t0) / max(trainer.step - first, 1)
        left = args.minutes * 60 - (time.time() - t_start)
        # The probe includes the data workers' start-up, so the warm speed is somewhat better;
        # the time limit stops the run if the plan was too long.
        more = max(int(left / spi * 1.15), 0)
        # The cosine schedule is planned to end when the time runs out.
        trainer.cfg.max_iters = trainer.step + more
        trainer.cfg.warmup = min(cfg.warmup, trainer.step)
        trainer.cfg.self_align_step = first + int((trainer.step + more - first) * args.self_align_frac)
        trainer.cfg.minutes = max(left / 60, 0.1)
        trainer.log(f"speed {spi:.3f} s/it: {more} more iterations planned in {left / 60:.1f} min")
        trainer.run()
    except Exception as exc:  # noqa: BLE001 - keep what was trained: export the last checkpoint
        trainer.log(f"burst stopped by {exc!r}; exporting the last checkpoint")
        trainer.save("error")
    finally:
        trainer.close()
    dest = out / f"{args.variant}-step{trainer.step}.safetensors"
    export_weights(out, dest)
    print(f"exported {dest} after {(time.time() - t_start) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
