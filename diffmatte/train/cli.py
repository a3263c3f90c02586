"""``diffmatte train``: train, resume, fine-tune or export a DiffMatte model.

Examples::

    diffmatte train --out runs/default                      # train "lite" on synthetic data (CPU ok)
    diffmatte train --out runs/default                      # same command again: resumes from last.pt
    diffmatte train --out runs/mine --data synth /data/DIM_train --init default.safetensors
    torchrun --nproc_per_node 4 -m diffmatte train --out runs/big --variant Res34 --batch 16 --crop 512
    diffmatte train --out runs/default --export model.safetensors   # EMA weights, fp16
"""
from __future__ import annotations

import argparse

from .config import TrainConfig


def register(subparsers) -> None:
    """Add the ``train`` sub-command."""
    d = TrainConfig()
    p = subparsers.add_parser("train", help="train or fine-tune a DiffMatte model (resumable)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=d.out, help="run folder: checkpoints, train.log, metrics.jsonl (default %(default)s)")
    p.add_argument("--variant", default=d.variant, help="architecture name (default %(default)s)")
    p.add_argument("--crop", type=int, default=d.crop, help="training crop size in px (default %(default)s)")
    p.add_argument("--batch", type=int, default=d.batch, help="batch per process/GPU (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (default %(default)s)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup", type=int, default=d.warmup, help="warm-up iterations (default %(default)s)")
    p.add_argument("--max-iters", type=int, default=d.max_iters, help="total iterations (default %(default)s)")
    p.add_argument("--min-lr-factor", type=float, default=d.min_lr_factor)
    p.add_argument("--self-align-step", type=int, default=d.self_align_step,
                   help="iteration where the self-aligned (UTI) stage starts; -1: max-iters/2")
    p.add_argument("--grad-clip", type=float, default=d.grad_clip, help="gradient norm clip (0: off)")
    p.add_argument("--ema", type=float, default=d.ema, help="EMA decay (0: off; default %(default)s)")
    p.add_argument("--data", nargs="+", default=d.data, metavar="SRC",
                   help="'synth' and/or folders with fg/+alpha/ or image/+alpha/ (default synth)")
    p.add_argument("--photos", nargs="*", default=[], metavar="DIR",
                   help="extra photo folders for backgrounds and foreground textures")
    p.add_argument("--real-weight", type=float, default=d.real_weight,
                   help="share of real-folder samples when mixed with synth (default %(default)s)")
    p.add_argument("--workers", type=int, default=d.workers, help="data-loader processes (default %(default)s)")
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (0: torch default)")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N (default %(default)s)")
    p.add_argument("--amp", default=d.amp, choices=["auto", "off", "bf16", "fp16"],
                   help="autocast: auto = bf16/fp16 on CUDA, off on CPU")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                   help="keep NCHW tensors (channels_last is on by default: faster convolutions)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--ckpt-minutes", type=float, default=d.ckpt_minutes, help="save last.pt this often")
    p.add_argument("--ckpt-every", type=int, default=d.ckpt_every, help="also save every N iterations")
    p.add_argument("--keep-every", type=int, default=d.keep_every, help="keep step_N.pt every N iterations")
    p.add_argument("--eval-every", type=int, default=d.eval_every, help="evaluate every N iterations (0: off)")
    p.add_argument("--eval-steps", type=int, default=d.eval_steps, help="DDIM steps for evaluation")
    p.add_argument("--val-size", type=int, default=d.val_size, help="synthetic validation crops")
    p.add_argument("--eval-dir", default=d.eval_dir, help="real evaluation set (image/alpha/trimap) to track")
    p.add_argument("--eval-limit", type=int, default=d.eval_limit)
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--init", default=d.init, help="weights to start from (fine-tuning; ignored on resume)")
    p.add_argument("--trimap-mix", type=_mix, default=d.trimap_mix, metavar="E,D,C[,P]",
                   help="trimap style weights: erosion, dilation, coarse[, product] "
                        "(default %(default)s; product = trimap.from_mask on a SAM-like mask)")
    p.add_argument("--steps", type=int, default=0, help="stop after this many iterations in this call")
    p.add_argument("--minutes", type=float, default=d.minutes,
                   help="stop and save after this many minutes of wall time in this call (0: no limit)")
    p.add_argument("--jpeg", type=float, default=d.jpeg,
                   help="share of synthetic composites re-encoded as JPEG, quality 60-95 (default %(default)s)")
    p.add_argument("--export", metavar="DEST", default="",
                   help="do not train: write the run's weights to DEST (.safetensors) and exit")
    p.add_argument("--export-live", action="store_true", help="export the live weights instead of the EMA")
    p.add_argument("--export-fp32", action="store_true", help="export float32 instead of float16")
    p.add_argument("--preview-data", metavar="PNG", default="",
                   help="do not train: write a contact sheet of training samples (composite/alpha/trimap)")
    p.add_argument("--preview-count", type=int, default=12, help="samples on the contact sheet")
    p.set_defaults(func=run)


def _mix(text: str) -> list[float]:
    from .trimaps import check_mix

    try:
        w = [float(v) for v in text.split(",")]
        check_mix(w)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--trimap-mix {text!r}: {exc}") from None
    return w + [0.0] * (4 - len(w))


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    fields = TrainConfig().to_dict()
    values = {k: getattr(args, k) for k in fields if hasattr(args, k)}
    return TrainConfig(**{**fields, **values})


def run(args: argparse.Namespace) -> int:
    """Entry point of ``diffmatte train``; returns the process exit code."""
    if args.export:
        from .export import export_weights
        try:
            path = export_weights(args.out, args.export, use_ema=not args.export_live, half=not args.export_fp32)
        except ValueError as exc:
            print(f"error: {exc}")
            return 2
        print(f"wrote {path}")
        return 0
    cfg = config_from_args(args)
    if args.preview_data:
        return _preview(cfg, args.preview_data, args.preview_count)
    if cfg.crop % 32 != 0 or cfg.crop < 32:
        print(f"error: --crop must be a multiple of 32 (got {cfg.crop})")
        return 2
    import torch
    torch.set_flush_denormal(True)  # denormals slow CPU training by orders of magnitude
    from .loop import Trainer
    try:
        trainer = Trainer(cfg)
    except (ValueError, KeyError) as exc:
        print(f"error: {exc}")
        return 2
    try:
        trainer.run(max_steps=args.steps or None)
    finally:
        trainer.close()
    return 0


def _preview(cfg, path: str, count: int) -> int:
    import numpy as np

    from .run_setup import build_dataset
    from ..io.images import write_image
    from .preview import sample_sheet
    try:
        ds = build_dataset(cfg, cfg.seed)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    # A mixed stream delegates items; show each part's samples in turn.
    parts = getattr(ds, "datasets", [ds])
    sheets = [sample_sheet(part, range(count)) for part in parts]
    print(f"wrote {write_image(path, np.concatenate(sheets, axis=0))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m diffmatte.train.cli``) for when the main CLI is absent."""
    parser = argparse.ArgumentParser(prog="diffmatte")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
