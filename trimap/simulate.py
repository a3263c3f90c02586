"""Simulated rough input, for benchmarks and tests: what an artist really draws.

Every function takes a ground-truth alpha (H x W float in 0..1) and a numpy
``Generator`` and returns what a user would hand the product:

* :func:`lasso_from_alpha`: a freehand lasso drawn a varying 5-30 px outside the
  visible subject; it does not follow deep concavities and the holes inside the
  subject (background seen through a wicker ball or between leaves) are inside it;
* :func:`rectangle_from_alpha`: a bounding rectangle with a loose margin;
* :func:`first_strokes` / :func:`corrective_stroke`: one foreground and one
  background stroke, then one short stroke where the matte is most wrong (the
  interactive-segmentation "number of clicks" protocol).

None of this is product code: the product never sees ground truth.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np
from scipy import ndimage as ndi

Stroke = List[Tuple[float, float]]

# What counts as "the visible subject" an artist draws around.
VISIBLE = 0.05
# A mistake smaller than this (summed |error|, pixels) is not worth a stroke.
MIN_MISTAKE = 20.0


def _smooth_field(shape: Tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Smooth random field in 0..1 with features about ``scale`` pixels across."""
    h, w = shape
    k = max(1, int(scale // 4))
    small = rng.standard_normal((h // k + 2, w // k + 2))
    small = ndi.gaussian_filter(small, scale / k / 2, mode="wrap")
    big = ndi.zoom(small, k, order=1)[:h, :w]
    lo, hi = float(big.min()), float(big.max())
    return (big - lo) / max(hi - lo, 1e-9)


def visible_subject(alpha: np.ndarray) -> np.ndarray:
    """Visible subject with its holes filled: what a user means by "the subject"."""
    subj = np.asarray(alpha, np.float32) > VISIBLE
    # Specks of faint alpha far from the subject are not what anyone draws around.
    lab, n = ndi.label(subj)
    if n > 1:
        sizes = ndi.sum(subj, lab, index=np.arange(1, n + 1))
        keep = np.zeros(n + 1, bool)
        keep[1:] = sizes >= 0.002 * subj.size
        subj = keep[lab]
    return ndi.binary_fill_holes(subj)


def lasso_from_alpha(
    alpha: np.ndarray,
    rng: np.random.Generator,
    near: float = 5.0,
    far: float = 30.0,
    sloppiness: Optional[float] = None,
) -> np.ndarray:
    """A freehand lasso (H x W bool) around the subject of ``alpha``.

    The outline lies ``near`` to ``far`` pixels outside the visible subject,
    varying smoothly along it; concavities narrower than about ``sloppiness``
    pixels (default: random 10-40) are bridged, as a quick hand does; the
    subject's holes are inside the lasso. The result is a polygon with a vertex
    every few pixels, rasterised.
    """
    subj = visible_subject(alpha)
    h, w = subj.shape
    if sloppiness is None:
        sloppiness = float(rng.uniform(10.0, 40.0))
    r = int(round(sloppiness))
    if r > 0:
        pad = np.pad(subj, r + 1, mode="edge")  # the subject continues past the border
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        pad = ndi.binary_closing(pad, structure=(xx * xx + yy * yy) <= r * r)
        subj = pad[r + 1:r + 1 + h, r + 1:r + 1 + w] | subj
    field = near + (far - near) * _smooth_field((h, w), rng, scale=0.15 * math.hypot(h, w))
    dist = ndi.distance_transform_edt(~subj)
    region = ndi.binary_fill_holes(dist <= field)
    return _as_polygon(region)


def _as_polygon(region: np.ndarray) -> np.ndarray:
    """Re-draw a region as the polygon of its outline (a lasso tool's straight segments)."""
    import cv2

    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.zeros(region.shape, np.uint8)
    polys = [cv2.approxPolyDP(c, 2.0, True) for c in contours if len(c) >= 3]
    cv2.fillPoly(out, polys, 1)
    return out.astype(bool) | region


def rectangle_from_alpha(alpha: np.ndarray, rng: np.random.Generator, near: float = 5.0, far: float = 30.0) -> np.ndarray:
    """A bounding rectangle (H x W bool) with a margin of ``near``..``far`` px per side."""
    subj = visible_subject(alpha)
    h, w = subj.shape
    ys, xs = np.nonzero(subj)
    m = rng.uniform(near, far, size=4)
    y0, y1 = max(0, int(ys.min() - m[0])), min(h, int(ys.max() + m[1]) + 1)
    x0, x1 = max(0, int(xs.min() - m[2])), min(w, int(xs.max() + m[3]) + 1)
    out = np.zeros((h, w), bool)
    out[y0:y1, x0:x1] = True
    return out


def _stroke_through(core: np.ndarray, rng: np.random.Generator, length: float) -> Optional[Stroke]:
    """A short straight stroke centred on a pixel deep inside ``core`` and staying inside it."""
    if not core.any():
        return None
    depth = ndi.distance_transform_edt(core)
    cy, cx = np.unravel_index(int(np.argmax(depth)), core.shape)
    # A hand does not find the exact medial point: pick among the deepest pixels.
    deep = np.argwhere(depth >= 0.7 * depth[cy, cx])
    cy, cx = deep[rng.integers(len(deep))]
    half = min(length / 2.0, max(1.0, float(depth[cy, cx]) - 2.0))
    for _ in range(12):
        ang = rng.uniform(0.0, math.pi)
        dx, dy = half * math.cos(ang), half * math.sin(ang)
        ends = [(cx - dx, cy - dy), (cx + dx, cy + dy)]
        if all(0 <= y < core.shape[0] and 0 <= x < core.shape[1] and core[int(y), int(x)] for x, y in ends):
            return [(float(x), float(y)) for x, y in ends]
    return [(float(cx), float(cy))]


def first_strokes(alpha: np.ndarray, rng: np.random.Generator, length: float = 60.0) -> Tuple[Stroke, Stroke]:
    """One foreground stroke inside the solid subject and one background stroke."""
    a = np.asarray(alpha, np.float32)
    fg_core = ndi.binary_erosion(a > 0.98, iterations=3)
    bg_core = ndi.binary_erosion(a < 0.02, iterations=3)
    fg = _stroke_through(fg_core, rng, length)
    bg = _stroke_through(bg_core, rng, length)
    if fg is None or bg is None:
        raise ValueError("the alpha has no solid foreground or no clear background to stroke")
    return fg, bg


def corrective_stroke(
    alpha: np.ndarray, matte: np.ndarray, rng: np.random.Generator, length: float = 40.0
) -> Optional[Tuple[str, Stroke]]:
    """One short stroke where ``matte`` is most wrong: ("fg" | "bg", points), or None.

    The connected region where the matte is off by more than 0.3 from a clear truth
    (alpha > 0.9 or < 0.1) with the largest summed error gets a stroke of its true
    label through its deepest point: an artist paints over the biggest visible
    mistake, a grey haze over clear background included.
    """
    a = np.asarray(alpha, np.float32)
    m = np.asarray(matte, np.float32)
    best = None
    for label, wrong in (("fg", (a > 0.9) & (m < a - 0.3)), ("bg", (a < 0.1) & (m > a + 0.3))):
        lab, n = ndi.label(wrong)
        if n == 0:
            continue
        err = ndi.sum(np.abs(m - a), lab, index=np.arange(1, n + 1))
        k = int(np.argmax(err))
        if best is None or err[k] > best[0]:
            best = (float(err[k]), label, lab == k + 1)
    if best is None or best[0] < MIN_MISTAKE:
        return None
    stroke = _stroke_through(best[2], rng, length)
    return None if stroke is None else (best[1], stroke)
