"""``diffmatte`` command line: refine, batch, info, convert, variants, and the
sub-commands contributed by the service, training, evaluation and download modules."""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import List, Optional

# The panel's words for a prior-only solve and its rule for which refines widen the band,
# shared (stdlib only; the plugin's only modules the CLI may import, see pyproject's contracts).
from refine_matte import widen_rule
from refine_matte.progress_text import Estimate, solving_text

from . import __version__
from .cli_options import _add_engine_args, _add_finish_args, _export_engine_options, _finish_options, check_white_point_arg
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
    decodes, or (a prior-only model) thousandths of the prior's solve, shown as "Solving the
    matte… 42 % (about 12 s left)" (the panel's words, refine_matte/progress_text.py)."""
    if not enabled:
        return None
    t0 = time.perf_counter()
    estimate = Estimate(clock=time.perf_counter)   # the time left, from the rate since the first report
    last = [""]

    def show(done: int, total: int) -> None:
        now = time.perf_counter()
        if prior_only:
            line = _solving_line(done / max(total, 1), estimate)
        else:
            line = f"{100 * done // max(total, 1):3d} % ({done}/{total} tile-steps)  {now - t0:6.1f}s"
        if line == last[0] and done != total:
            return  # the same text again: a log (stderr to a file) gets one line per change
        last[0] = line
        print(f"\r  {line:<48}", end="", file=sys.stderr, flush=True)
        if done == total:
            print(file=sys.stderr)
    return show


def _solving_line(fraction: float, estimate: Estimate) -> str:
    """"Solving the matte… 42 % (about 12 s left)" (refine_matte.progress_text: the panel's
    words and estimate); the last line, at 100 %, says no time left."""
    left = estimate.update(fraction)
    return solving_text(fraction, left if fraction < 1.0 else None)


def _trimap_levels(arr) -> tuple:
    """(fraction of pixels at a trimap level 0 / 128 / 255 (+-2), foreground px, background px,
    unknown px) of a grey or colour array on a 0..255 scale (official binning for fg / bg)."""
    import numpy as np

    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] >= 3 and _has_colour(a[..., :3]):
        return 0.0, 0, 0, a.shape[0] * a.shape[1]   # a photo: only its first value is read
    if a.dtype == np.uint8 and (a.ndim == 2 or a.shape[2] < 3):
        # an 8-bit grey trimap (nearly every one): the same rule over a histogram of its 256
        # levels, one pass (a 24 MP trimap: ~0.05 s instead of ~0.5 s)
        counts = np.bincount((a if a.ndim == 2 else a[..., 0]).ravel(), minlength=256)
        levels = np.arange(256)
        on_level = (levels <= 2) | (levels >= 253) | (np.abs(levels - 128) <= 2)
        fg, bg = int(counts[levels > 0.9 * 255].sum()), int(counts[levels < 0.1 * 255].sum())
        n = int(counts.sum())
        return float(counts[on_level].sum()) / n, fg, bg, n - fg - bg
    grey = a.astype(np.float32) * _to_255(a.dtype)
    if grey.ndim == 3:
        grey = grey[..., :3].mean(axis=2) if grey.shape[2] >= 3 else grey[..., 0]
    on_level = (grey <= 2) | (grey >= 253) | (np.abs(grey - 128) <= 2)
    fg, bg = int((grey > 0.9 * 255).sum()), int((grey < 0.1 * 255).sum())
    return float(on_level.mean()), fg, bg, grey.size - fg - bg


def _to_255(dtype) -> float:
    """The factor that puts values of ``dtype`` (16-bit, float 0..1, 8-bit) on a 0..255 scale."""
    import numpy as np

    return 255.0 / 65535.0 if dtype == np.uint16 else (255.0 if np.dtype(dtype).kind == "f" else 1.0)


def _has_colour(rgb) -> bool:
    """Whether some pixel's channels differ by more than 2 levels (on 0..255): a photo, not a
    grey trimap. A sparse sample answers for nearly every photo; only a grey-looking one is
    read in full."""
    import numpy as np

    for part in (rgb[::7, ::7], rgb):
        c = part.astype(np.float32) * _to_255(rgb.dtype)
        if np.abs(c[..., 0] - c[..., 1]).max() > 2 or np.abs(c[..., 1] - c[..., 2]).max() > 2:
            return True
    return False


