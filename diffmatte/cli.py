"""``diffmatte`` command line: refine, batch, info, convert, variants, and the
sub-commands contributed by the service, training, evaluation and download modules."""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import List, Optional

from . import __version__
from .cli_options import _add_engine_args, _add_finish_args, _export_engine_options, _finish_options
from .errors import Cancelled, DefaultWeightsMissing, WeightsError

# Sub-command modules with a ``register(subparsers)`` function, imported lazily so a
# missing optional part never breaks the rest of the CLI.
_PLUGGED = ("diffmatte.batch.cli", "diffmatte.service.cli", "diffmatte.train.cli", "diffmatte.evaluate.cli",
            "diffmatte.weights.cli")


def _default_out(image: Path, suffix: str) -> Path:
    return image.with_name(f"{image.stem}_{suffix}.png")


def _refuse_overwrite(out: Path, *inputs: Path) -> None:
    for src in inputs:
        if out.resolve() == src.resolve():
            raise ValueError(f"output {out} would overwrite the input {src}; choose another -o path")


def _progress(enabled: bool, prior_only: bool = False):
    """``progress(done, total)`` printer: the engine counts encoder tiles and tile x step
    decodes, or (a prior-only model) thousandths of the prior's solve."""
    if not enabled:
        return None
    t0 = time.perf_counter()

    def show(done: int, total: int) -> None:
        what = "prior solve" if prior_only else f"{done}/{total} tile-steps"
        print(f"\r  {100 * done // max(total, 1):3d} % ({what})  {time.perf_counter() - t0:6.1f}s",
              end="", file=sys.stderr, flush=True)
        if done == total:
            print(file=sys.stderr)
    return show


def _refine_one(engine, image_path: Path, trimap_path: Path, out: Path, rgba: Optional[Path], args) -> None:
    from .finish.cutout import finish
    from .io.cutout_files import read_icc, write_cutout
    from .io.images import read_image, read_trimap, write_alpha

    _refuse_overwrite(out, image_path, trimap_path)
    edges, params = _finish_options(args)
    image = read_image(image_path)
    trimap = read_trimap(trimap_path)
    alpha = engine.refine(image, trimap, steps=args.steps, seed=args.seed, samples=getattr(args, "samples", 1),
                          progress=_progress(not args.quiet, bool(engine.info().get("prior_only"))))
    # One path for every front end (CLI, batch, service, editor): diffmatte.finish.cutout.finish.
    final, cut = finish(image, alpha, edges=edges, decontaminate=params["decontaminate"] if rgba else 0.0,
                        premultiplied=params["premultiplied"])
    write_alpha(out, final, bits=args.bits)
    if rgba is not None:
        _refuse_overwrite(rgba, image_path, trimap_path)
        write_cutout(rgba, cut, read_icc(image_path), params)


def cmd_refine(args: argparse.Namespace) -> int:
    from .engine import load_engine

    image = Path(args.image)
    trimap = Path(args.trimap)
    for p in (image, trimap):
        if not p.is_file():
            raise ValueError(f"file not found: {p}")
    out = Path(args.output) if args.output else _default_out(image, "alpha")
    rgba = None
    if args.rgba is not None:
        rgba = Path(args.rgba) if args.rgba else _default_out(image, "cutout")
    _finish_options(args)  # bad edge / cut-out values fail before the model loads
    engine = load_engine(args.weights, device=args.device)
    t0 = time.perf_counter()
    _refine_one(engine, image, trimap, out, rgba, args)
    if not args.quiet:
        print(f"wrote {out}" + (f" and {rgba}" if rgba else "") + f" ({time.perf_counter() - t0:.1f}s, "
              f"{engine.info()['variant']} on {engine.device})")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .engine import load_engine

    engine = load_engine(args.weights, device=args.device)
    for k, v in engine.info().items():
        print(f"{k:10s} {v}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .weights.checkpoint import convert_to_safetensors

    src, dest = Path(args.src), Path(args.dest)
    if dest.exists() and not args.force:
        raise ValueError(f"{dest} exists; pass --force to replace it")
    _refuse_overwrite(dest, src)
    convert_to_safetensors(src, dest, half=args.half)
    print(f"wrote {dest}")
    return 0


def cmd_variants(args: argparse.Namespace) -> int:
    from .modeling.variants import VARIANTS

    for name, cfg in VARIANTS.items():
        enc = f"ViT d={cfg.embed_dim}" if cfg.backbone == "vit" else f"ResNet-D {list(cfg.widths)}"
        print(f"{name:10s} {enc:24s} decoder {list(cfg.downsample_in)} / {list(cfg.upsample_in)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffmatte", description="DiffMatte matting engine (Refine Matte).")
    parser.add_argument("--version", action="version", version=f"diffmatte {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("refine", help="refine one image + trimap into an alpha matte",
                       description="Refine IMAGE with TRIMAP (0 = bg, 128 = unknown, 255 = fg) into an alpha PNG.")
    p.add_argument("image", help="input image (PNG, JPEG, TIFF; 8 or 16 bit)")
    p.add_argument("--trimap", required=True, help="trimap image, same size as IMAGE")
    p.add_argument("-o", "--output", help="alpha PNG to write (default: IMAGE_alpha.png)")
    p.add_argument("--rgba", nargs="?", const="", default=None, metavar="PATH",
                   help="also write the RGBA cut-out (default path: IMAGE_cutout.png; 16-bit for 16-bit "
                        "input, ICC profile kept, colours decontaminated, parameters stored in the file)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    _add_engine_args(p)
    _add_finish_args(p)
    p.set_defaults(func=cmd_refine)

    p = sub.add_parser("info", help="load a checkpoint and print its variant, size and device")
    p.add_argument("--weights", default="default")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="validate a checkpoint and convert it to safetensors")
    p.add_argument("src", help="official .pth (or .npz / .safetensors)")
    p.add_argument("dest", help="output .safetensors")
    p.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    p.add_argument("--force", action="store_true", help="replace DEST if it exists")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("variants", help="list the known architectures")
    p.set_defaults(func=cmd_variants)

    for module in _PLUGGED:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that part is not part of this install
            _register_unavailable(sub, module, exc)
            continue
        mod.register(sub)
    return parser


def _register_unavailable(sub, module: str, exc: ImportError) -> None:
    """Keep the rest of the CLI usable when an optional part lacks a dependency."""
    name = {"diffmatte.batch.cli": "batch", "diffmatte.service.cli": "serve", "diffmatte.train.cli": "train",
            "diffmatte.evaluate.cli": "eval", "diffmatte.weights.cli": "download"}[module]

    def unavailable(args: argparse.Namespace) -> int:
        print(f"error: `diffmatte {name}` is unavailable: {exc}. Install the project with its extras "
              f"(see README).", file=sys.stderr)
        return 2
    p = sub.add_parser(name, help=f"(unavailable: missing dependency {exc.name})")
    p.set_defaults(func=unavailable)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        _export_engine_options(args)
        return int(args.func(args) or 0)
    except DefaultWeightsMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (ValueError, WeightsError, FileNotFoundError, MemoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
