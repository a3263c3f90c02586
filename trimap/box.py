"""Is a selection a plain rectangle? Then it says less than a lasso: only the subject's
extent. Segment Anything's box prompt answers that question far better than colour
models (GrabCut from a box leaves background of subject-like colour inside it, and a
box touching three borders leaves almost no background to learn from; docs/TRIMAP.md,
"Rough input"), so a front end with SAM installed sends such a selection there."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ._validate import as_mask

# Smaller boxes are strokes or dabs, not a subject's extent.
MIN_BOX_SIDE = 8


def box_of(mask: object) -> Optional[Tuple[int, int, int, int]]:
    """``(x0, y0, x1, y1)`` (pixel coordinates, inclusive) when the selection (>= 0.5
    inside) is exactly one filled axis-aligned rectangle that leaves part of the image
    outside; otherwise None (a lasso, a feathered or an empty selection, the whole image)."""
    hard = as_mask(mask, "mask") >= 0.5
    rows, cols = np.flatnonzero(hard.any(1)), np.flatnonzero(hard.any(0))
    if not len(rows):
        return None
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    if min(y1 - y0, x1 - x0) + 1 < MIN_BOX_SIDE or hard.all():
        return None
    if int(hard.sum()) != (y1 - y0 + 1) * (x1 - x0 + 1):
        return None   # something inside the bounding box is not selected: not a rectangle
    return x0, y0, x1, y1
