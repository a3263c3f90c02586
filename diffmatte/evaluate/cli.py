"""``diffmatte eval DATASET_DIR``: Composition-1k metrics for the engine and classical baselines.

Examples::

    diffmatte eval ../shared/data/dev/comp1k-crops                      # bundled model + closed-form
    diffmatte eval ../shared/data/dev --weights runs/default --baselines cf,lkm --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile


def register(subparsers) -> None:
    """Add the ``eval`` sub-command."""
    p = subparsers.add_parser("eval", help="evaluate mattes (SAD, MSE, Grad, Conn) on a dataset",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", metavar="DATASET_DIR",
                   help="folder with N_image/N_alpha/N_trimap PNGs, image/ alpha/ trimap/ sub-folders, "
                        "or a folder of such sets")
    p.add_argument("--weights", default="default",
                   help="'default', a .safetensors/.pth file, or a training run folder / .pt checkpoint")
    p.add_argument("--no-engine", action="store_true", help="evaluate the baselines only")
    p.add_argument("--steps", type=int, default=10, help="DDIM steps (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", default="",
                   help="comma-separated seeds (e.g. 0,1,2): one engine row per seed, plus the ratio of "
                        "their mean to each baseline; overrides --seed")
    p.add_argument("--samples", type=int, default=1, help="average this many samples per image (default 1)")
    p.add_argument("--device", default="auto")
    p.add_argument("--baselines", default="cf",
                   help="comma-separated classical solvers: cf, lkm, knn, or 'none' (default cf; needs pymatting)")
    p.add_argument("--limit", type=int, default=0, help="evaluate only the first N images")
    p.add_argument("--metrics", default="sad,mse,grad,conn", help="subset of sad,mse,grad,conn")
    p.add_argument("--save-dir", default="", help="also write each method's alphas here")
    p.add_argument("--figure", default="",
                   help="write a comparison sheet (image, trimap, GT, each method) to this PNG; uses --save-dir "
                        "or a temporary folder")
    p.add_argument("--figure-cases", default="",
                   help="comma-separated case names for the figure's rows (e.g. GT04@trimap1,GT08@trimap1)")
    p.add_argument("--tile", type=int, default=160, help="figure row height in px (default 160)")
    p.add_argument("--json", default="", help="write per-image and mean results to this JSON file")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--quiet", action="store_true", help="print only the final table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point; returns the exit code (2 for bad arguments, 1 if every method failed)."""
    from .baselines import BASELINES, get_baseline
    from .datasets import find_dataset
    from .metrics import METRICS
    from .runner import engine_methods, evaluate, format_table, ratio_lines

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        print(f"error: unknown metrics {bad}; choose from {', '.join(METRICS)}")
        return 2
    try:
        found = find_dataset(args.dataset)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    wanted = [c.strip() for c in getattr(args, "figure_cases", "").split(",") if c.strip()]
    missing = sorted(set(wanted) - {f[0] for f in found[: args.limit or None]})
    if missing:  # checked now, not after minutes of evaluation
        print(f"error: --figure-cases not in the dataset (or beyond --limit): {', '.join(missing)}")
        return 2
    methods = {}
    if not args.no_engine:
        if args.threads > 0:
            import torch
            torch.set_num_threads(args.threads)
        try:
            raw = getattr(args, "seeds", "")
            seeds = [int(x) for x in raw.split(",") if x.strip()] if raw else [args.seed]
        except ValueError:
            print(f"error: --seeds must be comma-separated integers, got {raw!r}")
            return 2
        try:
            fns, info = engine_methods(args.weights, args.device, args.steps, seeds, getattr(args, "samples", 1))
        except Exception as exc:  # noqa: BLE001 (WeightsError, DefaultWeightsMissing, ValueError...)
            print(f"error: cannot load weights {args.weights!r}: {exc}")
            return 2
        label = f"diffmatte-{info.get('variant', '?')}"
        for seed, fn in fns.items():
            methods[label if len(fns) == 1 else f"{label}@s{seed}"] = fn
        if not args.quiet:
            print(f"engine: {info.get('variant')} from {info.get('weights')}, {args.steps} DDIM steps, "
                  f"device {info.get('device')}")
    names = [b.strip() for b in args.baselines.split(",") if b.strip() and b.strip() != "none"]
    for b in names:
        if b not in BASELINES:
            print(f"error: unknown baseline {b!r}; known: {', '.join(BASELINES)}")
            return 2
        try:
            methods[b] = get_baseline(b)
        except ValueError as exc:
            print(f"warning: skipping baseline {b}: {exc}")
    if not methods:
        print("error: nothing to evaluate (no engine and no usable baseline)")
        return 2

    def show(method: str, name: str, row: dict, dt: float) -> None:
        if not args.quiet:
            print(f"  {method:<14} {name:<22} SAD {row.get('sad', float('nan')):7.3f}  "
                  f"MSE {row.get('mse', float('nan')) * 1e3:7.3f}e-3  ({dt:.1f} s)", flush=True)

    tmp_dir = None
    save_dir = args.save_dir or None
    if args.figure and not save_dir:
        tmp_dir = tempfile.TemporaryDirectory(prefix="diffmatte-eval-")
        save_dir = tmp_dir.name
    results = evaluate(args.dataset, methods, limit=args.limit, metrics=metrics, save_dir=save_dir, on_row=show)
    print(format_table(results))
    engines = [m for m in methods if m.startswith("diffmatte-")]
    for line in ratio_lines(results, engines, [m for m in methods if m not in engines]):
        print(line)
    if args.figure:
        from ..io.images import write_image
        from .runner import comparison_figure
        cases = [c.strip() for c in getattr(args, "figure_cases", "").split(",") if c.strip()]
        sheet = comparison_figure(args.dataset, {m: os.path.join(save_dir, m) for m in methods}, limit=args.limit,
                                  tile=getattr(args, "tile", 160), cases=cases)
        print(f"wrote {write_image(args.figure, sheet)}")
    if tmp_dir is not None:
        tmp_dir.cleanup()
    if args.json:
        payload = {"dataset": os.path.abspath(args.dataset), "steps": args.steps, "weights": args.weights,
                   "results": {r.method: {"per_image": r.rows, "mean": r.mean(), "errors": r.errors}
                               for r in results}}
        _write_json(args.json, payload)
    return 0 if any(r.rows for r in results) else 1


def _write_json(path: str, payload: dict) -> None:
    from ..io.fsutil import atomic_path

    with atomic_path(path, suffix=".json") as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2)
