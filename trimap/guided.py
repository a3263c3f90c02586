"""Image-aware unknown band: where does the image say the mask's boundary is uncertain?

A coarse mask (SAM, a quick selection) knows roughly where the object is, but it
loses thin strands, fur tips and see-through edges. The image still shows them.
We filter the mask with the image as guide (He et al.'s guided filter, colour
guide, box filters only: O(N) whatever the radius). The filtered mask is, in
every window, the best affine function of the colour that reproduces the mask, so
it spreads along pixels that *look like* the foreground (a strand that left the
mask keeps the foreground's colour) and drops where pixels look like the
background. A pixel stays known only where this image-guided soft mask confidently
agrees with the coarse mask's label; everything else near the contour becomes
unknown.

Large images are filtered on a downscaled copy (the "fast guided filter": the
affine coefficients are computed at low resolution, upsampled, and applied to the
full-resolution image), so the cost at 4 MP is dominated by a few full-size
array operations.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
from scipy import ndimage as ndi

from .band import boundary

# Guided filter window radius, in band radii (the window is 2r+1 wide). One band
# radius keeps clean edges tight: wider windows (4 band radii were tried) blur
# the mask in flat-colour areas and act like a plain wider band.
GUIDE_RADIUS = 1.0
# Regularisation (colour variance units, RGB in 0..1): below this local colour
# variance an edge is treated as noise, not as structure.
GUIDE_EPS = 1e-2
# A pixel is confidently foreground when the filtered mask is >= 1 - CONFIDENT,
# confidently background when it is <= CONFIDENT.
CONFIDENT = 0.02
# Image evidence is used up to this many band radii from the mask contour: a
# coarse mask's error (lost strands, jitter) is local, while farther out a
# foreground-coloured background would only balloon the band.
REACH = 3.0
# The filter runs at most at this many pixels on the long side.
WORK_SIDE = 640


def box(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1) x (2r+1) window (running sums, O(N) for any ``r``)."""
    if r <= 0:
        return a
    return ndi.uniform_filter(a, size=2 * r + 1, mode="reflect")


def guided_coefficients(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> Tuple[np.ndarray, np.ndarray]:
    """Colour guided filter coefficients: ``q = sum_c A[..., c] * guide[..., c] + B``.

    ``guide`` is H x W x 3 float32, ``src`` H x W float32. Returns the
    window-averaged coefficients (A: H x W x 3, B: H x W), so they can be
    upsampled and applied to a larger guide.
    """
    mean_i = np.stack([box(guide[..., c], r) for c in range(3)], axis=-1)
    mean_p = box(src, r)
    cov_ip = np.stack([box(guide[..., c] * src, r) for c in range(3)], axis=-1) - mean_i * mean_p[..., None]
    # Symmetric 3 x 3 colour covariance per pixel, plus eps on the diagonal.
    s = {}
    for i in range(3):
        for j in range(i, 3):
            s[i, j] = box(guide[..., i] * guide[..., j], r) - mean_i[..., i] * mean_i[..., j]
    a11, a12, a13 = s[0, 0] + eps, s[0, 1], s[0, 2]
    a22, a23, a33 = s[1, 1] + eps, s[1, 2], s[2, 2] + eps
    # Inverse by the adjugate (closed form is much faster than batched np.linalg.inv).
    c11 = a22 * a33 - a23 * a23
    c12 = a13 * a23 - a12 * a33
    c13 = a12 * a23 - a13 * a22
    c22 = a11 * a33 - a13 * a13
    c23 = a12 * a13 - a11 * a23
    c33 = a11 * a22 - a12 * a12
    det = a11 * c11 + a12 * c12 + a13 * c13
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    x, y, z = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    a = np.stack(
        [
            (c11 * x + c12 * y + c13 * z) / det,
            (c12 * x + c22 * y + c23 * z) / det,
            (c13 * x + c23 * y + c33 * z) / det,
        ],
        axis=-1,
    ).astype(np.float32)
    b = (mean_p - (a * mean_i).sum(axis=-1)).astype(np.float32)
    a = np.stack([box(a[..., c], r) for c in range(3)], axis=-1)
    return a, box(b, r)


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Average ``k`` x ``k`` blocks (the array is edge-padded to a multiple of ``k``)."""
    h, w = a.shape[:2]
    hp, wp = -(-h // k) * k, -(-w // k) * k
    pad = [(0, hp - h), (0, wp - w)] + [(0, 0)] * (a.ndim - 2)
    a = np.pad(a, pad, mode="edge")
    return a.reshape((hp // k, k, wp // k, k) + a.shape[2:]).mean(axis=(1, 3))


def _upsample(small: np.ndarray, k: int, shape: Tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a block-averaged array back to ``shape``."""
    h, w = shape
    ys = np.clip((np.arange(h) + 0.5) / k - 0.5, 0, small.shape[0] - 1)
    xs = np.clip((np.arange(w) + 0.5) / k - 0.5, 0, small.shape[1] - 1)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, small.shape[0] - 1)
    x1 = np.minimum(x0 + 1, small.shape[1] - 1)
    fy = (ys - y0).astype(np.float32)[:, None]
    fx = (xs - x0).astype(np.float32)[None, :]
    if small.ndim == 3:
        fy, fx = fy[..., None], fx[..., None]
    top = small[y0][:, x0] * (1 - fx) + small[y0][:, x1] * fx
    bot = small[y1][:, x0] * (1 - fx) + small[y1][:, x1] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


