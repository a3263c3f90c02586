"""Where a photo is out of focus: the background a selection leaves no room to learn from.

GrabCut learns the background's colours from outside the selection. A box drawn around a
subject that fills the frame leaves almost nothing outside (a rectangle touching three
borders covers 96-100 % of the photo), and the colour models then keep grass, sky or bokeh
as foreground (the rectangle bench's worst photos: SAD 68-110 against 2-14 for the dataset's
trimap). A subject worth matting is usually the part of the photo in focus, and its
background is blurred by the lens. So in that case the segmentation starts from a focus
map instead of "all of it foreground": pixels whose fine detail is weak (below an Otsu split
of the selection's own values) and that reach the photo's border through such pixels start
as background (:func:`background_start`: a backdrop runs off the frame, a smooth face inside
sharp hair does not), the rest as foreground, and GrabCut's colour models and graph cut take
it from there (rough.py).

The measure is the local energy of the image minus a 1-pixel blur (what a lens's defocus
removes first), smoothed over a window and read on a log scale. Defocus is a matter of
pixels, so it is read on a copy of at most ``MAX_FOCUS_PIXELS`` (a 24 MP photo's backdrop
blurred over 20 px is still blurred over 4 px there), not on the segmentation's 120k-pixel
copy: there a plush toy's fur was as soft as the grass behind it (the rectangle bench's
GT07: 110 -> 270 instead of 110 -> 5.8).

Measured with ``bench/rough_bench.py --inputs rect`` (docs/TRIMAP.md, "Session 16"). Used
for every selection it would fire on, it made photos with room outside the box worse (a
plant whose shadowed leaves look soft: 10.9 -> 49.7), so it stays the fallback for the
boxes that leave under ``rough.MIN_OUTSIDE_SHARE`` outside.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._scale import working_size

# Fine detail: the image minus its blur at this sigma (pixels).
DETAIL_SIGMA = 1.0
# The window the detail's energy is averaged over, as a share of the image's diagonal
# (6 px on an 800 x 500 photo).
WINDOW_SHARE = 0.0064
# The focus map is read on a copy of at most this many pixels.
MAX_FOCUS_PIXELS = 1_000_000
# Below this spread (in decades of energy) the photo has no focus contrast to split.
MIN_SPREAD = 0.5


def focus_map(img8: np.ndarray) -> np.ndarray:
    """log10 of the local fine-detail energy of an 8-bit BGR image (H x W x 3), H x W
    float32: high where the photo is sharp. Read at the image's own scale (see above)."""
    import cv2

    grey = cv2.cvtColor(img8, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    detail = grey - cv2.GaussianBlur(grey, (0, 0), DETAIL_SIGMA)
    window = max(1.0, WINDOW_SHARE * float(np.hypot(*grey.shape)))
    energy = cv2.GaussianBlur(detail * detail, (0, 0), window)
    return np.log10(energy + 1e-7)


def blurred(img8: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Pixels of ``where`` (a bool grid of any size covering the whole image, e.g. the
    segmentation's downscaled one) that are out of focus in the 8-bit BGR ``img8``: split
    from the sharp ones by Otsu's threshold over ``where``'s focus values. All False when
    ``where`` holds no focus contrast (a flat or uniformly sharp photo)."""
    import cv2

    where = np.asarray(where, bool)
    out = np.zeros(where.shape, bool)
    if not where.any():
        return out
    scale, (h, w) = working_size(img8.shape, MAX_FOCUS_PIXELS)
    if scale < 1.0:
        img8 = cv2.resize(img8, (w, h), interpolation=cv2.INTER_AREA)
    level = focus_map(img8)
    if level.shape != where.shape:
        level = cv2.resize(level, (where.shape[1], where.shape[0]), interpolation=cv2.INTER_AREA)
    inside = level[where]
    lo, hi = float(inside.min()), float(inside.max())
    if hi - lo < MIN_SPREAD:
        return out
    scaled = np.round((inside - lo) / (hi - lo) * 255.0).astype(np.uint8)
    split, _ = cv2.threshold(scaled.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    out[where] = scaled <= split
    return out


def background_start(img8: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The out-of-focus pixels of ``where`` (as :func:`blurred`) that reach the photo's
    border through out-of-focus pixels: a backdrop runs off the frame, while a smooth patch
    that sharp detail encloses (a doll's face inside her hair, a toy's smooth belly) is the
    subject's own. Select All on the dev photos: GT08 94.2 -> 14.4, GT11 28.0 -> 5.3, GT04
    37.6 -> 33.6 (docs/TRIMAP.md, session 16)."""
    soft = blurred(img8, where)
    if not soft.any():
        return soft
    parts, _ = ndi.label(soft)
    rim = np.concatenate([parts[0], parts[-1], parts[:, 0], parts[:, -1]])
    return np.isin(parts, np.unique(rim[rim > 0]))
