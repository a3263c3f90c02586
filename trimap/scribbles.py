"""Trimaps from scribbles: foreground, background and "definitely unknown" strokes.

The fg/bg strokes are propagated to a full segmentation with scikit-image's
random walker, which follows image edges (the walker's edge weights fall with
colour difference). The segmentation is then banded like a mask
(:func:`trimap.band.from_mask`), and finally the strokes are painted on top:
strokes always win over propagation.

scikit-image comes with the optional ``walker`` extra, not with the default install: no
front end uses the walker any more (the service's scribbles route is
:func:`trimap.from_region`). Without it :func:`from_scribbles` raises an ``ImportError``
that names the extra and the command that adds it (:data:`MISSING_WALKER`).
"""
from __future__ import annotations

import math
import warnings
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage as ndi

from ._distance import distance, within
from ._scale import working_size
from ._validate import BG, FG, UNKNOWN, as_image, as_mask, check_same_shape
from .band import from_mask

# The random walker solves a sparse linear system per call; beyond this many
# pixels it runs on a downscaled copy and the probability map is upsampled
# (the band around the boundary absorbs the lost precision). The direct solver
# ("bf") is used: with edge-sensitive weights the system is ill-conditioned and
# conjugate gradients took 20-30 s on a 320 x 320 crop where the direct solve
# takes about 2 s (measured on the dev machine, 2 shared cores).
MAX_WALKER_PIXELS = 100_000
# Random walker edge sensitivity (skimage's beta) for colours in 0..1.
WALKER_BETA = 130.0
# Walker probabilities inside this range count as uncertain (-> unknown).
PROB_SOFT_RANGE = (0.2, 0.8)
#: The error without scikit-image (worded as ``diffmatte.errors.missing_extra``; trimap does not
#: import diffmatte).
MISSING_WALKER = ("trimap.from_scribbles (the random walker) needs scikit-image, from the optional "
                  "'walker' extra, which the default install leaves out: .venv/bin/pip install -e "
                  "'.[walker]' in the checkout (pip install 'refine-matte[walker]' elsewhere); "
                  "trimap.from_region takes the same strokes without it")


