"""Training on real foreground/alpha pairs laid out like the Composition-1k training set.

Accepted layouts under ``root`` (files paired by name stem, searched recursively):
- ``fg/`` + ``alpha/``: foregrounds composited on random backgrounds (``bg/`` under
  ``root`` if present, else the photo pool), as in Deep Image Matting.
- ``image/`` + ``alpha/``: already-composited photos (P3M/AIM style), used as they are.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .photos import PHOTO_SUFFIXES, PhotoPool, find_photos
from ..io.images import trimap_to_unit
from .synth import color_jitter, compose_sample
from .trimaps import DEFAULT_MIX, random_trimap


def _index(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES:
            out.setdefault(p.stem, p)
    return out


def find_pairs(root: str | os.PathLike) -> tuple[list[tuple[Path, Path]], bool]:
    """(colour, alpha) path pairs and whether the colour images are bare foregrounds."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"training data folder not found: {root}")
    alpha_dir = root / "alpha"
    if not alpha_dir.is_dir():
        raise ValueError(f"{root} has no 'alpha/' folder (expected fg/ + alpha/ or image/ + alpha/)")
    for name, is_fg in (("fg", True), ("image", False)):
        d = root / name
        if d.is_dir():
            colours, alphas = _index(d), _index(alpha_dir)
            common = sorted(set(colours) & set(alphas))
            if not common:
                raise ValueError(f"no file names shared by {d} and {alpha_dir}")
            return [(colours[k], alphas[k]) for k in common], is_fg
    raise ValueError(f"{root} has neither 'fg/' nor 'image/' next to 'alpha/'")


@lru_cache(maxsize=64)
def _load_pair(colour: Path, alpha: Path) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(Image.open(colour).convert("RGB"), dtype=np.uint8)
    a = np.asarray(Image.open(alpha).convert("L"), dtype=np.uint8)
    if c.shape[:2] != a.shape:
        raise ValueError(f"size mismatch: {colour} is {c.shape[1]}x{c.shape[0]}, {alpha} is {a.shape[1]}x{a.shape[0]}")
    return c, a


class FolderMattingDataset:
    """Random crops of real mattes; same item format as :class:`SynthMattingDataset`."""

    def __init__(self, root: str | os.PathLike, pool: PhotoPool | None, size: int = 256,
                 length: int = 10 ** 9, seed: int = 0, trimap_mix: Sequence[float] = DEFAULT_MIX):
        self.pairs, self.is_fg = find_pairs(root)
        self.trimap_mix = tuple(trimap_mix)
        bg_dir = Path(root) / "bg"
        if self.is_fg and bg_dir.is_dir() and find_photos([bg_dir]):
            pool = PhotoPool.from_dirs([bg_dir])
        if self.is_fg and pool is None:
            raise ValueError("compositing foregrounds needs backgrounds: add a bg/ folder or photo folders")
        self.pool, self.size, self.length, self.seed = pool, size, length, seed

    def __len__(self) -> int:
        return self.length

    def _crop(self, rng: np.random.Generator, colour: np.ndarray, alpha: np.ndarray):
        s = self.size
        h, w = alpha.shape
        scale = rng.uniform(0.5, 1.5) * s / min(h, w) * rng.uniform(1.0, 3.0)
        scale = max(scale, s / min(h, w))  # never smaller than the crop
        nh, nw = max(s, round(h * scale)), max(s, round(w * scale))
        c = np.asarray(Image.fromarray(colour).resize((nw, nh), Image.BILINEAR), np.float32) / 255
        a = np.asarray(Image.fromarray(alpha).resize((nw, nh), Image.BILINEAR), np.float32) / 255
        # Centre the crop on a partly transparent pixel when there is one (as DIM does).
        ys, xs = np.nonzero((a > 0.01) & (a < 0.99))
        if len(ys):
            k = int(rng.integers(len(ys)))
            y0 = int(np.clip(ys[k] - s // 2, 0, nh - s))
            x0 = int(np.clip(xs[k] - s // 2, 0, nw - s))
        else:
            y0, x0 = int(rng.integers(nh - s + 1)), int(rng.integers(nw - s + 1))
        c, a = c[y0:y0 + s, x0:x0 + s], a[y0:y0 + s, x0:x0 + s]
        if rng.random() < 0.5:
            c, a = c[:, ::-1], a[:, ::-1]
        return np.ascontiguousarray(c), np.ascontiguousarray(a)

    def raw(self, index: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, index])
        colour_path, alpha_path = self.pairs[int(rng.integers(len(self.pairs)))]
        colour, alpha = self._crop(rng, *_load_pair(colour_path, alpha_path))
        alpha = np.round(alpha * 255) / 255
        if self.is_fg:
            fg = color_jitter(colour, rng) if rng.random() < 0.5 else colour
            bg = self.pool.crop(rng, self.size)
            image = compose_sample(alpha, fg, bg, rng)
        else:
            image = colour
        trimap = random_trimap(alpha, rng, self.size / 512, self.trimap_mix, image=image)
        return {"image": image.astype(np.float32), "alpha": alpha.astype(np.float32), "trimap": trimap}

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        r = self.raw(index)
        return {"image": np.ascontiguousarray(r["image"].transpose(2, 0, 1)),
                "alpha": r["alpha"][None], "trimap": trimap_to_unit(r["trimap"])[None]}


class MixedDataset:
    """Interleaves datasets by a fixed, index-determined choice (keeps items reproducible)."""

    def __init__(self, datasets: list, weights: list[float], seed: int = 0):
        if not datasets or len(datasets) != len(weights):
            raise ValueError("MixedDataset needs one weight per dataset")
        self.datasets = datasets
        self.p = np.asarray(weights, np.float64) / np.sum(weights)
        self.seed = seed

    def __len__(self) -> int:
        return min(len(d) for d in self.datasets)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, index, 7])
        return self.datasets[int(rng.choice(len(self.datasets), p=self.p))][index]
