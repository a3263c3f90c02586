"""The working copy's size: the rough path's steps that need not see every pixel (GrabCut,
the random walker, the focus map) run on a copy of at most a given number of pixels."""
from __future__ import annotations

import math
from typing import Tuple


def working_size(shape: Tuple[int, ...], max_pixels: int) -> Tuple[float, Tuple[int, int]]:
    """``(scale, (h, w))`` of a copy of an image of ``shape`` holding at most ``max_pixels``
    (scale 1.0 and the image's own size when it already does; each side at least 2)."""
    h, w = int(shape[0]), int(shape[1])
    scale = min(1.0, math.sqrt(max_pixels / float(h * w)))
    return scale, (max(2, round(h * scale)), max(2, round(w * scale)))
