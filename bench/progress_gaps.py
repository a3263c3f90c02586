"""Longest stretches without a progress report on the 24 MP rough-selection path (issue #23).

A dev photo scaled to 6000 x 4000 and a lasso drawn around its subject (seed 0, at the
photo's own size, then scaled alike, as the host scenario's step 6 does) go through the
service's trimap computation (``trimap.from_selection``, ``edge="rough"``) under
``trimap.progress.reporting``; with ``--refine`` the default engine then refines the result
(``widen_band`` as the docker asks for a rough edge) until the prior's first report.
Every report is timed; the gaps over ``--gap`` seconds are printed with the fractions
around them, so the silent call can be found.

    PYTHONPATH=. python bench/progress_gaps.py --photo GT04 [--refine [--cancel-at 40]]
"""
from __future__ import annotations

import argparse
import os
import time
from typing import List, Tuple

import numpy as np

DEV = os.environ.get("RM_DEV_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "dev",
                                                  "alphamatting-real"))
W, H = 6000, 4000


def inputs(photo: str) -> Tuple[np.ndarray, np.ndarray]:
    """(24 MP image H x W x 3 uint8, 24 MP lasso H x W uint8 0/255) from a dev photo."""
    import cv2

    from trimap.simulate import lasso_from_alpha

    img = cv2.imread(os.path.join(DEV, "input", photo + ".png"), cv2.IMREAD_COLOR)[:, :, ::-1]
    gt = cv2.imread(os.path.join(DEV, "gt", photo + ".png"), cv2.IMREAD_GRAYSCALE) / 255.0
    lasso = lasso_from_alpha(gt, np.random.default_rng(0)).astype(np.uint8) * 255
    big = cv2.resize(np.ascontiguousarray(img), (W, H), interpolation=cv2.INTER_CUBIC)
    return big, cv2.resize(lasso, (W, H), interpolation=cv2.INTER_NEAREST)


class Timeline:
    """Reports as (seconds since the start, what, value)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.marks: List[Tuple[float, str, float]] = [(0.0, "start", 0.0)]

    def mark(self, what: str, value: float) -> None:
        self.marks.append((time.perf_counter() - self.t0, what, value))

    def gaps(self, over: float) -> List[Tuple[float, Tuple, Tuple]]:
        """(gap, report before, report after) for every gap over ``over`` s."""
        pairs = zip(self.marks, self.marks[1:])
        return [(b[0] - a[0], a, b) for a, b in pairs if b[0] - a[0] > over]


def run(photo: str, refine: bool, gap: float, cancel_at: float = 0.0) -> None:
    from trimap import progress
    from trimap.rough import from_selection

    img, lasso = inputs(photo)
    line = Timeline()
    with progress.reporting(lambda f: line.mark("trimap", f)):
        tri, edge = from_selection(lasso, img, edge="rough")
    line.mark("trimap done", 1.0)
    print(f"{photo}: trimap {line.marks[-1][0]:.2f} s, edge {edge}, {len(line.marks)} reports, "
          f"unknown {100 * (tri == 128).mean():.1f} %")
    if refine:
        line.marks += [(line.marks[-1][0] + t, w, v) for t, w, v in refine_timeline(img, tri, cancel_at).marks]
    for g, a, b in line.gaps(gap):
        print(f"  gap {g:.2f} s: {a[1]} {a[2]:.3f} @ {a[0]:.2f} s -> {b[1]} {b[2]:.3f} @ {b[0]:.2f} s")


def refine_timeline(img: np.ndarray, tri: np.ndarray, cancel_at: float) -> Timeline:
    """The default engine's refine of ``tri`` (``widen_band`` as the docker asks for a rough
    edge), timed report by report: until its first report with work done, or with
    ``cancel_at`` > 0 until Cancel, pressed that many seconds after the start (a timer
    thread, as the docker's button), has stopped it; the cancel's latency is printed."""
    import threading

    from diffmatte.engine import load_engine
    from diffmatte.errors import Cancelled

    engine = load_engine("default", device="cpu")
    first = Timeline()
    cancel = threading.Event()

    class First(Exception):
        pass

    def report(done: int, total: int) -> None:
        first.mark("refine", done / total)
        if done > 0 and cancel_at <= 0:
            raise First()
    timer = threading.Timer(cancel_at, cancel.set) if cancel_at > 0 else None
    if timer is not None:
        timer.start()
    try:
        engine.refine(img.astype(np.float32) / 255.0, tri, steps=3, seed=0, progress=report, widen_band=True,
                      cancel=cancel)
        print("refine: finished before the cancel")
    except First:
        print(f"refine: first report with work done after {first.marks[-1][0]:.2f} s")
    except Cancelled:
        first.mark("cancelled", first.marks[-1][2])
        print(f"refine: Cancel at {cancel_at:.1f} s (bar {first.marks[-2][2]:.3f}) stopped it after "
              f"{first.marks[-1][0] - cancel_at:.2f} s")
    finally:
        if timer is not None:
            timer.cancel()
    return first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", default="GT04")
    ap.add_argument("--refine", action="store_true", help="also time the refine until the prior's first report")
    ap.add_argument("--gap", type=float, default=1.0, help="print gaps over this many seconds")
    ap.add_argument("--cancel-at", type=float, default=0.0, metavar="S",
                    help="with --refine: press Cancel S seconds into the refine and time how long it takes")
    args = ap.parse_args()
    run(args.photo, args.refine, args.gap, args.cancel_at)


if __name__ == "__main__":
    main()
