"""Re-estimate a model's BatchNorm statistics from fresh training batches.

Why: BatchNorm running statistics are buffers, updated by every forward pass in training
mode, so one batch that goes non-finite poisons them for good even when the optimiser
step is skipped (this happened in the first GPU burst: weights fine, every running mean
NaN). The statistics are a function of the weights and the data only, so they can be
measured again afterwards:

    python -m diffmatte.train.recalibrate IN.safetensors OUT.safetensors --batches 40
"""
from __future__ import annotations

import argparse
from typing import Iterable

import torch
from torch import nn

from ..diffusion import Schedule, normalize_xt
from ..modeling import DiffMatteModel
from ..prior.solve import prior_for


@torch.no_grad()
def recalibrate_bn(model: DiffMatteModel, batches: Iterable[dict[str, torch.Tensor]], seed: int = 0) -> int:
    """Reset every BatchNorm layer and average its statistics over ``batches`` (cumulative
    mean, as if momentum were 1/n). Inputs follow the training objective: x_t from the
    ground truth at a uniformly drawn t. Returns the number of batches used."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    schedule = Schedule(scale=model.cfg.scale)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.train()
    n = 0
    try:
        for batch in batches:
            image, alpha, trimap = batch["image"], batch["alpha"], batch["trimap"]
            x0 = alpha * 2 - 1
            t = torch.rand(x0.shape[0], generator=gen)
            noise = torch.randn(x0.shape, generator=gen)
            c = model.condition(image, trimap, prior_for(model.cfg.prior, image, trimap))
            feats = model.encode(c)
            model.decode(feats, c, normalize_xt(schedule.q_sample(x0, t, noise)), t)
            n += 1
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        model.train(was_training)
    return n


def _sanitised(src: str, dest: str) -> str:
    """``src`` with non-finite BatchNorm buffers reset (mean 0, var 1), so the loader, which
    refuses non-finite tensors, accepts it; every other tensor must already be finite."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(src, "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for k, v in tensors.items():
        if torch.isfinite(v.float()).all():
            continue
        if k.endswith("running_mean"):
            tensors[k] = torch.zeros_like(v)
        elif k.endswith("running_var"):
            tensors[k] = torch.ones_like(v)
        else:
            raise ValueError(f"{src}: weight {k} is not finite; recalibration fixes BatchNorm statistics only")
    tmp = dest + ".sanitised.safetensors"
    save_file(tensors, tmp, metadata=meta)
    return tmp


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m diffmatte.train.recalibrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("dest")
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=384)
    p.add_argument("--photos", nargs="*", default=[])
    p.add_argument("--trimap-mix", default="0.3,0.3,0.15,0.25")
    p.add_argument("--seed", type=int, default=12345)
    args = p.parse_args(argv)

    from torch.utils.data import DataLoader

    from ..weights import load_model, save_safetensors
    from .photos import PhotoPool, default_photo_dirs
    from .synth import SynthMattingDataset

    model = load_model(_sanitised(args.src, args.dest))
    mix = [float(v) for v in args.trimap_mix.split(",")]
    pool = PhotoPool.from_dirs(default_photo_dirs() + list(args.photos))
    ds = SynthMattingDataset(pool, size=args.crop, seed=args.seed, trimap_mix=mix + [0.0] * (4 - len(mix)))
    loader = DataLoader(torch.utils.data.Subset(ds, range(args.batches * args.batch)), batch_size=args.batch)
    import os
    os.unlink(args.dest + ".sanitised.safetensors")
    n = recalibrate_bn(model, loader, seed=args.seed)
    bad = [k for k, v in model.state_dict().items() if not torch.isfinite(v.float()).all()]
    if bad:
        print(f"error: still non-finite after recalibration: {bad[:5]}")
        return 1
    print(f"recalibrated BatchNorm over {n} batches of {args.batch}; wrote "
          f"{save_safetensors(model.eval(), args.dest, half=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
