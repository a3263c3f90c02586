"""``diffmatte batch``: the command line over :func:`diffmatte.batch.run`."""
from __future__ import annotations

import argparse

EPILOG = """examples:
  diffmatte batch --images shots/ --trimaps trimaps/ -o out/
  diffmatte batch shots/ --trimaps shots/ --image-pattern '{stem}_image' --trimap-pattern '{stem}_trimap' -o out/
  diffmatte batch plates/ --masks sam_masks/ -o out/ --rgba --jobs 2
  diffmatte batch comp.psd scene.ora layers.tif --layers 'subject*' -o out/
  diffmatte batch shots/ --masks masks/ -o out/ --ray auto          # on a running Ray cluster
A rerun with the same -o skips what is done (see OUT/refine_matte_batch.jsonl)."""


def register(sub) -> None:
    from ..cli_options import _add_engine_args, _add_finish_args

    p = sub.add_parser("batch", help="refine files and folders (flat or layered) with trimaps, masks or layer masks",
                       description="Refine every image in INPUT (files and folders; PSD, OpenRaster and multi-page "
                                   "TIFF are layered) into -o OUT. Flat images give OUT/STEM.png; in layered files "
                                   "the chosen layers get the matte as their layer mask in OUT/NAME, same format. "
                                   "Everything is validated before the model loads, one bad file never stops the "
                                   "batch, inputs are never overwritten, and a rerun resumes.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files and folders (not recursive)")
    p.add_argument("--images", help="a folder of images (same as giving it as INPUT)")
    p.add_argument("--trimaps", help="folder of trimaps (0 / 128 / 255), paired by --trimap-pattern")
    p.add_argument("--masks", help="folder of masks (selection, SAM, matte), banded into trimaps with "
                                   "trimap.from_mask; used for images without a trimap")
    p.add_argument("--layers", metavar="PATTERN",
                   help="layers to refine in layered files, by name or group/name (shell pattern, e.g. 'subject*'); "
                        "where sibling names repeat, the path of each is NAME#N (N from 1 at the bottom)")
    p.add_argument("--image-pattern", default="{stem}",
                   help="which files are images: '{stem}' plus literal text, e.g. '{stem}_image' (default {stem})")
    p.add_argument("--trimap-pattern", default="{stem}",
                   help="trimap name for an image's {stem}, exact, e.g. '{stem}_trimap' (default {stem})")
    p.add_argument("--mask-pattern", default="{stem}", help="mask name for an image's {stem} (default {stem})")
    p.add_argument("--band", type=float, default=None,
                   help="unknown band radius in pixels for masks (default: automatic, see trimap.from_mask)")
    p.add_argument("--mask-edge", choices=("auto", "rough", "exact"), default="auto",
                   help="masks: rough = a region drawn around the subject (lasso, rectangle; its edge is "
                        "found inside it), exact = the outline is the subject's edge (SAM, a refined mask), "
                        "auto = decided per image (default)")
    p.add_argument("--source", choices=("layer", "composite"), default="layer",
                   help="layered files: matte the layer's own pixels (default) or the visible composite")
    p.add_argument("-o", "--output", required=True, help="output folder (created; never an input)")
    p.add_argument("--rgba", action="store_true", help="also write cut-out PNGs (STEM_cutout.png)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing files in OUT that this batch did not write (inputs: never)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes, each with its own engine (default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per worker (default: the cores divided by --jobs)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run on Ray: no ADDRESS starts a local Ray, 'auto' joins the running cluster, "
                        "or ray://HOST:PORT; --jobs sets the number of actors")
    p.add_argument("--service", action="store_true",
                   help="refine through the running engine service (diffmatte serve) instead of loading a model")
    p.add_argument("--max-megapixels", type=float, default=100.0,
                   help="refuse larger images (default 100)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary and failures")
    _add_engine_args(p)
    _add_finish_args(p)
    p.set_defaults(func=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    import json

    from ..cli_options import _finish_options, check_white_point_arg
    from .runner import run

    edges, params = _finish_options(args)  # bad edge / cut-out values fail before anything else
    check_white_point_arg(args)
    edges_json = json.dumps(edges.to_dict(), sort_keys=True) if any(edges.to_dict().values()) else ""
    quiet = args.quiet

    def echo(text: str) -> None:
        if not quiet or "FAILED" in text or " refined, " in text:
            print(text, flush=True)

    summary = run(args.inputs, args.output, images=args.images, trimaps=args.trimaps, masks=args.masks,
                  layers=args.layers, image_pattern=args.image_pattern, trimap_pattern=args.trimap_pattern,
                  mask_pattern=args.mask_pattern, rgba=args.rgba, weights=args.weights, device=args.device,
                  prior_solver=args.prior_solver,
                  steps=args.steps, seed=args.seed, samples=args.samples, bits=args.bits, band=args.band,
                  mask_edge=args.mask_edge, source=args.source, jobs=args.jobs, threads=args.threads, ray=args.ray,
                  overwrite=args.overwrite, max_megapixels=args.max_megapixels, edges=edges_json,
                  decontaminate=params["decontaminate"], premultiplied=params["premultiplied"],
                  white_point=args.white_point,
                  service=args.service, progress=not quiet, echo=echo)
    return summary.exit_code
