"""Training trimaps (uint8 0 / 128 / 255) made from a ground-truth alpha.

Three styles, so the model copes with every trimap it will meet:
- ``erosion``: ViTMatte/DiffMatte GenMask: erode the fully opaque and fully
  transparent sets with independent elliptical kernels of size 1..29.
- ``dilation``: the Composition-1k test convention: the partly transparent region,
  dilated, with every fully opaque pixel outside it marked foreground.
- ``coarse``: what the product builds from a coarse, SAM-like mask: threshold the
  alpha, lose thin strands, wobble the outline, then put an unknown band around it.
- ``product``: the product's own trimap generator, ``trimap.from_mask`` (smart radius,
  image path), on a simulated SAM-like mask: the wide, uneven bands users actually send.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

FG, UNKNOWN, BG = 255, 128, 0

_DISKS: dict[int, np.ndarray] = {}


def disk(k: int) -> np.ndarray:
    """Elliptical (here circular) structuring element of diameter ``k`` (cached)."""
    k = max(int(k), 1)
    if k not in _DISKS:
        r = (k - 1) / 2
        yy, xx = np.mgrid[:k, :k] - r
        _DISKS[k] = (yy ** 2 + xx ** 2) <= (r + 0.5) ** 2
    return _DISKS[k]


def _erode(mask: np.ndarray, k: int) -> np.ndarray:
    if k <= 1:
        return mask
    # A distance transform is much faster than binary_erosion with a big disk.
    return ndi.distance_transform_edt(mask) > (k - 1) / 2


def _dilate(mask: np.ndarray, k: int) -> np.ndarray:
    if k <= 1:
        return mask
    return ~(ndi.distance_transform_edt(~mask) > (k - 1) / 2)


def _compose(fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    tri = np.full(fg.shape, UNKNOWN, np.uint8)
    tri[fg] = FG
    tri[bg & ~fg] = BG
    return tri


def _scale_k(k: int, scale: float) -> int:
    return max(1, int(round(k * scale)))


def erosion_trimap(alpha: np.ndarray, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """GenMask: erode {alpha==1} and {alpha==0} by random kernels 1..29 (times ``scale``)."""
    fg = alpha >= 1 - 1e-4
    bg = alpha <= 1e-4
    k_fg = _scale_k(int(rng.integers(1, 30)), scale)
    k_bg = _scale_k(int(rng.integers(1, 30)), scale)
    return _compose(_erode(fg, k_fg), _erode(bg, k_bg))


def dilation_trimap(alpha: np.ndarray, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Composition-1k style: unknown = dilated transition region; all alpha==1 elsewhere is fg."""
    trans = (alpha > 1e-4) & (alpha < 1 - 1e-4)
    unknown = _dilate(trans, _scale_k(int(rng.integers(3, 40)), scale))
    fg = (alpha >= 1 - 1e-4) & ~unknown if rng.random() < 0.5 else (alpha >= 1 - 1e-4)
    bg = ~unknown & ~fg
    return _compose(fg, bg)


def coarse_trimap(alpha: np.ndarray, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """A band around a coarse, slightly wrong binary mask, as a segmenter would give."""
    mask = alpha > rng.uniform(0.2, 0.8)
    # Segmenters miss thin strands and round the outline: open, then smooth-and-threshold.
    k_open = _scale_k(int(rng.integers(1, 9)), scale)
    mask = _dilate(_erode(mask, k_open), k_open)
    blurred = ndi.gaussian_filter(mask.astype(np.float32), rng.uniform(1, 6) * scale)
    mask = blurred > rng.uniform(0.35, 0.65)
    band = _scale_k(int(rng.integers(6, 40)), scale)
    fg = _erode(mask, band)
    bg = _erode(~mask, band)
    # Plainly wrong labels become unknown with some margin: the product's adaptive
    # band widens over such regions too.
    return _unknown_where_wrong(_compose(fg, bg), alpha, rng, scale)


def _unknown_where_wrong(tri: np.ndarray, alpha: np.ndarray, rng: np.random.Generator,
                         scale: float) -> np.ndarray:
    """Known labels that contradict ``alpha`` become unknown, with a margin.

    The engine copies known labels through, so a contradicted label would teach
    nothing but an error the model cannot fix.
    """
    fg, bg = tri == FG, tri == BG
    wrong = (fg & (alpha < 1 - 1e-4)) | (bg & (alpha > 1e-4))
    if wrong.any():
        grow = _dilate(wrong, _scale_k(int(rng.integers(3, 16)), scale))
        fg &= ~grow
        bg &= ~grow
    return _compose(fg, bg)


def product_trimap(alpha: np.ndarray, rng: np.random.Generator, scale: float = 1.0,
                   image: np.ndarray | None = None) -> np.ndarray:
    """What ``trimap.from_mask`` makes from a SAM-like mask of ``alpha``.

    The mask is :func:`trimap.evaluate.coarse_mask_from_alpha` (strands lost,
    outline jittered) with random strength; the band is the product default times
    0.5..2; with ``image`` given, 80 % of the samples take the image path as the
    panel and the editor do. Its bands are wider and less even than the dataset
    styles above, which is what users send (issue #4's trimap benchmark).
    """
    import trimap as tm
    from trimap.evaluate import coarse_mask_from_alpha

    coarse = coarse_mask_from_alpha(alpha, jitter=rng.uniform(0.0, 4.0), strand=rng.uniform(0.0, 3.0),
                                    seed=int(rng.integers(2 ** 31)), scale=scale)
    if not coarse.any() or coarse.all():
        return coarse_trimap(alpha, rng, scale)
    band = tm.default_band(alpha.shape) * rng.uniform(0.5, 2.0)
    img = image if image is not None and rng.random() < 0.8 else None
    tri = tm.from_mask(coarse, band=band, image=img)
    return _unknown_where_wrong(tri, alpha, rng, scale)


#: Default style mix (erosion, dilation, coarse, product): the first training cycle's.
DEFAULT_MIX = (0.35, 0.35, 0.30, 0.0)


def check_mix(weights) -> np.ndarray:
    """Validate a style mix: 3 (erosion, dilation, coarse) or 4 (+ product) non-negative weights."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) not in (3, 4) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"trimap style weights must be 3 or 4 non-negative numbers, got {weights!r}")
    return w


def random_trimap(alpha: np.ndarray, rng: np.random.Generator, scale: float = 1.0,
                  weights: tuple[float, ...] = DEFAULT_MIX,
                  image: np.ndarray | None = None) -> np.ndarray:
    """A trimap in one of the styles, chosen with probabilities ``weights``.

    ``weights`` has 3 (erosion, dilation, coarse) or 4 entries (+ product);
    ``image`` is used by the product style only.
    """
    w = check_mix(weights)
    style = int(rng.choice(len(w), p=w / w.sum()))
    if style == 3:
        tri = product_trimap(alpha, rng, scale, image)
    else:
        tri = (erosion_trimap, dilation_trimap, coarse_trimap)[style](alpha, rng, scale)
    if not (tri == UNKNOWN).any():
        tri = erosion_trimap(alpha, rng, scale)
    return tri
