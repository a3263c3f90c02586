"""Example: a pipeline step that refines the 'subject' layer of every layered file in a
shot folder, and the flat plates with their SAM masks, then reports what failed.

    python docs/examples/batch_pipeline.py SHOT_DIR OUT_DIR [--masks MASK_DIR] [--ray auto]

Rerunning it with the same OUT_DIR only does what is missing or changed.
"""
from __future__ import annotations

import argparse
import sys

from diffmatte import batch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("shot")
    ap.add_argument("out")
    ap.add_argument("--masks", help="folder of masks named like the plates (banded into trimaps)")
    ap.add_argument("--ray", help="Ray address ('auto' for the running cluster); local processes without it")
    args = ap.parse_args()

    summary = batch.run(
        [args.shot], args.out,
        layers="subject*",        # layered files: which layers get the refined mask
        masks=args.masks,         # flat plates: their masks; layers use their own mask/transparency
        rgba=True,                # also write decontaminated cut-out PNGs
        jobs=2, ray=args.ray,     # two engines (processes, or Ray actors)
        steps=10, seed=0,
    )
    for key, reason in summary.failed:
        print(f"needs a look: {key}: {reason}", file=sys.stderr)
    print(f"{summary.refined} refined, {summary.skipped} were already done; manifest {summary.manifest}")
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