def guided_soft_mask(image: np.ndarray, mask: np.ndarray, radius: float, eps: float = GUIDE_EPS) -> np.ndarray:
    """Filter ``mask`` (H x W, 0..1) with ``image`` (H x W x 3, 0..1) as guide.

    ``radius`` is in full-resolution pixels. Images larger than ``WORK_SIDE``
    are filtered on a block-averaged copy and the affine coefficients are
    upsampled (fast guided filter). Returns an H x W float32 soft mask, clipped to 0..1.
    """
    img = np.asarray(image, np.float32)
    src = np.asarray(mask, np.float32)
    h, w = src.shape
    k = max(1, int(math.ceil(max(h, w) / WORK_SIDE)))
    if k > 1:
        g_small, p_small = _block_mean(img, k), _block_mean(src, k)
    else:
        g_small, p_small = img, src
    r = max(1, int(round(radius / k)))
    a, b = guided_coefficients(g_small, p_small, r, eps)
    if k > 1:
        a, b = _upsample(a, k, (h, w)), _upsample(b, k, (h, w))
    q = (a * img).sum(axis=-1) + b
    return np.clip(q, 0.0, 1.0)


def image_unknown(
    image: np.ndarray,
    hard: np.ndarray,
    band: float,
    *,
    radius: float = GUIDE_RADIUS,
    eps: float = GUIDE_EPS,
    confident: float = CONFIDENT,
) -> np.ndarray:
    """Pixels where the image-guided soft mask does not confidently agree with ``hard``.

    Args:
        image: H x W x 3 float32 image in 0..1.
        hard: H x W bool, the coarse foreground.
        band: the band radius in pixels (the filter window radius is ``radius * band``).
        radius: window radius in band radii.
        eps: guided filter regularisation.
        confident: a foreground pixel stays foreground only if the filtered mask
            is >= ``1 - confident``; a background pixel stays background only if
            it is <= ``confident``.

    Returns H x W bool. Far from the contour the filtered mask equals the mask,
    so the result stays within about two windows of the contour.
    """
    hard = np.asarray(hard, bool)
    if band <= 0 or not hard.any() or hard.all():
        return np.zeros(hard.shape, bool)
    q = guided_soft_mask(image, hard.astype(np.float32), max(1.0, radius * band), eps)
    return np.where(hard, q < 1.0 - confident, q > confident)


def image_band(
    image: np.ndarray,
    hard: np.ndarray,
    unknown: np.ndarray,
    band: float,
    *,
    reach: Optional[float] = None,
) -> np.ndarray:
    """Grow the unknown region ``unknown`` where the image says the boundary is uncertain.

    Adds the pixels of :func:`image_unknown` that lie within ``reach * band``
    pixels of the mask contour and are connected (8-neighbours) to ``unknown``.
    The reach limit keeps a look-alike texture next to the object from
    ballooning the band; the connectivity rule drops isolated specks.

    Args:
        image: H x W x 3 float32 image in 0..1.
        hard: H x W bool, the coarse foreground.
        unknown: H x W bool, the mask-only band (kept as is).
        band: the band radius in pixels.
        reach: in band radii (default ``REACH``, read at call time).

    Returns a new H x W bool unknown mask, a superset of ``unknown``.
    """
    hard = np.asarray(hard, bool)
    unknown = np.asarray(unknown, bool)
    if band <= 0 or not unknown.any():
        return unknown.copy()
    reach = REACH if reach is None else float(reach)
    cand = image_unknown(image, hard, band)
    edge = boundary(hard)
    if edge.any():
        cand &= ndi.distance_transform_edt(~edge) <= reach * band
    else:
        cand[:] = False
    grown = unknown | cand
    labels, n = ndi.label(grown, structure=np.ones((3, 3), bool))
    keep = np.zeros(n + 1, bool)
    keep[np.unique(labels[unknown])] = True
    keep[0] = False
    return keep[labels]
