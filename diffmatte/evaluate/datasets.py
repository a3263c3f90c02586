"""Reading matting evaluation sets (image, ground-truth alpha, trimap) in common layouts.

Recognised layouts in a folder:
- ``N_image.png`` / ``N_alpha.png`` / ``N_trimap.png`` (the dev comp1k-crops / comp1k-full);
- ``NAME.png`` / ``NAMEAlpha.png`` / ``NAMETrimap.png`` (gandalf);
- sub-folders ``image|images|merged|input`` + ``alpha|alphas|alpha_copy|gt`` + ``trimap|trimaps``
  with files paired by name stem (Composition-1k test, Distinctions-646, AIM-500); several
  trimap folders (``trimap1/``, ``trimap2/``: alphamatting.com) give one case per trimap,
  named ``STEM@trimap1``.
A folder with none of these but with sub-folders that have one is read as several sets
(``diffmatte eval ../shared/data/dev`` evaluates every subset that has ground truth).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..io.images import trimap_to_unit

SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
_IMAGE_DIRS = ("image", "images", "merged", "composite", "input")
_ALPHA_DIRS = ("alpha", "alphas", "alpha_copy", "gt", "mask")
_TRIMAP_DIRS = ("trimap", "trimaps")


@dataclass
class Sample:
    """One evaluation item: image H x W x 3 float32 [0,1], alpha H x W float32 [0,1],
    trimap H x W uint8 0/128/255."""

    name: str
    image: np.ndarray
    alpha: np.ndarray
    trimap: np.ndarray
    image_path: Path


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def read_alpha(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I"):
            return np.clip(np.asarray(im, dtype=np.float32) / 65535.0, 0, 1)
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def read_trimap_u8(path: Path) -> np.ndarray:
    """0/128/255 trimap; palette/LA/RGB files are converted to grey first."""
    with Image.open(path) as im:
        g = np.asarray(im.convert("L"), dtype=np.uint8)
    unit = trimap_to_unit(g)
    return np.where(unit == 0.5, 128, unit * 255).astype(np.uint8)


def _files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in SUFFIXES}


def find_triplets(folder: str | os.PathLike) -> list[tuple[str, Path, Path, Path]]:
    """(name, image, alpha, trimap) paths in one folder; empty when no layout matches."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"dataset folder not found: {folder}")
    files = _files(folder)
    out = []
    for stem, p in files.items():
        m = re.fullmatch(r"(.*?)[_-]?image", stem)
        if m:
            base = m.group(1)
            a = files.get(f"{base}_alpha") or files.get(f"{base}alpha")
            t = files.get(f"{base}_trimap") or files.get(f"{base}trimap")
            if a and t:
                out.append((base, p, a, t))
                continue
        a, t = files.get(stem + "Alpha"), files.get(stem + "Trimap")
        if a and t:
            out.append((stem, p, a, t))
    if out:
        return sorted(out, key=lambda x: _natural_key(x[0]))
    subs = {d.name.lower(): d for d in folder.iterdir() if d.is_dir()}
    img_d = next((subs[n] for n in _IMAGE_DIRS if n in subs), None)
    alp_d = next((subs[n] for n in _ALPHA_DIRS if n in subs), None)
    # Several trimap sets (alphamatting.com: trimap1/ and trimap2/) give one case per set.
    tri_ds = [subs[n] for n in sorted(subs, key=_natural_key)
              if n in _TRIMAP_DIRS or re.fullmatch(r"trimaps?\d+", n)]
    if img_d and alp_d and tri_ds:
        imgs, alps = _files(img_d), _files(alp_d)
        for tri_d in tri_ds:
            tris = _files(tri_d)
            for stem in sorted(imgs, key=_natural_key):
                if stem in alps and stem in tris:
                    name = stem if len(tri_ds) == 1 else f"{stem}@{tri_d.name}"
                    out.append((name, imgs[stem], alps[stem], tris[stem]))
    return out


def _natural_key(s: str):
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", s)]


def find_dataset(folder: str | os.PathLike) -> list[tuple[str, Path, Path, Path]]:
    """Triplets of ``folder``, or of its immediate sub-folders (names prefixed) if it has none."""
    folder = Path(folder)
    found = find_triplets(folder)
    if found:
        return found
    for sub in sorted(d for d in folder.iterdir() if d.is_dir()):
        found += [(f"{sub.name}/{n}", i, a, t) for n, i, a, t in find_triplets(sub)]
    if not found:
        raise ValueError(f"no (image, alpha, trimap) triplets found in {folder}; expected N_image.png / "
                         "N_alpha.png / N_trimap.png files or image/ alpha/ trimap/ folders")
    return found


def load_samples(folder: str | os.PathLike, limit: int = 0) -> list[Sample]:
    """Load and validate the first ``limit`` (0: all) samples; a broken item raises ValueError."""
    out = []
    for name, ip, ap, tp in find_dataset(folder)[: limit or None]:
        out.append(load_sample(name, ip, ap, tp))
    return out


def load_sample(name: str, ip: Path, ap: Path, tp: Path) -> Sample:
    image, alpha, trimap = read_rgb(ip), read_alpha(ap), read_trimap_u8(tp)
    if not (image.shape[:2] == alpha.shape == trimap.shape):
        raise ValueError(f"{name}: image {image.shape[:2]}, alpha {alpha.shape} and trimap {trimap.shape} "
                         "sizes differ")
    return Sample(name, image, alpha, trimap, ip)
