"""Trimaps from masks: an unknown band around the mask boundary.

The band is measured with a Euclidean distance transform (not iterated box
erosion, which gives square, direction-dependent bands). With ``adaptive=True``
the band radius varies along the boundary ("smart radius"): outside the mask it
widens where the boundary is ragged (hair, fur: many boundary pixels per unit
length) or the mask is soft, and stays narrow along smooth hard edges, where the
true transition is only a pixel or two wide; inside it stays at half a band
radius, so the band never reaches into solid interior. With an image, the band
also follows strands the mask lost (``trimap/evidence.py``).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import numpy as np
from scipy import ndimage as ndi

from ._distance import distance, nearest, within
from ._smooth import smooth
from .progress import part, report
from ._validate import BG, FG, UNKNOWN, as_image, as_mask, check_band, check_same_shape

# Default band radius as a fraction of sqrt(H * W), with a floor in pixels: about
# 10 px at 800 x 600, the size of a SAM mask's outline error plus a soft edge.
# Chosen with bench/trimap_bench.py (issue #16, docs/TRIMAP.md): the engine leaves
# haze in every pixel of band that holds no transition, so a wider default made
# whole-image SAD worse on the real photos, not better.
DEFAULT_BAND_FRACTION = 0.015
MIN_DEFAULT_BAND = 6.0

# Smart-radius rule (outside the mask):
#   radius = band * clip(BASE + GAIN_ROUGH * (roughness - 1) + GAIN_SOFT * softness, LO, HI)
# BASE = LO < 1 is what narrows the band along smooth hard edges.
ADAPT_BASE = 0.6
ADAPT_GAIN_ROUGH = 4.0
ADAPT_GAIN_SOFT = 2.0
ADAPT_LO = 0.6
ADAPT_HI = 8.0
# Inside the mask the radius is ADAPT_INNER band radii whatever the roughness
# (only softness widens it): a coarse mask loses strands *outside* it, and a band
# reaching into solid interior costs the most matte quality (the engine makes
# solid foreground see-through there; docs/TRIMAP.md, issue #16).
ADAPT_INNER = 0.5
# A segmentation's edge (the rough path, trimap/rough.py) is uncertain on both sides where
# it wiggles: there the inside radius grows with the roughness as well, by this gain up to
# this many band radii. Lasso bench, seeds 0 / 1 / 2: 70.14 / 68.28 / 70.50 -> 67.55 / 66.24
# / 69.75; rectangle seed 0 110.27 -> 109.85. A constant inside radius was worse (1.0: 69.17,
# 1.5: 72.43, 2.5: 78.69): a straight edge's interior is solid (docs/TRIMAP.md, session 18).
ROUGH_INNER_GAIN = 6.0
ROUGH_INNER_HI = 3.0
# Window (Gaussian sigma) of the roughness measure, in band radii.
ROUGH_SCALE = 2.0

# Mask values strictly between these are "uncertain" and become unknown.
DEFAULT_SOFT_RANGE = (0.05, 0.95)

_CROSS = ndi.generate_binary_structure(2, 1)

ArrayLike = Union[np.ndarray, "list"]


def default_band(shape: Tuple[int, ...]) -> float:
    """The product's default band radius in pixels for an image of ``shape``.

    It scales with the image so that the same object photographed at a higher
    resolution gets a proportionally wider band.
    """
    h, w = int(shape[0]), int(shape[1])
    return max(MIN_DEFAULT_BAND, DEFAULT_BAND_FRACTION * math.sqrt(h * w))


def boundary(hard: np.ndarray) -> np.ndarray:
    """Pixels on either side of the mask contour (4-neighbour definition).

    The image border is not a contour: a mask that runs off the edge of the
    picture continues there.
    """
    inner = hard & ~ndi.binary_erosion(hard, _CROSS, border_value=1)
    outer = ~hard & ndi.binary_dilation(hard, _CROSS)
    return inner | outer


def shift_edge(hard: np.ndarray, shift: float) -> np.ndarray:
    """Grow (``shift`` > 0) or shrink (``shift`` < 0) a binary mask by ``shift`` pixels.

    Uses Euclidean distances, so the shifted edge stays round at corners.
    """
    if shift == 0 or not hard.any() or hard.all():
        return hard
    if shift > 0:
        return hard | within(hard, shift)
    return hard & (distance(hard) > -shift)


def roughness_and_softness(
    hard: np.ndarray, soft: np.ndarray, scale: float
) -> Tuple[np.ndarray, np.ndarray]:
    """Local boundary roughness and mask softness at window ``scale`` (pixels).

    Roughness is the boundary-pixel density normalised so that a straight,
    axis-aligned edge reads 1.0 (a 45 degree edge reads about 1.4); a ragged
    hair outline reads several times that. Softness is the local share of
    uncertain mask pixels (0..1).
    """
    sigma = max(1.0, float(scale))
    edge = boundary(hard).astype(np.float32)
    report(0.1)
    # A straight edge is two pixels thick (inner + outer); a Gaussian of width
    # sigma across it integrates to 2 / (sqrt(2 pi) sigma) at the line.
    norm = math.sqrt(2.0 * math.pi) * sigma / 2.0
    with part(0.1, 0.55):
        rough = smooth(edge, sigma) * norm
    with part(0.55, 1.0):
        softness = smooth(soft.astype(np.float32), sigma)
    return rough, softness


def smart_radius(hard: np.ndarray, soft: np.ndarray, band: float, rough_inside: bool = False) -> np.ndarray:
    """Per-pixel band radius (H x W float32) for the adaptive band.

    Only its values on :func:`boundary` pixels matter: every pixel takes the
    radius of its nearest boundary pixel. Outside the mask the radius is
    ``band * clip(BASE + GAIN_ROUGH * (roughness - 1) + GAIN_SOFT * softness, LO, HI)``;
    inside it is ``band * clip(ADAPT_INNER + GAIN_SOFT * softness, ADAPT_INNER, HI)``.
    With ``rough_inside`` (the edge is a segmentation's, not the subject's) the inside
    radius is at least ``band * clip(ADAPT_INNER + ROUGH_INNER_GAIN * (roughness - 1),
    ADAPT_INNER, ROUGH_INNER_HI)``. The returned array holds the outside radius on outer
    boundary pixels and the inside radius on inner ones.
    """
    rough, softness = roughness_and_softness(hard, soft, scale=max(3.0, ROUGH_SCALE * band))
    outside = np.clip(ADAPT_BASE + ADAPT_GAIN_ROUGH * (rough - 1.0) + ADAPT_GAIN_SOFT * softness, ADAPT_LO, ADAPT_HI)
    inside = np.clip(ADAPT_INNER + ADAPT_GAIN_SOFT * softness, ADAPT_INNER, ADAPT_HI)
    if rough_inside:
        inside = np.maximum(inside, np.clip(ADAPT_INNER + ROUGH_INNER_GAIN * (rough - 1.0), ADAPT_INNER, ROUGH_INNER_HI))
    return (band * np.where(hard, inside, outside)).astype(np.float32)


def unknown_band(hard: np.ndarray, radius: Union[float, np.ndarray]) -> np.ndarray:
    """Boolean H x W: pixels within ``radius`` of the contour of ``hard``.

    ``radius`` is a scalar, or an H x W array read at the nearest boundary pixel.
    """
    edge = boundary(hard)
    report(0.25)
    if not edge.any():
        return np.zeros(hard.shape, bool)
    if np.isscalar(radius) or np.ndim(radius) == 0:
        r = float(radius)
        if r <= 0:
            return np.zeros(hard.shape, bool)
        return within(edge, r)
    radius = np.asarray(radius)
    with part(0.25, 0.85):  # pieces of the whole image, reported (trimap._distance)
        dist, idx = nearest(~edge, float(radius[edge].max()))
    nearest_r = radius[idx[0], idx[1]]
    return (dist <= nearest_r) & (nearest_r > 0)


def compose(hard: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """Build the uint8 trimap from a binary foreground and an unknown mask."""
    tri = np.where(hard, np.uint8(FG), np.uint8(BG)).astype(np.uint8)
    tri[unknown] = UNKNOWN
    return tri


def from_mask(
    mask: ArrayLike,
    band: Optional[float] = None,
    adaptive: bool = True,
    *,
    shift: float = 0.0,
    soft_range: Tuple[float, float] = DEFAULT_SOFT_RANGE,
    image: Optional[ArrayLike] = None,
    transparency: bool = False,
    image_aware: bool = True,
    rough_inside: bool = False,
) -> np.ndarray:
    """Make a trimap from a binary or soft mask.

    Args:
        mask: H x W bool, uint8 (0..255), uint16 or float (0..1) mask, e.g. a
            selection, a layer mask or a SAM mask. Values >= 0.5 are foreground.
        band: radius of the unknown band in pixels, on each side of the
            boundary (so the band is about ``2 * band + 1`` pixels wide). ``None``
            uses :func:`default_band`. ``0`` gives a band only where the mask is soft.
        adaptive: vary the radius along the boundary (see :func:`smart_radius`):
            outside the mask from ``0.6 * band`` on smooth hard edges up to
            ``8 * band`` on ragged or soft parts (hair, fur: the strands a coarse
            mask lost lie there); inside always ``0.5 * band`` (more where the
            mask is soft), so the band never reaches into solid interior.
        shift: move the edge before banding; > 0 grows the foreground, < 0
            shrinks it (pixels).
        soft_range: mask values strictly inside ``(lo, hi)`` become unknown
            whatever the band (a soft mask's own uncertainty).
        image: optional H x W x 3 image of the same size. When given (and
            ``image_aware``), the band also grows outside the mask along
            strands the image shows and the mask lost: see
            :func:`trimap.evidence.strand_band`. A solid edge gives no such
            evidence and keeps the narrow band. Needed for ``transparency``.
        transparency: widen the band where the image looks see-through
            (see :func:`trimap.transparency.transparency_widen`).
        image_aware: use ``image`` to grow the band (default); ``False``
            gives the mask-only band even when an image is passed.
        rough_inside: the mask's edge is a segmentation's, not the subject's
            (the rough path): where it wiggles, the band reaches further inside,
            growing with the roughness up to ``ROUGH_INNER_HI`` band radii
            (:func:`smart_radius`).

    Returns:
        H x W uint8 trimap with values 0 (background), 128 (unknown), 255 (foreground).

    Documented edge cases: an all-background mask gives an all-0 trimap and an
    all-foreground mask an all-255 trimap (apart from soft pixels, which stay
    unknown); there is no boundary to band. Sizes that do not match raise
    ``ValueError``.
    """
    m = as_mask(mask, "mask")
    r = default_band(m.shape) if band is None else check_band(band)
    r = min(r, math.hypot(*m.shape))  # a wider band covers nothing more
    shift = float(shift)
    if not math.isfinite(shift):
        raise ValueError(f"shift must be a finite number of pixels, got {shift!r}")
    lo, hi = _check_soft_range(soft_range)

    hard = shift_edge(m >= 0.5, shift)
    soft = (m > lo) & (m < hi)
    use_image = image is not None and image_aware
    report(0.02)  # progress (trimap.progress): the shares are the parts' cost at 24 MP
    with part(0.02, 0.52):
        radius: Union[float, np.ndarray] = smart_radius(hard, soft, r, rough_inside) if adaptive and r > 0 else r
    with part(0.52, 0.71):
        unknown = unknown_band(hard, radius) | soft

    if transparency and image is None:
        raise ValueError("transparency=True needs the image (pass image=...)")
    if image is not None:
        with part(0.71, 0.98):
            img = as_image(image)  # checked and converted again: 1 s at 24 MP, reported
            report(0.2)
            check_same_shape(m.shape, img, "image", "mask")
            if use_image and r > 0:
                from .evidence import strand_band

                with part(0.2, 1.0):
                    unknown = strand_band(img, hard, unknown, r)
            if transparency:
                from .transparency import transparency_widen

                unknown = transparency_widen(img, hard, unknown, r)
    return compose(hard, unknown)


def _check_soft_range(soft_range: Tuple[float, float]) -> Tuple[float, float]:
    try:
        lo, hi = (float(v) for v in soft_range)
    except (TypeError, ValueError):
        raise ValueError(f"soft_range must be a pair (lo, hi), got {soft_range!r}") from None
    if not (0.0 <= lo <= 0.5 <= hi <= 1.0):
        raise ValueError(f"soft_range must satisfy 0 <= lo <= 0.5 <= hi <= 1, got {soft_range!r}")
    return lo, hi