def _check_inputs(image, trimap, image_path: Path, trimap_path: Path) -> None:
    """Refuse inputs that would give a wrong matte with no error: IMAGE and TRIMAP swapped,
    a photo passed as the trimap, a trimap with no foreground and no background. Warn when
    one of foreground / background is missing. ``--skip-input-checks`` turns this off."""
    trimap_ok, fg, bg, _unknown = _trimap_levels(trimap)
    image_like_trimap = _trimap_levels(image)[0] >= 0.98
    if trimap_ok < 0.9:
        pct = f"{100 * trimap_ok:.0f} %"
        if image_like_trimap:
            raise ValueError(
                f"IMAGE and TRIMAP look swapped: {image_path} has only the grey levels of a trimap "
                f"(0 / 128 / 255) and the trimap {trimap_path} has the many levels of a photo (only {pct} "
                f"of its pixels are 0, 128 or 255). Put the photo first: diffmatte refine {trimap_path} "
                f"--trimap {image_path} (--skip-input-checks runs it as given)")
        raise ValueError(
            f"the trimap {trimap_path} looks like a photo, not a trimap: only {pct} of its pixels are "
            "0 (background), 128 (unknown) or 255 (foreground). Pass the trimap with --trimap and the "
            "photo as IMAGE; a trimap can be made from a mask or scribbles in the editor "
            "(diffmatte-editor). (--skip-input-checks runs it as given)")
    if fg == 0 and bg == 0:
        raise ValueError(
            f"the trimap {trimap_path} has no foreground (255) and no background (0) pixels: everything "
            "is unknown, so the matte would come out flat (0.5 everywhere). Mark the subject's inside "
            "white and the surroundings black, leaving grey (128) only at the edges. "
            "(--skip-input-checks runs it as given)")
    if image_like_trimap:
        print(f"warning: {image_path} looks like a trimap (only the grey levels 0 / 128 / 255), not a "
              "photo; IMAGE must be the photo.", file=sys.stderr)
    if fg == 0:
        print(f"warning: the trimap {trimap_path} has no foreground (255) pixels: the matte will be "
              "mostly transparent. Mark the subject's inside white.", file=sys.stderr)
    elif bg == 0:
        print(f"warning: the trimap {trimap_path} has no background (0) pixels: the matte will be "
              "mostly opaque. Mark the surroundings black.", file=sys.stderr)


def _read_inputs(image_path: Path, trimap_path: Path, args) -> tuple:
    """(image, trimap, widen): ``widen`` when the trimap came from a rough mask, whose band
    the engine may grow where its first matte shows the band missed the edge."""
    from .io.images import check_pair, read_image, read_trimap

    image = read_image(image_path)
    trimap = read_trimap(trimap_path)
    check_pair(image, trimap)
    widen = False
    if getattr(args, "mask", None):
        trimap, edge = _trimap_from_mask(image, trimap, args)
        widen = widen_rule.widens("mask", edge) and not getattr(args, "no_widen", False)
    elif not getattr(args, "skip_input_checks", False):
        _check_inputs(image, trimap, image_path, trimap_path)
    _warn_unexplained(image, trimap)
    return image, trimap, widen


def _trimap_from_mask(image, mask, args):
    """--mask: the trimap path every front end uses (trimap.read_selection: a rectangle goes to
    the installed SAM's box prompt, as in the service), said aloud."""
    import trimap as tm

    from .io.images import write_image

    notes: list = []
    sam_box = tm.installed_sam_box(image, args.band, getattr(args, "device", "auto"))
    tri, edge = tm.read_selection(mask, image, band=args.band, edge=args.mask_edge, report=notes, sam_box=sam_box)
    if not args.quiet:
        how = {"rough": "rough: the subject's edge was found inside it",
               "sam-box": "a rectangle: SAM's box prompt found the subject in it"}.get(
                   edge, "exact: its outline is the subject's edge")
        print(f"trimap from the mask ({how}; --mask-edge chooses)", file=sys.stderr)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    if args.save_trimap:
        write_image(args.save_trimap, tri)
    return tri, edge


def _warn_unexplained(image, trimap) -> None:
    """Warn (never refuse) when a large unknown region has colours no known pixel explains."""
    from trimap.check import describe_unexplained, unexplained_region

    box = unexplained_region(image, trimap)
    if box is not None:
        print(f"warning: {describe_unexplained(box)}", file=sys.stderr)