def strokes_to_mask(
    shape: Tuple[int, int],
    strokes: Iterable[Sequence[Tuple[float, float]]],
    radius: float = 2.0,
) -> np.ndarray:
    """Rasterise polyline strokes into an H x W bool mask.

    ``strokes`` is an iterable of strokes, each a sequence of (x, y) points in
    pixel coordinates; ``radius`` is the brush radius. Points outside the image
    are allowed (a stroke may run off the edge): only the part inside is drawn.
    Raises ``ValueError`` for malformed points.
    """
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"shape must be positive, got {shape!r}")
    if not (math.isfinite(radius) and radius >= 0):
        raise ValueError(f"radius must be a finite number >= 0, got {radius!r}")
    centres = np.zeros((h, w), bool)
    for k, stroke in enumerate(strokes):
        pts = np.asarray(stroke, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
            raise ValueError(f"stroke {k} must be a non-empty list of (x, y) points, got shape {pts.shape}")
        if not np.all(np.isfinite(pts)):
            raise ValueError(f"stroke {k} has NaN or infinite coordinates")
        if len(pts) == 1:
            pts = np.repeat(pts, 2, axis=0)
        for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
            n = int(math.ceil(max(abs(x1 - x0), abs(y1 - y0)) * 2)) + 1
            xs = np.rint(np.linspace(x0, x1, n)).astype(np.int64)
            ys = np.rint(np.linspace(y0, y1, n)).astype(np.int64)
            inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
            centres[ys[inside], xs[inside]] = True
    if radius < 0.5 or not centres.any():
        return centres
    return within(centres, radius)


def _stroke(arr: Optional[np.ndarray], shape: Tuple[int, int], name: str) -> np.ndarray:
    if arr is None:
        return np.zeros(shape, bool)
    m = as_mask(arr, name)
    check_same_shape(shape, m, name, "image")
    return m >= 0.5


def propagate(image: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Foreground probability (H x W float32) from fg/bg seeds by random walker.

    ``image`` is H x W x 3 float in 0..1; ``fg``/``bg`` are bool seed masks.
    """
    try:
        from skimage.segmentation import random_walker  # heavy import, only when used
    except ImportError:
        raise ImportError(MISSING_WALKER, name="skimage") from None

    h, w = fg.shape
    scale, size = working_size((h, w), MAX_WALKER_PIXELS)
    if scale < 1.0:
        img_s = _resize(image, size, order=1)
        # Seeds must survive downscaling: any seed pixel in a cell marks it.
        fg_s = _resize(fg.astype(np.float32), size, order=1) > 0.0
        bg_s = _resize(bg.astype(np.float32), size, order=1) > 0.0
        both = fg_s & bg_s
        fg_s &= ~both
        bg_s &= ~both
        if not fg_s.any() or not bg_s.any():
            # Strokes too thin to survive; fall back to full resolution.
            img_s, fg_s, bg_s, scale = image, fg, bg, 1.0
    else:
        img_s, fg_s, bg_s = image, fg, bg
    if not (~(fg_s | bg_s)).any():
        # Every pixel is a seed: nothing to propagate (and skimage's random walker
        # then returns the labels instead of probabilities).
        p_fg = fg_s.astype(np.float32)
    elif float(img_s.std()) < 1e-6:
        # A flat image has no edges to follow (and skimage divides by its std).
        p_fg = nearest_seed_probability(fg_s, bg_s)
    else:
        labels = np.zeros(fg_s.shape, np.int32)
        labels[bg_s] = 1
        labels[fg_s] = 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            prob = random_walker(
                img_s, labels, beta=WALKER_BETA, mode="bf", channel_axis=-1, return_full_prob=True
            )
        if prob.ndim != 3 or prob.shape[0] != 2 or prob.shape[1:] != fg_s.shape:
            # skimage answers with labels, not probabilities, in corner cases it warns
            # about; the edge-blind fallback is still a valid answer.
            prob = np.stack([1.0 - nearest_seed_probability(fg_s, bg_s),
                             nearest_seed_probability(fg_s, bg_s)])
        p_fg = prob[1].astype(np.float32)
        bad = ~np.isfinite(p_fg)
        if bad.any():  # a singular system; fall back to the nearest stroke there
            p_fg[bad] = nearest_seed_probability(fg_s, bg_s)[bad]
    if scale < 1.0:
        p_fg = _resize(p_fg, (h, w), order=1)
    return np.clip(p_fg, 0.0, 1.0)


def nearest_seed_probability(fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Edge-blind fallback: 1 near fg strokes, 0 near bg strokes, 0.5 halfway."""
    d_fg = distance(~fg)
    d_bg = distance(~bg)
    return (d_bg / np.maximum(d_fg + d_bg, 1e-6)).astype(np.float32)


def _resize(arr: np.ndarray, size: Tuple[int, int], order: int) -> np.ndarray:
    """Resize the first two axes of ``arr`` to ``size`` (H, W)."""
    zoom = (size[0] / arr.shape[0], size[1] / arr.shape[1]) + (1.0,) * (arr.ndim - 2)
    out = ndi.zoom(arr, zoom, order=order, mode="nearest", grid_mode=True)
    return out[: size[0], : size[1]]


def from_scribbles(
    image: np.ndarray,
    fg: np.ndarray,
    bg: np.ndarray,
    unknown: Optional[np.ndarray] = None,
    band: Optional[float] = None,
    *,
    adaptive: bool = True,
    transparency: bool = False,
) -> np.ndarray:
    """Make a trimap from stroke masks over ``image``.

    Args:
        image: H x W x 3 (or grey / RGBA) uint8, uint16 or float 0..1 image.
        fg, bg: H x W stroke masks (bool, uint8 or float; >= 0.5 is painted)
            for foreground and background.
        unknown: optional H x W mask of "definitely unknown" strokes (hair, glass).
        band: unknown band radius in pixels around the propagated boundary
            (``None``: the default of :func:`trimap.band.default_band`).
        adaptive, transparency: as in :func:`trimap.from_mask`.

    Returns:
        H x W uint8 trimap (0/128/255). Stroke pixels keep their stroke's
        label whatever the propagation says; a pixel painted both fg and bg
        becomes unknown; unknown strokes win over fg/bg strokes.

    Raises:
        ValueError: sizes differ, or there is no fg stroke or no bg stroke
        (propagation needs both).
        ImportError: scikit-image (the optional ``walker`` extra) is not installed; the
        message says how to add it.
    """
    img = as_image(image)
    shape = img.shape[:2]
    fg_m = _stroke(fg, shape, "fg")
    bg_m = _stroke(bg, shape, "bg")
    unk_m = _stroke(unknown, shape, "unknown")
    conflict = fg_m & bg_m
    fg_seed = fg_m & ~conflict & ~unk_m
    bg_seed = bg_m & ~conflict & ~unk_m
    if not fg_seed.any():
        raise ValueError("from_scribbles needs at least one foreground stroke (fg is empty)")
    if not bg_seed.any():
        raise ValueError("from_scribbles needs at least one background stroke (bg is empty)")

    p_fg = propagate(img, fg_seed, bg_seed)
    tri = from_mask(
        p_fg,
        band=band,
        adaptive=adaptive,
        soft_range=PROB_SOFT_RANGE,
        image=img if transparency else None,
        transparency=transparency,
    )
    tri[fg_seed] = FG
    tri[bg_seed] = BG
    tri[conflict | unk_m] = UNKNOWN
    return tri
