"""Background inside a rough trimap's unknown region that the colour models are sure of.

A box's trimap leaves large zones unknown: its corners and sides hold backdrop the
segmentation kept, inside porous zones (rough.py) where background-like colour is dense.
The matte explains every unknown pixel by the known colours *nearby*, so where such a zone
holds a backdrop whose nearest known background is far away (the other side of the box),
it fills the zone with the subject (the rectangle bench's GT04: dark trees above two
trolls' hair turned opaque; 43.9 -> 35.0 with this rule, most of the trees still opaque).

Pixels of those zones that the segmentation's colour models call background with
confidence are background; only the solid cores count (an erosion: thin gaps between
strands and small patterns in the subject stay unknown), and only far from the certain
foreground (the band next to the subject's edge, where faint strands lie over the
backdrop, stays unknown). They give the matte background samples where it needs them.

Used for a box only (``trimap.box_of``), as geodesic.py's start is: a lasso's outline follows
the subject, and on the lasso bench the same rule was a gain on one seed and a loss on the
others (three seeds: 203.5 -> 204.6). Measured with ``bench/rough_bench.py --inputs rect``
(docs/TRIMAP.md, "Session 19").
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage as ndi

from ._distance import within
from ._validate import FG, UNKNOWN

# Log-likelihood ratio background : foreground above which an unknown pixel's colour is
# sure background (rough.py's "background-like" starts at -2; 4 gave 102.9 / 108.6 on the
# rectangle bench's seeds 0 / 1, 2 gave 98.0 / 104.3, against 109.9 / 108.5 without the rule).
SURE_LLR = 2.0
# The sure pixels' mask is eroded by this many pixels: thin runs (gaps between strands,
# small patterns in the subject's own colours) are not cores.
CORE_ERODE = 2
# Only pixels at least this many band radii from the certain foreground (1: 100.9 / 109.0).
MIN_DEPTH = 2.0


def sure_background(tri: np.ndarray, llr: np.ndarray, band: float,
                    region: Optional[np.ndarray] = None) -> np.ndarray:
    """Unknown pixels of ``tri`` (H x W uint8 trimap) that are background for certain
    (H x W bool): ``llr`` (H x W, background : foreground) above ``SURE_LLR`` over a core
    that survives a ``CORE_ERODE`` px erosion, at least ``MIN_DEPTH`` band radii from the
    certain foreground, and inside ``region`` when given."""
    unknown = tri == UNKNOWN
    if not unknown.any() or not (tri == FG).any():
        return np.zeros(tri.shape, bool)
    sure = np.asarray(llr) > SURE_LLR
    if CORE_ERODE > 0:
        sure = ndi.binary_erosion(sure, iterations=CORE_ERODE)
    out = unknown & sure
    if region is not None:
        out &= region
    if out.any():
        out &= ~within(tri == FG, MIN_DEPTH * band)
    return out

