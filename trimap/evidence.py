"""Image evidence for the unknown band: strands a coarse mask lost.

A coarse mask (SAM, a quick selection) is a good outline of the solid object, but
thresholding and SAM's low resolution cut off thin strands (hair, fur tips, fibres)
that stick out of it. The matting engine can only recover them if the band reaches
them, yet every pixel of band that holds no transition costs matte quality (the
model leaves haze there; docs/TRIMAP.md). So the band grows outside the mask only
where the image shows a strand:

* local colour models: the foreground colour from a ring just inside the mask,
  the background colour (mean and covariance) from a ring a little outside it;
* a pixel outside the mask is strand evidence when the background model does not
  explain it (Mahalanobis distance) *and* its colour lies part-way along the line
  from the background to the foreground colour (a mixed pixel, 0 < alpha < 1);
* only *thin* evidence counts: what survives a morphological opening is a
  foreground-coloured background object (a red blanket next to a red jumper), not
  a strand;
* evidence is kept only within ``REACH`` band radii and where it is connected to
  the band, then grown by a small halo (strands blur into the background).

A solid edge gives no evidence, so it keeps the narrow geometric band; the
interior of the mask is never touched.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
from scipy import ndimage as ndi

from ._distance import distance
from .progress import report


# Foreground samples: mask pixels this many band radii inside the contour.
FG_RING = (1.0, 4.0)
# Background samples: this many band radii outside (beyond the narrow band, so
# jitter of the mask does not mix the object in; near enough to be the local background).
BG_RING = (1.5, 4.0)
# Gaussian sigma of the local colour models, in band radii.
MODEL_SCALE = 3.0
# Squared Mahalanobis distance from the local background beyond which a pixel is
# not background (9 = three standard deviations), and the covariance floor that
# keeps a flat background from calling noise a strand.
OUTLIER2 = 9.0
COV_FLOOR = 2e-3
# Colour-line alpha estimate of a mixed pixel: (I - B).(F - B) / |F - B|^2 in this range.
MIX = (0.15, 0.9)
# Background-ring pixels whose colour-line position exceeds this are left out of
# the refitted background model (strands inside the ring).
RING_LEAN = 0.3
# Opening radius (band radii, at least 1 px): evidence wider than about twice this is not a strand.
THIN = 0.3
# Evidence is used up to this many band radii outside the mask (the smart
# radius reaches 8 band radii on ragged outlines too).
REACH = 8.0
# Halo added around the evidence, in band radii (at least 1 px).
HALO = 0.2
# Larger photos are examined on a block-averaged copy at most this long (the
# evidence is then upsampled): the colour models cost a few full-size passes
# per moment; at 2.7 MP a call took 17 s without this and 6.6 s with it on a
# loaded 2-core machine (the mask-only band: 2.0 s).
WORK_SIDE = 1024


def _local_colour(
    img: np.ndarray, weight: np.ndarray, sigma: float, idx: Tuple[np.ndarray, np.ndarray]
) -> Tuple[np.ndarray, np.ndarray]:
    """Gaussian-weighted mean (N x 3) and covariance (N x 6: xx, xy, xz, yy, yz, zz)
    of the pixels in ``weight``, read at the N pixels ``idx``.

    Normalised convolution as in :func:`trimap.band.smooth`, but all ten moments
    are blurred on one block-averaged grid and read back (bilinear) only at
    ``idx``: the models are smooth fields, and upsampling them to every pixel
    cost ten times more.
    """
    h, w = weight.shape
    k = max(1, int(sigma // 4))
    hp, wp = -(-h // k) * k, -(-w // k) * k
    hs, ws = hp // k, wp // k

    def block_sum(a: np.ndarray) -> np.ndarray:
        return np.pad(a, ((0, hp - h), (0, wp - w))).reshape(hs, k, ws, k).sum(axis=(1, 3))

    wf = weight.astype(np.float32)
    moments = [wf] + [img[..., c] * wf for c in range(3)]
    moments += [img[..., i] * img[..., j] * wf for i in range(3) for j in range(i, 3)]
    # Pixels outside the image carry no weight: divide by the blurred coverage.
    cover = ndi.gaussian_filter(block_sum(np.ones((h, w), np.float32)), sigma / k, mode="constant")
    # Bilinear read-back at the block centres (i + 0.5) * k - 0.5, with the four
    # neighbours' flat indices and weights computed once for all ten moments.
    ys = np.clip((idx[0] + 0.5) / k - 0.5, 0, hs - 1)
    xs = np.clip((idx[1] + 0.5) / k - 0.5, 0, ws - 1)
    y0, x0 = ys.astype(np.intp), xs.astype(np.intp)
    y1, x1 = np.minimum(y0 + 1, hs - 1), np.minimum(x0 + 1, ws - 1)
    fy, fx = (ys - y0).astype(np.float32), (xs - x0).astype(np.float32)
    corners = [(y0 * ws + x0, (1 - fy) * (1 - fx)), (y0 * ws + x1, (1 - fy) * fx),
               (y1 * ws + x0, fy * (1 - fx)), (y1 * ws + x1, fy * fx)]
    read = []
    for m in moments:
        g = (ndi.gaussian_filter(block_sum(m), sigma / k, mode="constant") / np.maximum(cover, 1e-12)).ravel()
        read.append(sum(np.take(g, i) * wgt for i, wgt in corners))
    den = np.maximum(read[0], 1e-6)
    mean = np.stack(read[1:4], axis=1) / den[:, None]
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
    cov = np.stack([read[4 + n] / den - mean[:, i] * mean[:, j] for n, (i, j) in enumerate(pairs)], axis=1)
    return mean.astype(np.float32), cov.astype(np.float32)


def _mahalanobis2(x: np.ndarray, cov6: np.ndarray, floor: float) -> np.ndarray:
    """x^T (C + floor I)^-1 x for N x 3 vectors and N x 6 packed symmetric covariances."""
    a11, a12, a13, a22, a23, a33 = (cov6[:, k] for k in range(6))
    a11, a22, a33 = a11 + floor, a22 + floor, a33 + floor
    # Inverse by the adjugate: closed form, much faster than a batched solve.
    c11 = a22 * a33 - a23 * a23
    c12 = a13 * a23 - a12 * a33
    c13 = a12 * a23 - a13 * a22
    c22 = a11 * a33 - a13 * a13
    c23 = a12 * a13 - a11 * a23
    c33 = a11 * a22 - a12 * a12
    det = np.maximum(a11 * c11 + a12 * c12 + a13 * c13, 1e-12)
    x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
    q = c11 * x1 * x1 + c22 * x2 * x2 + c33 * x3 * x3 + 2 * (c12 * x1 * x2 + c13 * x1 * x3 + c23 * x2 * x3)
    return q / det


def _alpha_hat(colour: np.ndarray, f_mean: np.ndarray, b_mean: np.ndarray) -> np.ndarray:
    """Position of ``colour`` on the line from the background to the foreground colour (N,)."""
    line = f_mean - b_mean
    return ((colour - b_mean) * line).sum(axis=1) / np.maximum((line * line).sum(axis=1), 1e-4)


def strand_evidence(
    image: np.ndarray, hard: np.ndarray, band: float, d_out: Optional[np.ndarray] = None
) -> np.ndarray:
    """Pixels outside ``hard`` whose colour says "a strand of the object" (H x W bool).

    Args:
        image: H x W x 3 float32 in 0..1.
        hard: H x W bool, the coarse foreground.
        band: the band radius in pixels (sets every scale here).
        d_out: the distance transform of ``~hard``, if the caller has it.

    Only pixels within ``REACH * band`` of the mask are examined; thick evidence
    (see ``THIN``) is dropped. Connectivity to the band is left to the caller.
    """
    hard = np.asarray(hard, bool)
    out = np.zeros(hard.shape, bool)
    if band <= 0 or not hard.any() or hard.all():
        return out
    d_in = distance(hard)
    if d_out is None:
        d_out = distance(~hard)
    fg_ring = hard & (d_in > FG_RING[0] * band) & (d_in <= FG_RING[1] * band)
    bg_ring = ~hard & (d_out > BG_RING[0] * band) & (d_out <= BG_RING[1] * band)
    zone = ~hard & (d_out <= REACH * band)
    if not fg_ring.any() or not bg_ring.any() or not zone.any():
        return out
    sigma = max(2.0, MODEL_SCALE * band)
    # Per-pixel work only inside the zone near the contour.
    idx = np.nonzero(zone)
    f_mean, _ = _local_colour(image, fg_ring, sigma, idx)
    b_mean, b_cov = _local_colour(image, bg_ring, sigma, idx)
    # In dense hair the background ring holds strands too, which drags the
    # background model towards the foreground and hides them. One reweighting
    # pass drops the ring pixels that lean towards the foreground and refits.
    lean = np.zeros(hard.shape, bool)
    lean[idx] = _alpha_hat(image[idx], f_mean, b_mean) > RING_LEAN
    if (bg_ring & ~lean).any():
        b_mean, b_cov = _local_colour(image, bg_ring & ~lean, sigma, idx)
    x = image[idx] - b_mean
    alpha_hat = _alpha_hat(image[idx], f_mean, b_mean)
    d2 = _mahalanobis2(x, b_cov, COV_FLOOR)
    out[idx] = (d2 > OUTLIER2) & (alpha_hat > MIX[0]) & (alpha_hat < MIX[1])
    r_thin = max(1, int(round(THIN * band)))
    y, xx = np.ogrid[-r_thin : r_thin + 1, -r_thin : r_thin + 1]
    out &= ~ndi.binary_opening(out, structure=(xx * xx + y * y) <= r_thin * r_thin)
    return out


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Average ``k`` x ``k`` blocks (edge-padded to a multiple of ``k``)."""
    h, w = a.shape[:2]
    hp, wp = -(-h // k) * k, -(-w // k) * k
    a = np.pad(a, [(0, hp - h), (0, wp - w)] + [(0, 0)] * (a.ndim - 2), mode="edge")
    return a.reshape((hp // k, k, wp // k, k) + a.shape[2:]).mean(axis=(1, 3)).astype(np.float32)


def strand_band(image: np.ndarray, hard: np.ndarray, unknown: np.ndarray, band: float) -> np.ndarray:
    """Grow the unknown region ``unknown`` along strand evidence (see :func:`strand_evidence`).

    The evidence, widened by a halo of ``HALO`` band radii and limited to
    ``REACH`` band radii outside the mask, is added where it is connected
    (8-neighbours) to ``unknown``. Returns a new H x W bool mask, a superset of
    ``unknown`` that differs from it only outside the mask.
    """
    hard = np.asarray(hard, bool)
    unknown = np.asarray(unknown, bool)
    if band <= 0 or not unknown.any():
        return unknown.copy()
    d_out = distance(~hard)
    report(0.25)
    h, w = hard.shape
    k = max(1, math.ceil(max(h, w) / WORK_SIDE))
    if k > 1:
        small_image = _block_mean(image, k)
        report(0.35)  # the block means: most of this stage at 24 MP (issue #23)
        small = strand_evidence(small_image, _block_mean(hard.astype(np.float32), k) >= 0.5, band / k)
        report(0.45)
        cand = np.repeat(np.repeat(small, k, axis=0), k, axis=1)[:h, :w] & ~hard
    else:
        cand = strand_evidence(image, hard, band, d_out)
    report(0.55)
    if not cand.any():
        return unknown.copy()
    halo = max(1, int(round(HALO * band)))
    cand = ndi.binary_dilation(cand, iterations=halo) & ~hard & (d_out <= REACH * band)
    report(0.8)
    grown = unknown | cand
    labels, _ = ndi.label(grown, structure=np.ones((3, 3), bool))
    keep = np.zeros(int(labels.max()) + 1, bool)
    keep[np.unique(labels[unknown])] = True
    keep[0] = False
    return keep[labels]
