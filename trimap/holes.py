"""The background next to the subject, and the parts of a segmented subject that it does
not explain: the subject's own dark or coloured features, not background.

A graph cut inside a rough selection drops every part of the subject whose colour the
background model explains *somewhere in the photo*: the background seen through a wicker
ball or between leaves (right), but also a plush toy's black eyes and nose when the
background has dark trees somewhere (wrong: banded as holes, their middles became certain
background). The colour rule after it (rough.py, ``colour_unknown``) makes every such
background-like pixel of the subject unknown, which hazed a solid flower head whose
colours the autumn leaves elsewhere have. Both differ from real background in *where* the
colour is found: background seen through the subject is the background that surrounds the
subject there. So colours are compared with :class:`LocalBackground`, the background next
to the subject nearest to each pixel, smoothed over a few band radii:

- an enclosed hole (a background component that does not reach outside the selection)
  whose mean colour lies farther than ``FEATURE_COLOUR_DISTANCE`` from it is given back to
  the subject (:func:`feature_holes`);
- a background-like pixel of the subject farther than ``UNLIKE_COLOUR_DISTANCE`` from it is
  not made unknown (:meth:`LocalBackground.unlike`).

Measured on the lasso bench's segmentations of the 13 dev photos (docs/TRIMAP.md, "Rough
input"): the see-through holes lie 0.06-0.21 from their local background, except one
132-px half-transparent hole of GT01 (0.44); the subject's own features 0.13-0.39, six of
them (3,600 px: GT07's eyes and nose, a dark patch of GT13, a speck of GT06) above 0.3.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from scipy import ndimage as ndi

from ._distance import nearest
from ._smooth import smooth

#: RGB distance (0..1) between a hole's mean colour and the background next to the subject
#: beyond which the hole is the subject's own (see the module's text)
FEATURE_COLOUR_DISTANCE = 0.3
#: the same for single background-like pixels of the subject, which are noisier: the lasso
#: bench (seed 0 / 1) 73.89 / 73.17 without the rule, 72.93 / - at 0.4, 72.67 / 70.54 at 0.45
UNLIKE_COLOUR_DISTANCE = 0.45
#: the local background colour: a Gaussian mean over this many band radii
LOCAL_BG_SIGMA = 3.0
#: the background colour and the nearest-pixel map are computed on a grid of at most this
#: many cells (the colour is smooth at that scale; 24 MP costs what 1 MP does)
GRID_PIXELS = 250_000


class LocalBackground:
    """The background next to a segmented subject ``fg`` (H x W bool) inside ``region``:
    the background pixels connected to the outside of the selection, their colour smoothed
    over LOCAL_BG_SIGMA band radii and read at the nearest such pixel. ``image`` is
    H x W x 3 float in 0..1, ``band`` the band radius in pixels. ``labels`` and
    ``count`` are the background's connected components, ``reaches_out`` (count + 1 bool)
    says which of them reach outside the selection (index 0, the subject, counts as out)."""

    def __init__(self, image: np.ndarray, fg: np.ndarray, region: np.ndarray, band: float) -> None:
        self.image = image
        self.labels, self.count = ndi.label(~fg)
        self.reaches_out = np.zeros(self.count + 1, bool)
        self.reaches_out[np.unique(self.labels[~region])] = True
        self.reaches_out[0] = True
        outside = self.reaches_out[self.labels] & ~fg
        h, w = fg.shape
        self.step = max(1, math.ceil(math.sqrt(h * w / GRID_PIXELS)))
        out_s = outside[::self.step, ::self.step]
        #: False when no background reaches outside the selection: nothing to compare with
        self.known = bool(out_s.any())
        if not self.known:
            return
        img_s = image[::self.step, ::self.step]
        sigma = LOCAL_BG_SIGMA * band / self.step
        weight = np.maximum(smooth(out_s.astype(np.float32), sigma), 1e-6)
        self.colour = np.stack([smooth(img_s[..., c] * out_s, sigma) / weight for c in range(3)], -1)
        self.nearest = nearest(~out_s, reach=float(max(out_s.shape)))[1]   # every pixel's, exactly

    def distance(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """RGB distance of the pixels (ys, xs) from the background colour next to them."""
        sy, sx = ys // self.step, xs // self.step
        local = self.colour[self.nearest[0][sy, sx], self.nearest[1][sy, sx]]
        return np.sqrt(((self.image[ys, xs] - local) ** 2).sum(1))

    def unlike(self, pixels: np.ndarray) -> np.ndarray:
        """H x W bool: the ``pixels`` whose colour is farther than UNLIKE_COLOUR_DISTANCE from
        the background next to them."""
        out = np.zeros(pixels.shape, bool)
        if self.known and pixels.any():
            ys, xs = np.nonzero(pixels)
            out[ys, xs] = self.distance(ys, xs) > UNLIKE_COLOUR_DISTANCE
        return out


def feature_holes(near: LocalBackground) -> np.ndarray:
    """H x W bool: the enclosed holes of the segmented subject whose mean colour is unlike
    the background next to the subject (its own features, see the module's text)."""
    lab, n = near.labels, near.count
    holes = ~near.reaches_out[lab]
    if not near.known or not holes.any():
        return np.zeros(lab.shape, bool)
    ys, xs = np.nonzero(holes)
    which = lab[ys, xs]
    dist = near.distance(ys, xs)
    mean = np.bincount(which, weights=dist, minlength=n + 1) / np.maximum(np.bincount(which, minlength=n + 1), 1)
    own = (mean > FEATURE_COLOUR_DISTANCE) & ~near.reaches_out
    return own[lab]


def local_background(image: np.ndarray, fg: np.ndarray, region: Optional[np.ndarray],
                     band: float) -> Optional[LocalBackground]:
    """:class:`LocalBackground` of a cut inside ``region``; None without a region (strokes
    alone: no outside to compare with)."""
    return None if region is None else LocalBackground(image, fg, region, band)