def _refine_one(engine, image_path: Path, trimap_path: Path, out: Path, rgba: Optional[Path], args,
                inputs: Optional[tuple] = None) -> None:
    from .finish.cutout import finish
    from .io.cutout_files import read_icc, write_cutout
    from .io.images import write_alpha

    _refuse_overwrite(out, image_path, trimap_path)
    edges, params = _finish_options(args)
    image, trimap, widen = inputs if inputs is not None else _read_inputs(image_path, trimap_path, args)
    alpha = engine.refine(image, trimap, steps=args.steps, seed=args.seed, samples=getattr(args, "samples", 1),
                          progress=_progress(not args.quiet, bool(engine.info().get("prior_only"))),
                          widen_band=widen, band=getattr(args, "band", None),
                          white_point=getattr(args, "white_point", None))
    # One path for every front end (CLI, batch, service, editor): diffmatte.finish.cutout.finish.
    final, cut = finish(image, alpha, edges=edges, decontaminate=params["decontaminate"] if rgba else 0.0,
                        premultiplied=params["premultiplied"])
    write_alpha(out, final, bits=args.bits)
    if rgba is not None:
        _refuse_overwrite(rgba, image_path, trimap_path)
        write_cutout(rgba, cut, read_icc(image_path), params)


def _check_out_folder(path: Path, option: str) -> None:
    """The folder of an output must exist: a typo in -o must not create directories."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"the folder {folder} for {option} {path} does not exist; create it first "
                         "(nothing was written)")


def cmd_refine(args: argparse.Namespace) -> int:
    # Everything that can be wrong with the arguments is found before torch is imported
    # (load_engine below), so a typo answers at once.
    image = Path(args.image)
    trimap = Path(args.trimap or args.mask)
    for what, p in (("image", image), ("trimap" if args.trimap else "mask", trimap)):
        if not p.is_file():
            raise ValueError(f"{what} file not found: {p}" if not p.is_dir() else f"the {what} {p} is a folder, "
                             "not an image file")
    out = Path(args.output) if args.output else _default_out(image, "alpha")
    rgba = None
    if args.rgba is not None:
        rgba = Path(args.rgba) if args.rgba else _default_out(image, "cutout")
    _check_out_folder(out, "-o")
    if rgba is not None:
        _check_out_folder(rgba, "--rgba")
    if not args.mask:
        # options that shape the trimap made from a mask would be silently ignored
        given = [flag for flag, on in (("--band", args.band is not None), ("--mask-edge", args.mask_edge != "auto"),
                                       ("--no-widen", args.no_widen)) if on]
        if given:
            raise ValueError(f"{', '.join(given)} only applies with --mask (with --trimap the band is the "
                             "trimap's grey)")
    if args.save_trimap:
        if not args.mask:
            raise ValueError("--save-trimap needs --mask (with --trimap the trimap is already a file)")
        _check_out_folder(Path(args.save_trimap), "--save-trimap")
        _refuse_overwrite(Path(args.save_trimap), image, trimap)
    _refuse_overwrite(out, image, trimap)
    _finish_options(args)  # bad edge / cut-out values fail before the model loads
    check_white_point_arg(args)   # before torch loads
    inputs = _read_inputs(image, trimap, args)
    from .engine import load_engine

    engine = load_engine(args.weights, device=args.device, prior_solver=args.prior_solver)
    t0 = time.perf_counter()
    _refine_one(engine, image, trimap, out, rgba, args, inputs)
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
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--trimap", help="trimap image (0 / 128 / 255), same size as IMAGE")
    src.add_argument("--mask", help="a selection or mask instead of a trimap (white = subject, same size as "
                                    "IMAGE): a rough lasso or rectangle around the subject, or an exact mask")
    p.add_argument("--mask-edge", choices=("auto", "rough", "exact"), default="auto",
                   help="with --mask: rough = drawn around the subject (its edge, holes and hair are found "
                        "inside it), exact = the outline is the subject's edge (SAM, a refined mask), auto = "
                        "decided from the image (default)")
    p.add_argument("--band", type=float, default=None, metavar="PX",
                   help="with --mask: unknown band radius in pixels (default: from the image size)")
    p.add_argument("--save-trimap", metavar="PATH", help="with --mask: also write the trimap it made")
    p.add_argument("--no-widen", action="store_true",
                   help="with a rough --mask: solve once (about half the time), without growing the band "
                        "where the first matte shows it missed the subject's edge")
    p.add_argument("-o", "--output", help="alpha PNG to write (default: IMAGE_alpha.png)")
    p.add_argument("--rgba", nargs="?", const="", default=None, metavar="PATH",
                   help="also write the RGBA cut-out (default path: IMAGE_cutout.png; 16-bit for 16-bit "
                        "input, ICC profile kept, colours decontaminated, parameters stored in the file)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("--skip-input-checks", action="store_true",
                   help="run even when TRIMAP looks like a photo, IMAGE and TRIMAP look swapped or the trimap "
                        "has no foreground and no background (refused by default: the matte would be wrong)")
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
