"""Procedural alpha mattes that exercise what matting has to solve.

Each generator returns an ``S x S`` float32 array in [0, 1]. :func:`random_alpha`
combines them: a solid body with an anti-aliased or defocused outline, hair and fur
strands of varying width and opacity drawn with sub-pixel accuracy, semi-transparent
glass/smoke/lace regions, holes, thin structures and motion blur.
All randomness comes from the ``numpy.random.Generator`` passed in, so a sample is a
pure function of its seed (needed for exact training resume).
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

SUPERSAMPLE = 4  # strands are drawn at 4x and box-filtered: widths down to 0.25 px


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return ys, xs


def _soft_inside(signed_dist: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance in pixels (positive inside)."""
    return np.clip(signed_dist + 0.5, 0.0, 1.0).astype(np.float32)


def polar_blob(size: int, rng: np.random.Generator, center=None, radius=None) -> np.ndarray:
    """A star-shaped body with a smooth random outline (a head, a toy, a shoulder)."""
    ys, xs = _grid(size)
    if center is None:
        center = rng.uniform(-0.2, 1.2, size=2) * size
    if radius is None:
        radius = rng.uniform(0.25, 0.8) * size
    cy, cx = center
    theta = np.arctan2(ys - cy, xs - cx)
    r = np.hypot(ys - cy, xs - cx)
    edge = np.ones_like(theta)
    for k in range(1, int(rng.integers(3, 9))):
        edge += rng.normal(0, 0.18 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    edge = radius * np.clip(edge, 0.3, None)
    # Coverage from radial distance scaled to an approximate Euclidean edge distance.
    return _soft_inside(edge - r)


def wavy_halfplane(size: int, rng: np.random.Generator) -> np.ndarray:
    """An object filling one side of the crop with a wavy outline."""
    ys, xs = _grid(size)
    ang = rng.uniform(0, 2 * np.pi)
    ny, nx = np.sin(ang), np.cos(ang)
    c = size / 2 + rng.uniform(-0.3, 0.3, size=2) * size
    d = (ys - c[0]) * ny + (xs - c[1]) * nx
    t = -(ys - c[0]) * nx + (xs - c[1]) * ny
    for _ in range(int(rng.integers(1, 5))):
        freq = rng.uniform(0.5, 8) * 2 * np.pi / size
        d += rng.uniform(0, 0.08) * size * np.sin(freq * t + rng.uniform(0, 2 * np.pi))
    return _soft_inside(d)


def fractal_noise(size: int, rng: np.random.Generator, octaves: int = 4,
                  base: int | None = None) -> np.ndarray:
    """Smooth value noise in roughly [-1, 1]: upsampled random grids summed over scales."""
    out = np.zeros((size, size), np.float32)
    base = base or int(rng.integers(2, 6))
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = min(base * 2 ** o, size)
        small = rng.standard_normal((n, n)).astype(np.float32)
        up = np.asarray(Image.fromarray(small, mode="F").resize((size, size), Image.BICUBIC))
        out += amp * up
        total += amp
        amp *= 0.5
    return out / total


def smoke(size: int, rng: np.random.Generator) -> np.ndarray:
    """Wispy semi-transparent smoke or haze."""
    n = fractal_noise(size, rng, octaves=int(rng.integers(3, 6)))
    thr, gain = rng.uniform(-0.3, 0.4), rng.uniform(1.5, 5)
    return (np.clip((n - thr) * gain, 0, 1) * rng.uniform(0.3, 0.95)).astype(np.float32)


def lace(size: int, rng: np.random.Generator) -> np.ndarray:
    """Thin curved ridges (lace, net, leaves' veins): iso-lines of smooth noise."""
    n = fractal_noise(size, rng, octaves=3, base=int(rng.integers(3, 10)))
    width = rng.uniform(0.01, 0.08)
    ridge = np.clip(1 - np.abs(n) / width, 0, 1)
    return (ridge * rng.uniform(0.5, 1.0)).astype(np.float32)


def glass(size: int, rng: np.random.Generator) -> np.ndarray:
    """A transparent body: low opacity inside, brighter rim (Fresnel-like) at the outline."""
    body = polar_blob(size, rng, radius=rng.uniform(0.2, 0.6) * size)
    inside = body > 0.5
    if not inside.any():
        return body * rng.uniform(0.1, 0.6)
    dist = ndi.distance_transform_edt(inside).astype(np.float32)
    base_op = rng.uniform(0.03, 0.5)
    rim = np.exp(-dist / rng.uniform(1.5, 8))
    streak = np.clip(fractal_noise(size, rng, octaves=2), 0, 1) * rng.uniform(0, 0.4)
    return (body * np.clip(base_op + (1 - base_op) * rim * rng.uniform(0.3, 1) + streak, 0, 1)).astype(np.float32)


def grid_net(size: int, rng: np.random.Generator) -> np.ndarray:
    """A net or mesh of thin lines (fabric, fence, insect screen)."""
    ss = SUPERSAMPLE
    canvas = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(canvas)
    pitch = rng.uniform(0.04, 0.2) * size * ss
    width = max(1, int(rng.uniform(0.3, 2.5) * ss))
    val = int(255 * rng.uniform(0.4, 1))
    ang = rng.uniform(0, np.pi)
    L = size * ss * 1.5
    cx = cy = size * ss / 2
    for a in (ang, ang + np.pi / 2 + rng.uniform(-0.3, 0.3)):
        dy, dx = np.sin(a), np.cos(a)
        for k in np.arange(-L, L, pitch):
            oy, ox = cy - dx * k, cx + dy * k  # offset along the perpendicular
            draw.line([(ox - dx * L, oy - dy * L), (ox + dx * L, oy + dy * L)], fill=val, width=width)
    return _downsample(canvas, size)


def _downsample(canvas: Image.Image, size: int) -> np.ndarray:
    return np.asarray(canvas.resize((size, size), Image.BOX), dtype=np.float32) / 255.0


def _boundary_points(mask: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random (y, x) points on the 0.5 level-set of ``mask`` (empty if none)."""
    edge = (mask > 0.5) & ~ndi.binary_erosion(mask > 0.5)
    pts = np.argwhere(edge)
    if len(pts) == 0:
        return pts.astype(np.float32)
    return pts[rng.integers(0, len(pts), size=n)].astype(np.float32)


def strands(size: int, rng: np.random.Generator, body: np.ndarray | None, kind: str) -> np.ndarray:
    """Hair (long, curving) or fur (short, dense) strands with varied width and opacity.

    Strands grow outward from the body's outline when there is one, else anywhere.
    Each opacity layer is drawn separately and the layers are combined as independent
    coverage, so crossing strands darken like real hair.
    """
    ss = SUPERSAMPLE
    big = size * ss
    if kind == "fur":
        # Dense: real fur leaves few fully transparent pixels between strands.
        count = int(rng.integers(300, 1500))
        length = rng.uniform(0.03, 0.25, size=count) * size
        curl = rng.uniform(0.0, 0.15)
    else:
        count = int(rng.integers(40, 600))
        length = rng.uniform(0.15, 0.9, size=count) * size
        curl = rng.uniform(0.0, 0.1)
    if body is not None and body.max() > 0.5 and body.min() < 0.5:
        starts = _boundary_points(body, rng, count)
        # Grow along the outward normal: the negative gradient of the blurred body.
        sm = ndi.gaussian_filter(body, 3)
        gy, gx = np.gradient(sm)
        iy, ix = starts[:, 0].astype(int), starts[:, 1].astype(int)
        base_ang = np.arctan2(-gy[iy, ix], -gx[iy, ix])
        # Push starts slightly inside so strands root in the body.
        starts = starts - 2 * np.stack([np.sin(base_ang), np.cos(base_ang)], 1)
    else:
        starts = rng.uniform(0, size, size=(count, 2)).astype(np.float32)
        base_ang = np.full(count, rng.uniform(0, 2 * np.pi))
    ang0 = base_ang + rng.normal(0, rng.uniform(0.1, 0.6), size=count)
    n_layers = 3
    # One extra, fainter layer holds the strands' tips: hair tapers and thins out.
    layers = [Image.new("L", (big, big), 0) for _ in range(n_layers + 1)]
    draws = [ImageDraw.Draw(im) for im in layers]
    opac = rng.uniform(0.25, 1.0, size=n_layers + 1)
    opac[-1] = opac[:-1].min() * rng.uniform(0.3, 0.8)
    width_scale = rng.uniform(0.25, 2.5)  # strand thickness in px, per sample
    segs = 12
    for i in range(count):
        steps = length[i] / segs
        turn = np.cumsum(rng.normal(0, curl, size=segs) + rng.normal(0, curl))
        a = ang0[i] + turn
        py = starts[i, 0] + np.concatenate([[0], np.cumsum(np.sin(a) * steps)])
        px = starts[i, 1] + np.concatenate([[0], np.cumsum(np.cos(a) * steps)])
        pts = list(zip((px * ss).tolist(), (py * ss).tolist()))
        w = max(1, int(round(width_scale * rng.uniform(0.4, 1.2) * ss)))
        cut = int(rng.integers(segs // 2, segs + 1))
        draws[i % n_layers].line(pts[:cut + 1], fill=255, width=w, joint="curve")
        if cut < segs:
            draws[-1].line(pts[cut:], fill=255, width=max(1, w // 2), joint="curve")
    out = np.ones((size, size), np.float32)
    for im, op in zip(layers, opac):
        out *= 1 - _downsample(im, size) * op
    return 1 - out


def holes(size: int, rng: np.random.Generator) -> np.ndarray:
    """Coverage of a few small blobs to cut out of a body (gaps between fingers, buttonholes)."""
    out = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(1, 6))):
        out = np.maximum(out, polar_blob(size, rng, center=rng.uniform(0, 1, 2) * size,
                                         radius=rng.uniform(0.03, 0.15) * size))
    return out


def thin_lines(size: int, rng: np.random.Generator) -> np.ndarray:
    """A few long thin curves (ropes, antennae, whiskers, cables)."""
    ss = SUPERSAMPLE
    canvas = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 8))):
        p0 = rng.uniform(-0.2, 1.2, 2) * size
        a = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.08, 20))
        step = rng.uniform(0.03, 0.08) * size
        py = p0[0] + np.cumsum(np.sin(a) * step)
        px = p0[1] + np.cumsum(np.cos(a) * step)
        w = max(1, int(rng.uniform(0.3, 6) * ss))
        draw.line(list(zip((px * ss).tolist(), (py * ss).tolist())), fill=int(255 * rng.uniform(0.5, 1)),
                  width=w, joint="curve")
    return _downsample(canvas, size)


def motion_blur(alpha: np.ndarray, rng: np.random.Generator, length: int | None = None) -> np.ndarray:
    """Average of shifted copies along a random direction (a linear motion kernel)."""
    length = length or int(rng.integers(3, 16))
    ang = rng.uniform(0, np.pi)
    acc = np.zeros_like(alpha)
    pad = length
    padded = np.pad(alpha, pad, mode="edge")
    h, w = alpha.shape
    for k in range(length):
        off = k - (length - 1) / 2
        dy, dx = int(round(off * np.sin(ang))), int(round(off * np.cos(ang)))
        acc += padded[pad + dy:pad + dy + h, pad + dx:pad + dx + w]
    return acc / length


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1 - (1 - a) * (1 - b)


def random_alpha(size: int, rng: np.random.Generator, max_tries: int = 8) -> np.ndarray:
    """One random matte with a non-empty partially transparent region, quantised to 8 bit."""
    for _ in range(max_tries):
        alpha = _random_alpha_once(size, rng)
        q = np.round(alpha * 255) / 255
        frac_unknown = ((q > 0) & (q < 1)).mean()
        if frac_unknown > 0.003:
            return q.astype(np.float32)
    return q.astype(np.float32)


def _random_alpha_once(size: int, rng: np.random.Generator) -> np.ndarray:
    u = rng.random()
    if u < 0.45:
        body = polar_blob(size, rng)
    elif u < 0.8:
        body = wavy_halfplane(size, rng)
    elif u < 0.9:
        body = np.maximum(polar_blob(size, rng), polar_blob(size, rng))
    else:
        body = None
    alpha = np.zeros((size, size), np.float32) if body is None else body.copy()

    if body is not None and rng.random() < 0.35:
        # Defocused or soft outline (out-of-focus object, soft fabric edge).
        alpha = ndi.gaussian_filter(alpha, rng.uniform(0.7, 6))
    if body is not None and rng.random() < 0.2:
        alpha = alpha * (1 - holes(size, rng))

    r = rng.random()
    if r < 0.40:
        alpha = _union(alpha, strands(size, rng, body, "hair"))
    elif r < 0.70:
        alpha = _union(alpha, strands(size, rng, body, "fur"))
    if rng.random() < 0.12:
        alpha = _union(alpha, strands(size, rng, body, "hair"))  # mixed: fur + long hair

    if rng.random() < 0.25:
        kind = rng.integers(4)
        extra = (glass, smoke, lace, grid_net)[kind](size, rng)
        alpha = _union(alpha, extra) if rng.random() < 0.5 or body is None else np.where(
            body > 0.5, extra, alpha)  # replace the body by the transparent material
    if rng.random() < 0.12:
        alpha = _union(alpha, thin_lines(size, rng))
    if rng.random() < 0.08:
        alpha = motion_blur(alpha, rng)
    if rng.random() < 0.06:
        alpha = ndi.gaussian_filter(alpha, rng.uniform(0.5, 2.5))  # whole-frame defocus
    if body is None and alpha.max() < 0.05:
        alpha = _union(alpha, strands(size, rng, None, "hair"))
    return np.clip(alpha, 0, 1).astype(np.float32)
