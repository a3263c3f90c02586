"""Command-line options shared by ``diffmatte refine`` and the sub-commands that run the
engine (``diffmatte batch``): engine options (weights, device, steps, memory, tiles) and
the edge / cut-out options, with their checks. Kept apart from ``cli.py`` so a
sub-command's module does not import the command line that loads it."""
from __future__ import annotations

import argparse


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default="default",
                   help="checkpoint: 'default' (bundled model), an official DiffMatte .pth, .safetensors or .npz")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    add_prior_solver_arg(p)
    p.add_argument("--steps", type=int, default=10,
                   help="DDIM steps, 1..1000 (default 10; the bundled default model runs no diffusion: "
                        "its matte is its prior, the same for any steps, seed and samples)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial noise (default 0, reproducible)")
    p.add_argument("--samples", type=int, default=1,
                   help="average this many samples from seeds seed, seed+1, ... (less noise-dependent; "
                        "costs that many times the decoder steps; default 1)")
    p.add_argument("--bits", type=int, choices=(8, 16), default=8, help="alpha PNG bit depth (default 8)")
    p.add_argument("--max-memory", metavar="SIZE", default=None,
                   help="memory a refine may use, e.g. 4G or 512M (default: from free RAM / VRAM); tiles are "
                        "sized to fit and a refine that cannot fit is refused before it starts")
    p.add_argument("--white-point", type=float, default=None, metavar="A",
                   help="default model: its prior's alpha at or above A becomes opaque and partial alpha "
                        "is stretched by 1/A (0.5..1, default 0.97: no grey veil inside solid subjects; "
                        "1 keeps the prior's own alpha, for glass)")
    p.add_argument("--tile-size", type=int, metavar="PX", default=None,
                   help="largest decoder tile in pixels, a multiple of 32 (default: automatic; 0: always the "
                        "whole image, the pre-tiling path)")


def check_white_point_arg(args: argparse.Namespace) -> None:
    """Refuse a --white-point outside 0.5..1 before torch is imported (prior/white_point.py is numpy only)."""
    if getattr(args, "white_point", None) is None:
        return
    from .prior.white_point import check_white_point

    check_white_point(args.white_point, "--white-point")


def add_prior_solver_arg(p: argparse.ArgumentParser) -> None:
    """--prior-solver (refine, batch and serve): where the default model's prior runs."""
    p.add_argument("--prior-solver", choices=("auto", "numpy", "torch"), default="auto",
                   help="where the default model's prior (neighbour searches, weights, linear solve) runs: "
                        "auto (the default: torch on a CUDA --device, numpy on the CPU), numpy, or torch on "
                        "--device (on a CPU: slower, for tests; not yet timed on a GPU)")


def _export_engine_options(args: argparse.Namespace) -> None:
    """--max-memory / --tile-size become the defaults of every engine this process (and the
    batch workers it starts) loads: DIFFMATTE_MAX_MEMORY / DIFFMATTE_TILE_SIZE."""
    import os

    if getattr(args, "max_memory", None) is not None:
        from .sampling.memory import parse_bytes  # (imports torch: only when the option is given)

        parse_bytes(args.max_memory)  # a bad size fails here, before any model loads
        os.environ["DIFFMATTE_MAX_MEMORY"] = str(args.max_memory)
    if getattr(args, "tile_size", None) is not None:
        if args.tile_size != 0 and (args.tile_size % 32 or not 64 <= args.tile_size <= 16384):
            raise ValueError(f"--tile-size must be 0 or a multiple of 32 in 64..16384, got {args.tile_size}")
        os.environ["DIFFMATTE_TILE_SIZE"] = str(args.tile_size)


def _add_finish_args(p: argparse.ArgumentParser) -> None:
    """Edge controls and cut-out options (diffmatte.finish.edges / diffmatte.finish.cutout)."""
    g = p.add_argument_group("edges and cut-out (applied to the matte; the engine is not re-run)")
    g.add_argument("--shift-edge", type=float, default=0.0, metavar="PX", help="move the edge out (+) or in (-), px")
    g.add_argument("--feather", type=float, default=0.0, metavar="PX", help="feather radius, px")
    g.add_argument("--contrast", type=float, default=0.0, metavar="PCT", help="edge contrast 0..100 %%")
    g.add_argument("--smooth", type=float, default=0.0, metavar="PX", help="smooth jagged contours, 0..20 px")
    g.add_argument("--decontaminate", type=float, default=1.0, metavar="AMOUNT",
                   help="cut-out colour decontamination 0..1 (default 1: old background colour removed "
                        "from hair and glass; 0 keeps the raw colours)")
    g.add_argument("--premultiplied", action="store_true", help="write the cut-out with premultiplied colours")


def _finish_options(args) -> tuple:
    """(EdgeParams, result-parameter dict) from parsed args; checked before any engine work."""
    from .finish.edges import EdgeParams

    edges = EdgeParams(shift=getattr(args, "shift_edge", 0.0), feather=getattr(args, "feather", 0.0),
                       contrast=getattr(args, "contrast", 0.0), smooth=getattr(args, "smooth", 0.0))
    amount = float(getattr(args, "decontaminate", 1.0))
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"--decontaminate must lie in [0, 1], got {amount}")
    params = {"steps": args.steps, "seed": args.seed, "samples": getattr(args, "samples", 1),
              "edges": edges.to_dict(), "decontaminate": amount,
              "premultiplied": bool(getattr(args, "premultiplied", False))}
    return edges, params
