"""Trimaps from rough input: a lasso, a rectangle, a feathered selection or a few strokes.

An artist's selection is a *region of interest*, not the subject's edge: a lasso drawn
a few to a few dozen pixels outside the subject, with the background seen through
holes (between leaves, inside a wicker ball) still inside it. Banding its outline
(:func:`trimap.from_mask`) puts the unknown band on the lasso line, and the matte is
then the lasso with a soft edge. So the edge is found first:

1. **Segmentation** (:func:`segment`): colour models with a graph cut (GrabCut, Rother
   et al. 2004, OpenCV's implementation) on a copy of at most ``MAX_SEGMENT_PIXELS``:
   outside the region is background for certain, inside it "probably foreground"
   (where the region leaves almost nothing outside, its out-of-focus part starts as
   "probably background": focus.py; inside a plain rectangle, what smooth colour joins to
   the outside does: geodesic.py); strokes are hard labels. The result is upsampled; the band absorbs the lost detail.
   Enclosed holes whose colour is unlike the background around the subject (eyes, a dark
   patch) are its own features and go back to it (holes.py).
2. **Colour evidence**: GrabCut's own Gaussian mixtures give every pixel a log-likelihood
   ratio background : foreground. Pixels of the segmented subject whose colour the
   background explains better (holes, gaps between strands, background seen through
   fur) are not certain foreground: they and a few pixels around them become unknown,
   and where such pixels are dense (a hair or foliage volume) the whole zone does.
3. **Band** the segmentation's edge as :func:`trimap.from_mask` does for an accurate
   mask (smart radius, strands found in the image); background-labelled pixels next to
   the band whose colour is not clearly background join it (strands the cut lost);
   everything outside the region stays background, and the strokes are painted on top.
   Inside a box, the backdrop the colour models are sure of far from the subject is
   background (sure_background.py).

Measured with ``bench/rough_bench.py`` (docs/TRIMAP.md, "Rough input").
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
from scipy import ndimage as ndi

from ._distance import distance, within
from ._validate import BAND_ROWS, BG, FG, UNKNOWN, as_image, as_mask, check_band, check_same_shape, stroke_masks
from .band import default_band, from_mask
from .colour_models import llr_map
from ._scale import working_size
from .box import box_of
from .focus import background_start
from .geodesic import near_outside
from .holes import LocalBackground, feature_holes, local_background
from .sure_background import sure_background
from . import progress

# GrabCut runs on a copy of at most this many pixels. The lasso bench's sum was the
# same at 120k as at 250k (92.61 / 92.62; 700k: 93.78) at half the time; the band
# absorbs the detail lost in the downscaling.
MAX_SEGMENT_PIXELS = 120_000
SEGMENT_ITERATIONS = 5
# Log-likelihood ratio (background : foreground) above which a segmented pixel's
# colour counts as background-like, and how far around such pixels the band reaches.
BG_LIKE_LLR = -2.0
BG_LIKE_GROW = 4
# Where background-like pixels make up more than this share of the subject within a
# band radius, the whole zone is unknown (hair, fur and foliage volumes).
POROUS_SHARE = 0.2
# A mask is taken as rough when the segmentation drops more than this share of a
# ring just inside its outline (an exact mask's inner ring is the subject).
ROUGH_RING_SHARE = 0.35
SURE_BG_LLR = 1.0
# Outside the segmented subject but inside the selection, within this many band radii of
# the band, pixels whose colour is not clearly background (llr below OUTER_BG_LLR) join
# the unknown region: strands GrabCut cut off (the lasso bench: 92.6 -> 89.5).
OUTER_REACH = 3.0
OUTER_BG_LLR = 2.0

EDGE_MODES = ("rough", "exact", "auto")
# The colour models learn the background from outside the selection: below this share of
# the photo (a box drawn around a subject that fills the frame) they learn too little, and
# background inside the selection (grass, bokeh) stayed foreground (the rectangle bench's
# boxes leaving under 5 % outside: 0.75-113 SAD). There the segmentation starts from the
# photo's focus instead (focus.py), and the user is still told.
MIN_OUTSIDE_SHARE = 0.05


class RoughInputWarning(UserWarning):
    """The rough input gives the segmentation too little to go on; the message says what
    to do. Front ends show it with the result (service header ``X-Trimap-Warning``, CLI)."""


@dataclass
class Segmentation:
    """The subject found inside a region: ``fg`` (H x W bool) and ``llr``, the per-pixel
    log-likelihood ratio background : foreground of the fitted colour models."""

    fg: np.ndarray
    llr: np.ndarray


def _bgr8(image: np.ndarray) -> np.ndarray:
    """8-bit BGR copy (OpenCV's order) of a 0..1 RGB image, in reported bands of rows (#23)."""
    h = image.shape[0]
    out = np.empty(image.shape, np.uint8)
    for y0 in range(0, h, BAND_ROWS):
        band = image[y0:y0 + BAND_ROWS] * 255.0
        band += 0.5
        out[y0:y0 + BAND_ROWS] = band.astype(np.uint8)[:, :, ::-1]
        progress.report(min(1.0, (y0 + BAND_ROWS) / h))
    return out


def _resize(arr: np.ndarray, size: Tuple[int, int], nearest: bool) -> np.ndarray:
    import cv2

    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return cv2.resize(arr, (size[1], size[0]), interpolation=interp)


def segment(
    image: np.ndarray,
    region: Optional[np.ndarray] = None,
    fg: Optional[np.ndarray] = None,
    bg: Optional[np.ndarray] = None,
    *,
    prior: Optional[np.ndarray] = None,
    max_pixels: int = MAX_SEGMENT_PIXELS,
    iterations: int = SEGMENT_ITERATIONS,
) -> Segmentation:
    """Find the subject inside ``region`` (and/or from ``fg``/``bg`` strokes) by GrabCut.

    Args:
        image: H x W x 3 float image in 0..1 (see :func:`trimap._validate.as_image`).
        region: H x W bool; outside it is background for certain. ``None``: the whole image.
        fg, bg: H x W bool hard labels (strokes), or ``None``.
        prior: H x W float 0..1, where the unlabelled inside starts as foreground
            (>= 0.5) or background; ``None``: all of it foreground.
    """
    import cv2

    h, w = image.shape[:2]
    scale, size = working_size((h, w), max_pixels)
    with progress.part(0.0, 0.15):
        img8 = _bgr8(image)

    small = _resize(img8, size, nearest=False) if scale < 1.0 else img8
    start = np.ones((h, w), bool) if prior is None else np.asarray(prior) >= 0.5
    labels = np.where(start, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    if region is not None:
        labels[~region] = cv2.GC_BGD
    for hard, value in ((bg, cv2.GC_BGD), (fg, cv2.GC_FGD)):
        if hard is not None:
            labels[hard] = value
    if scale < 1.0:
        small_labels = _resize(labels, size, nearest=True)
        # Strokes must survive the downscaling: any stroke pixel in a cell labels it.
        for hard, value in ((bg, cv2.GC_BGD), (fg, cv2.GC_FGD)):
            if hard is not None and hard.any():
                cells = _resize(hard.astype(np.float32), size, nearest=False) > 0
                small_labels[cells] = value
    else:
        small_labels = labels
    if prior is None and _too_little_outside(region, bg):
        # Nothing to learn the background from outside the selection: its out-of-focus part
        # that runs off the frame starts as background instead (focus.py).
        inside = small_labels == cv2.GC_PR_FGD
        small_labels[inside & background_start(img8, inside)] = cv2.GC_PR_BGD
    elif prior is None and region is not None and not (bg is not None and bg.any()) \
            and box_of(region) is not None:
        # A box's corners and sides hold background the outside may not show (a paler sky
        # near the horizon): what smooth colour joins to the outside starts as background.
        inside = small_labels == cv2.GC_PR_FGD
        small_labels[inside & near_outside(small, small_labels == cv2.GC_BGD)] = cv2.GC_PR_BGD
    if not ((small_labels == cv2.GC_BGD) | (small_labels == cv2.GC_PR_BGD)).any():
        # GrabCut needs background samples; a region that covers the whole image has
        # none, so its outermost pixels stand in (the subject rarely fills the frame).
        small_labels[[0, -1], :] = cv2.GC_PR_BGD
        small_labels[:, [0, -1]] = cv2.GC_PR_BGD
    progress.report(0.3)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    # GrabCut seeds its colour models with k-means from OpenCV's global random generator:
    # without a fixed seed the same selection gave a different trimap depending on what ran
    # before it (1.6 % of the lasso bench's SAD moved with the call history).
    cv2.setRNGSeed(0)
    cv2.grabCut(small, small_labels, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)  # type: ignore[call-overload]
    progress.report(0.45)
    seg = ((small_labels == cv2.GC_FGD) | (small_labels == cv2.GC_PR_FGD)).astype(np.float32)
    if scale < 1.0:
        seg = cv2.resize(seg, (w, h), interpolation=cv2.INTER_LINEAR)
    fg_mask = seg >= 0.5
    if region is not None:
        fg_mask &= region
    progress.report(0.6)
    with progress.part(0.6, 1.0):
        llr = llr_map(img8, bgd, fgd)
    return Segmentation(fg=fg_mask, llr=llr)


def _too_little_outside(region: Optional[np.ndarray], bg: Optional[np.ndarray]) -> bool:
    """Whether a selection leaves under ``MIN_OUTSIDE_SHARE`` of the photo outside it and no
    background stroke says what the background looks like."""
    return (region is not None and 1.0 - float(np.mean(region)) < MIN_OUTSIDE_SHARE
            and not (bg is not None and bg.any()))


def colour_unknown(seg: Segmentation, band: float, near: Optional[LocalBackground] = None) -> np.ndarray:
    """Segmented pixels that are not certain foreground by colour (H x W bool).

    Background-like pixels grown by ``BG_LIKE_GROW`` px, and every zone of the
    subject where they are dense (see ``POROUS_SHARE``). With ``near``, a pixel whose
    colour is unlike the background next to the subject does not count (holes.py: the
    photo's models call it background-like because of background elsewhere).
    """
    like = seg.fg & (seg.llr > BG_LIKE_LLR)
    if near is not None:
        like &= ~near.unlike(like)
    if not like.any():
        return like
    grown = ndi.binary_dilation(like, iterations=BG_LIKE_GROW) & seg.fg
    from .band import smooth

    with progress.part(0.3, 1.0):
        porous = seg.fg & (smooth(like.astype(np.float32), max(1.0, band)) > POROUS_SHARE)
    return grown | porous


def outer_unknown(seg: Segmentation, tri: np.ndarray, band: float) -> np.ndarray:
    """Background-labelled pixels near the band whose colour is not clearly background
    (H x W bool): strands and fringes the graph cut left outside the subject.

    Only zones connected to the band count, so a stray background patch of subject-like
    colour far from the edge stays background.
    """
    unknown = tri == UNKNOWN
    if not unknown.any():
        return np.zeros_like(unknown)
    near = within(unknown, OUTER_REACH * band)
    progress.report(0.45)
    cand = near & (tri == BG) & ~seg.fg & (seg.llr < OUTER_BG_LLR)
    labels, _ = ndi.label(cand | unknown)
    progress.report(0.75)
    touching = np.unique(labels[unknown])
    return cand & np.isin(labels, touching[touching > 0])


def looks_rough(mask: np.ndarray, seg: Segmentation, band: float) -> bool:
    """Whether ``mask`` is a region around the subject rather than its edge.

    An exact mask's outline lies on the subject, so the ring just inside it is
    foreground; a lasso's inner ring is mostly background the segmentation drops.
    """
    hard = mask >= 0.5
    if not seg.fg.any():
        return False  # nothing found inside: the outline is the best edge there is
    depth = distance(hard)
    ring = hard & (depth <= max(2.0, 0.5 * band))
    if not ring.any():
        return False
    soft = ((mask > 0.05) & (mask < 0.95)).mean() > 0.5 * ring.mean()
    # Only drops the colour models are sure of count: on an image whose colours do not
    # separate (noise, a flat patch) the graph cut's choice means nothing.
    dropped = ring & ~seg.fg & (seg.llr > SURE_BG_LLR)
    return soft or float(dropped.sum()) / float(ring.sum()) > ROUGH_RING_SHARE


def from_region(
    image: np.ndarray,
    region: Optional[np.ndarray] = None,
    band: Optional[float] = None,
    *,
    fg: Optional[np.ndarray] = None,
    bg: Optional[np.ndarray] = None,
    unknown: Optional[np.ndarray] = None,
    adaptive: bool = True,
    seg: Optional[Segmentation] = None,
    report: Optional[List[str]] = None,
) -> np.ndarray:
    """Trimap (H x W uint8) for the subject inside a rough ``region`` and/or strokes.

    Args:
        image: H x W x 3 (grey, RGBA) uint8, uint16 or float 0..1.
        region: the rough selection (bool / 0..255 / 0..1; >= 0.5 inside), or ``None``.
        band: band radius in pixels (``None``: :func:`trimap.default_band`).
        fg, bg: optional stroke masks (>= 0.5 painted): hard labels for the
            segmentation and painted onto the trimap; a pixel painted both is unknown.
        unknown: optional "definitely unknown" strokes (hair, glass): painted last.
        seg: a segmentation already computed for these inputs (skips GrabCut).
        report: where the input gives the segmentation too little to go on, the message
            for the user is appended here; ``None``: a :class:`RoughInputWarning` is raised.
    """
    img = as_image(image)
    reg, fg_m, bg_m, unk_m = stroke_masks(img.shape[:2], region, fg, bg, unknown)
    r = default_band(img.shape[:2]) if band is None else check_band(band)
    # progress (trimap.progress): the shares are the parts' cost at 24 MP; from_selection
    # runs the segmentation in the first share itself and passes ``seg``
    if seg is None:
        with progress.part(0.0, 0.12):
            seg = segment_input(img, reg, fg_m, bg_m)
    if reg is not None and not seg.fg.any():
        _say("the subject could not be told from its background inside the selection; its outline "
             "is used as the edge (paint a few foreground strokes, or choose the exact edge)", report)
        seg = Segmentation(fg=reg, llr=np.zeros(reg.shape, np.float32))
    elif reg is not None and _too_little_outside(reg, bg_m):
        _say(f"the selection covers {100.0 * reg.mean():.0f} % of the photo, which leaves too little "
             "background outside it to learn from, so the background was taken to be the out-of-focus "
             "part: check the matte (draw the selection closer around the subject, or paint a "
             "background stroke)", report)
    # the subject's own dark or coloured features that the cut dropped go back to it (holes.py)
    with progress.part(0.12, 0.14):
        near = local_background(img, seg.fg, reg, r)
        own = feature_holes(near) if near is not None else None
    if own is not None and own.any():
        seg = Segmentation(fg=seg.fg | own, llr=seg.llr)
    with progress.part(0.14, 0.76):
        # a selection's segmentation is banded inside as well where its edge wiggles (band.py,
        # ROUGH_INNER_GAIN); strokes alone are not: the stroke bench needed more strokes with it
        # (GT04 6 -> stuck at 12, GT09 4 -> stuck at 5), the inside haze being the next mistake
        tri = from_mask(seg.fg, band=r, adaptive=adaptive, image=img, rough_inside=reg is not None)
    with progress.part(0.76, 0.86):
        not_sure = colour_unknown(seg, r, near) & (tri == FG)  # not ``unknown``: that is the strokes' argument
    if own is not None and own.any():
        not_sure &= ~ndi.binary_dilation(own, iterations=BG_LIKE_GROW)   # their colour is why they were cut
    tri[not_sure] = UNKNOWN
    with progress.part(0.86, 0.98):
        outer = outer_unknown(seg, tri, r)
    if reg is not None:
        outer &= reg
    tri[outer] = UNKNOWN
    if reg is not None:
        tri[~reg] = BG
    if reg is not None and box_of(reg) is not None:   # a box's backdrop far inside it (sure_background.py)
        tri[sure_background(tri, seg.llr, r, reg)] = BG
    if bg_m is not None:
        tri[bg_m] = BG
    if fg_m is not None:
        tri[fg_m] = FG
    if unk_m is not None:
        tri[unk_m] = UNKNOWN
    return tri


def segment_input(image: np.ndarray, region: Optional[np.ndarray], fg: Optional[np.ndarray],
                  bg: Optional[np.ndarray]) -> Segmentation:
    """:func:`segment` for a region and/or strokes (bool masks from :func:`stroke_masks`)."""
    prior = None
    if region is None and fg is not None and bg is not None and fg.any() and bg.any():
        # Strokes alone: start each pixel with the nearer stroke's label, so both
        # colour models begin from plausible samples (all-foreground starts fail).
        from .scribbles import nearest_seed_probability

        prior = nearest_seed_probability(fg, bg)
    return segment(image, region, fg, bg, prior=prior)


def _say(message: str, report: Optional[List[str]]) -> None:
    # A list rather than warnings.catch_warnings in the callers: the service runs trimap
    # routes on worker threads, and the warnings filters are process-wide.
    if report is None:
        warnings.warn(RoughInputWarning(message), stacklevel=3)
    else:
        report.append(message)


def check_edge_mode(edge: str) -> str:
    """Return ``edge`` if it is one of :data:`EDGE_MODES`, else raise ``ValueError``."""
    if edge not in EDGE_MODES:
        raise ValueError(f"edge must be one of {', '.join(EDGE_MODES)}, got {edge!r}")
    return edge


def from_selection(
    mask: object,
    image: object,
    band: Optional[float] = None,
    *,
    edge: str = "auto",
    adaptive: bool = True,
    report: Optional[List[str]] = None,
) -> Tuple[np.ndarray, str]:
    """Trimap from a selection or mask, treating it as rough or exact: ``(trimap, edge used)``.

    ``edge="rough"``: the selection is a region around the subject (a lasso, a
    rectangle, a feathered selection): the subject's edge is found inside it
    (:func:`from_region`). ``"exact"``: the outline is the subject's edge (a SAM
    mask, a layer mask): :func:`trimap.from_mask` with the image. ``"auto"``:
    rough when the segmentation disagrees with the outline (:func:`looks_rough`), or when
    the mask covers the whole image (Select All: no outline to be exact about).
    ``report`` collects warnings for the user as in :func:`from_region`.
    """
    check_edge_mode(edge)
    m = as_mask(mask, "mask")
    progress.report(0.003)
    with progress.part(0.003, 0.01):
        img = as_image(image, check=progress.report)
    check_same_shape(m.shape, img, "image", "mask")
    progress.report(0.01)  # the inputs read (24 MP: about a second)
    r = default_band(m.shape) if band is None else check_band(band)
    hard = m >= 0.5
    if edge == "exact" or not hard.any():
        return from_mask(m, band=r, adaptive=adaptive, image=img), "exact"
    with progress.part(0.0, 0.12):  # from_region's share for its segmentation (progress)
        seg = segment(img, hard)
    # A mask of the whole image has no outline to be exact about (Select All): its exact
    # reading is an all-foreground matte, so auto reads it as rough (the focus start).
    if edge == "auto" and not hard.all() and not looks_rough(m, seg, r):
        return from_mask(m, band=r, adaptive=adaptive, image=img), "exact"
    return from_region(img, hard, band=r, adaptive=adaptive, seg=seg, report=report), "rough"
