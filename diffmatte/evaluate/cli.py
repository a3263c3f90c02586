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


class _Refused(Exception):
    """Bad arguments: printed as ``error: <message>``, exit code 2."""


def run(args: argparse.Namespace) -> int:
    """Entry point; returns the exit code (2 for bad arguments, 1 if every method failed)."""
    from .runner import evaluate

    try:
        metrics = _metrics_and_cases(args)
        methods: dict = {}
        if not args.no_engine:
            _add_engine(args, methods)
        _add_baselines(args, methods)
    except _Refused as exc:
        print(f"error: {exc}")
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
    _print_results(args, results, methods, save_dir)
    if tmp_dir is not None:
        tmp_dir.cleanup()
    if args.json:
        payload = {"dataset": os.path.abspath(args.dataset), "steps": args.steps, "weights": args.weights,
                   "results": {r.method: {"per_image": r.rows, "mean": r.mean(), "errors": r.errors}
                               for r in results}}
        _write_json(args.json, payload)
    return 0 if any(r.rows for r in results) else 1


def _metrics_and_cases(args: argparse.Namespace) -> list:
    """The metrics asked for, after checking them, the dataset and the figure's cases."""
    from .datasets import find_dataset
    from .metrics import METRICS

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise _Refused(f"unknown metrics {bad}; choose from {', '.join(METRICS)}")
    try:
        found = find_dataset(args.dataset)
    except ValueError as exc:
        raise _Refused(str(exc))
    wanted = [c.strip() for c in getattr(args, "figure_cases", "").split(",") if c.strip()]
    missing = sorted(set(wanted) - {f[0] for f in found[: args.limit or None]})
    if missing:  # checked now, not after minutes of evaluation
        raise _Refused(f"--figure-cases not in the dataset (or beyond --limit): {', '.join(missing)}")
    return metrics


def _add_engine(args: argparse.Namespace, methods: dict) -> None:
    """The engine, once per seed (``diffmatte-<variant>`` or ``...@s<seed>``)."""
    from .runner import engine_methods

    if args.threads > 0:
        import torch
        torch.set_num_threads(args.threads)
    try:
        raw = getattr(args, "seeds", "")
        seeds = [int(x) for x in raw.split(",") if x.strip()] if raw else [args.seed]
    except ValueError:
        raise _Refused(f"--seeds must be comma-separated integers, got {raw!r}")
    try:
        fns, info = engine_methods(args.weights, args.device, args.steps, seeds, getattr(args, "samples", 1))
    except Exception as exc:  # noqa: BLE001 (WeightsError, DefaultWeightsMissing, ValueError...)
        raise _Refused(f"cannot load weights {args.weights!r}: {exc}")
    label = f"diffmatte-{info.get('variant', '?')}"
    for seed, fn in fns.items():
        methods[label if len(fns) == 1 else f"{label}@s{seed}"] = fn
    if not args.quiet:
        print(f"engine: {info.get('variant')} from {info.get('weights')}, {args.steps} DDIM steps, "
              f"device {info.get('device')}")


def _add_baselines(args: argparse.Namespace, methods: dict) -> None:
    """The baselines asked for (one that cannot run here is skipped with a warning)."""
    from .baselines import BASELINES, get_baseline

    names = [b.strip() for b in args.baselines.split(",") if b.strip() and b.strip() != "none"]
    for b in names:
        if b not in BASELINES:
            raise _Refused(f"unknown baseline {b!r}; known: {', '.join(BASELINES)}")
        try:
            methods[b] = get_baseline(b)
        except ValueError as exc:
            print(f"warning: skipping baseline {b}: {exc}")
    if not methods:
        raise _Refused("nothing to evaluate (no engine and no usable baseline)")


def _print_results(args: argparse.Namespace, results: list, methods: dict, save_dir) -> None:
    """The table, the engine-to-baseline ratios and (``--figure``) the comparison sheet."""
    from .runner import format_table, ratio_lines

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


def _write_json(path: str, payload: dict) -> None:
    from ..io.fsutil import atomic_path

    with atomic_path(path, suffix=".json") as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2)
