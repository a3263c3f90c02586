"""Synthetic matting composites: procedural alpha x real-photo foreground over a background.

``SynthMattingDataset[i]`` is a pure function of ``(seed, i)``, which makes the
training stream reproducible and resumable without saving any data-loader state.
"""
from __future__ import annotations

import numpy as np
from typing import Sequence

from scipy import ndimage as ndi

from ..io.images import trimap_to_unit
from .alpha_synth import fractal_noise, random_alpha
from .photos import PhotoPool
from .trimaps import DEFAULT_MIX, random_trimap


def procedural_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Gradients, smooth colour noise and stripes: cheap backgrounds with varied statistics."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    ang = rng.uniform(0, 2 * np.pi)
    t = np.clip((np.cos(ang) * xs + np.sin(ang) * ys + 1) / 2, 0, 1)[..., None]
    img = c0 * (1 - t) + c1 * t
    kind = rng.integers(3)
    if kind == 0:
        for ch in range(3):
            img[..., ch] += rng.uniform(0.05, 0.4) * fractal_noise(size, rng, octaves=5)
    elif kind == 1:
        freq = rng.uniform(2, 30)
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (np.cos(-ang) * xs + np.sin(-ang) * ys))
        img = img * (1 - 0.4 * stripes[..., None]) + 0.4 * stripes[..., None] * rng.uniform(0, 1, 3)
    img += rng.normal(0, rng.uniform(0, 0.03), img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def color_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random saturation, per-channel gain and gamma: cheap stand-in for HSV jitter."""
    grey = img.mean(axis=2, keepdims=True)
    img = grey + rng.uniform(0.3, 1.4) * (img - grey)
    img = img * rng.uniform(0.75, 1.25, 3)
    img = np.clip(img, 0, 1) ** rng.uniform(0.7, 1.4)
    return img.astype(np.float32)


def low_contrast_foreground(bg: np.ndarray, texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A foreground coloured like the background it sits on, off by a small colour shift.

    White lace on a white backdrop, a grey cat on grey carpet: the only cue is a
    few levels of colour difference, which the network must read against the
    local background rather than from global colour statistics. The colour is the
    blurred background plus a shift of 0.03 to 0.15 (RGB in 0..1), with a faint
    copy of ``texture`` so the foreground is not flat.
    """
    local = ndi.gaussian_filter(bg, (rng.uniform(4, 24),) * 2 + (0,))
    direction = rng.normal(size=3)
    shift = direction / max(float(np.linalg.norm(direction)), 1e-6) * rng.uniform(0.03, 0.15)
    detail = rng.uniform(0.0, 0.25) * (texture - texture.mean(axis=(0, 1)))
    return np.clip(local + shift + detail, 0, 1).astype(np.float32)


def compose_sample(alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray,
                   rng: np.random.Generator, jpeg: float = 0.0) -> np.ndarray:
    """I = fg * alpha + bg * (1 - alpha), with sensor noise, quantised to 8 bit; a share
    ``jpeg`` is re-encoded as JPEG (quality 60-95), as camera photos are."""
    a = alpha[..., None]
    img = fg * a + bg * (1 - a)
    if rng.random() < 0.5:
        img = img + rng.normal(0, rng.uniform(0.002, 0.02), img.shape)
    img8 = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    if jpeg > 0 and rng.random() < jpeg:
        import io

        from PIL import Image
        buf = io.BytesIO()
        Image.fromarray(img8).save(buf, format="JPEG", quality=int(rng.integers(60, 96)))
        img8 = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return (img8 / 255).astype(np.float32)


class SynthMattingDataset:
    """Map-style dataset of synthetic composites (works with ``torch.utils.data.DataLoader``).

    Items are dicts of float32 numpy arrays: ``image`` (3, S, S) in [0, 1],
    ``alpha`` (1, S, S) in [0, 1], ``trimap`` (1, S, S) in {0, 0.5, 1}.
    """

    def __init__(self, pool: PhotoPool, size: int = 256, length: int = 10 ** 9, seed: int = 0,
                 procedural_bg: float = 0.2, trimap_scale: float | None = None,
                 low_contrast: float = 0.12, trimap_mix: Sequence[float] = DEFAULT_MIX, jpeg: float = 0.0):
        if size < 16:
            raise ValueError(f"crop size must be >= 16, got {size}")
        self.pool, self.size, self.length, self.seed = pool, size, length, seed
        self.procedural_bg = procedural_bg
        self.low_contrast = low_contrast  # share of low_contrast_foreground samples
        # Kernels 1..29 are defined for 512-px crops of full photos in the official recipe;
        # our mattes are drawn at crop scale, where Composition-1k-like bands are ~2x wider.
        self.trimap_scale = trimap_scale if trimap_scale is not None else size / 256
        self.trimap_mix = tuple(trimap_mix)
        self.jpeg = jpeg

    def __len__(self) -> int:
        return self.length

    def raw(self, index: int) -> dict[str, np.ndarray]:
        """H x W (x 3) arrays: image, alpha, fg, bg (float32) and trimap (uint8 0/128/255)."""
        rng = np.random.default_rng([self.seed, index])
        s = self.size
        alpha = random_alpha(s, rng)
        n = len(self.pool)
        i_fg = int(rng.integers(n))
        fg = self.pool.crop(rng, s, index=i_fg)
        u = rng.random()
        if u < 0.3:
            # Hair and fur are coloured coherently along a strand: smooth the texture.
            fg = ndi.gaussian_filter(fg, (rng.uniform(2, 10),) * 2 + (0,))
        elif u < 0.45:
            # Near-uniform colour with soft shading (dyed hair, plain fabric, glass tint).
            shade = 1 + 0.25 * fractal_noise(s, rng, octaves=2)[..., None]
            fg = np.clip(fg.reshape(-1, 3).mean(0) * shade, 0, 1).astype(np.float32)
        if rng.random() < 0.5:
            fg = color_jitter(fg, rng)
        if rng.random() < self.procedural_bg or n < 2:
            bg = procedural_background(s, rng)
        else:
            # A different photo from the foreground's, except sometimes the same one:
            # hard cases where foreground and background share colours.
            i_bg = i_fg if rng.random() < 0.08 else int((i_fg + rng.integers(1, n)) % n)
            bg = self.pool.crop(rng, s, index=i_bg)
            if rng.random() < 0.3:
                bg = ndi.gaussian_filter(bg, (rng.uniform(1, 6),) * 2 + (0,))  # defocused background
        if rng.random() < self.low_contrast:
            fg = low_contrast_foreground(bg, fg, rng)
        image = compose_sample(alpha, fg, bg, rng, self.jpeg)
        trimap = random_trimap(alpha, rng, self.trimap_scale, self.trimap_mix, image=image)
        return {"image": image, "alpha": alpha, "fg": fg, "bg": bg, "trimap": trimap}

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        r = self.raw(index)
        return {
            "image": np.ascontiguousarray(r["image"].transpose(2, 0, 1)),
            "alpha": r["alpha"][None],
            "trimap": trimap_to_unit(r["trimap"])[None],
        }


