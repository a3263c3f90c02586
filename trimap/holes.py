"""Holes in a segmented subject that are its own dark or coloured features, not background.

A graph cut inside a rough selection drops every part of the subject whose colour the
background model explains: the background seen through a wicker ball or between leaves
(right), but also a plush toy's black eyes and nose when the background has dark trees
somewhere (wrong: banded as holes, their middles became certain background). The two
differ in *where* their colour is found: a see-through hole shows the background that
surrounds the subject there, a feature does not. So each enclosed hole (a background
component that does not reach outside the selection) is compared with the background
colour next to the subject nearest to it, smoothed over a few band radii; a hole whose
mean colour lies farther than ``FEATURE_COLOUR_DISTANCE`` from it is given back to the
subject.

Measured on the lasso bench's segmentations of the 13 dev photos (docs/TRIMAP.md, "Rough
input"): the see-through holes lie 0.06-0.21 from their local background, except one
132-px half-transparent hole of GT01 (0.44); the subject's own features 0.13-0.39, six of
them (3,600 px: GT07's eyes and nose, a dark patch of GT13, a speck of GT06) above 0.3.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from ._smooth import smooth

#: RGB distance (0..1) between a hole's mean colour and the background next to the subject
#: beyond which the hole is the subject's own (see the module's text)
FEATURE_COLOUR_DISTANCE = 0.3
#: the local background colour: a Gaussian mean over this many band radii
LOCAL_BG_SIGMA = 3.0
#: the background colour and the nearest-pixel map are computed on a grid of at most this
#: many cells (the colour is smooth at that scale; 24 MP costs what 1 MP does)
GRID_PIXELS = 250_000


def feature_holes(image: np.ndarray, fg: np.ndarray, region: np.ndarray, band: float) -> np.ndarray:
    """H x W bool: the enclosed holes of ``fg`` (the segmented subject inside ``region``)
    whose colour is unlike the background around the subject. ``image`` is H x W x 3 float
    in 0..1, ``band`` the band radius in pixels."""
    bg = ~fg
    lab, n = ndi.label(bg)
    if n == 0:
        return np.zeros_like(fg)
    reaches_out = np.zeros(n + 1, bool)
    reaches_out[np.unique(lab[~region])] = True
    reaches_out[0] = True
    outside = reaches_out[lab] & bg
    holes = ~reaches_out[lab]
    if not holes.any() or not outside.any():
        return np.zeros_like(fg)
    h, w = fg.shape
    f = max(1, math.ceil(math.sqrt(h * w / GRID_PIXELS)))
    out_s = outside[::f, ::f]
    if not out_s.any():
        return np.zeros_like(fg)
    img_s = image[::f, ::f]
    sigma = LOCAL_BG_SIGMA * band / f
    weight = np.maximum(smooth(out_s.astype(np.float32), sigma), 1e-6)
    colour = np.stack([smooth(img_s[..., c] * out_s, sigma) / weight for c in range(3)], -1)
    _, (iy, ix) = ndi.distance_transform_edt(~out_s, return_indices=True)
    hy, hx = np.nonzero(holes)
    sy, sx = hy // f, hx // f
    local = colour[iy[sy, sx], ix[sy, sx]]
    dist = np.sqrt(((image[hy, hx] - local) ** 2).sum(1))
    which = lab[hy, hx]
    mean = np.bincount(which, weights=dist, minlength=n + 1) / np.maximum(np.bincount(which, minlength=n + 1), 1)
    own = (mean > FEATURE_COLOUR_DISTANCE) & ~reaches_out
    return own[lab]
