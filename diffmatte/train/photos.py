"""A small in-memory pool of real photographs used for synthetic composites.

Foreground colours/textures and backgrounds both come from real photos so a network
cannot tell foreground from background by colour statistics alone. Photos are found in
the system wallpaper folders (Debian packages ``lomiri-wallpapers-16.04`` and
``mate-backgrounds``), scikit-image's bundled samples (with the optional ``walker`` extra),
and any folders the user adds.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}

# Folders searched when the user names none. Missing folders are skipped silently.
SYSTEM_PHOTO_DIRS = (
    "/usr/share/backgrounds",
    "/usr/share/wallpapers",
)


def _skimage_data_dir() -> str | None:
    try:
        import skimage.data  # noqa: PLC0415 (the optional 'walker' extra, imported lazily)
    except Exception:  # pragma: no cover - scikit-image is optional here
        return None
    return os.path.dirname(skimage.data.__file__)


def default_photo_dirs() -> list[str]:
    """System wallpaper folders plus scikit-image's sample-image folder, when present
    (scikit-image comes with the optional ``walker`` or ``test`` extra)."""
    dirs = [d for d in SYSTEM_PHOTO_DIRS if os.path.isdir(d)]
    sk = _skimage_data_dir()
    if sk:
        dirs.append(sk)
    return dirs


def find_photos(dirs: Iterable[str | os.PathLike]) -> list[Path]:
    """All image files under ``dirs`` (recursive), sorted for reproducibility."""
    found: set[Path] = set()
    for d in dirs:
        root = Path(d)
        if root.is_file() and root.suffix.lower() in PHOTO_SUFFIXES:
            found.add(root.resolve())
            continue
        if not root.is_dir():
            continue
        for p in root.rglob("*"):
            if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES:
                found.add(p.resolve())
    return sorted(found)


def _load_photo(path: Path, max_side: int, min_side: int) -> np.ndarray | None:
    """Decode, drop alpha, downscale so the longer side is <= max_side; None if unusable."""
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                # draft() decodes at a reduced DCT scale: 10x faster on 4K wallpapers.
                im.draft("RGB", (max_side, max_side))
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            im = im.convert("RGB")
            w, h = im.size
            if min(w, h) < min_side:
                return None
            scale = max_side / max(w, h)
            if scale < 1:
                im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except Exception:
        return None  # a broken or exotic file must not stop training
    if arr.std() < 4:  # flat images (plain colours, masks) teach nothing
        return None
    return arr


class PhotoPool:
    """Decoded photos kept in memory as uint8 arrays; crops are drawn from them."""

    def __init__(self, photos: Sequence[np.ndarray], names: Sequence[str] | None = None):
        if not photos:
            raise ValueError("PhotoPool needs at least one photo")
        self.photos = list(photos)
        self.names = list(names) if names is not None else [str(i) for i in range(len(photos))]

    @classmethod
    def from_dirs(cls, dirs: Iterable[str | os.PathLike] | None = None, max_side: int = 768,
                  min_side: int = 96) -> "PhotoPool":
        """Load every usable photo under ``dirs`` (default: :func:`default_photo_dirs`)."""
        dirs = list(dirs) if dirs is not None else default_photo_dirs()
        photos, names = [], []
        for p in find_photos(dirs):
            arr = _load_photo(p, max_side, min_side)
            if arr is not None:
                photos.append(arr)
                names.append(str(p))
        if not photos:
            raise ValueError(
                f"no usable photos found in {dirs!r}; install the Debian packages "
                "lomiri-wallpapers-16.04 / mate-backgrounds, scikit-image (pip install -e '.[walker]'), "
                "or pass --photos DIR")
        return cls(photos, names)

    def __len__(self) -> int:
        return len(self.photos)

    def crop(self, rng: np.random.Generator, size: int, index: int | None = None,
             zoom: tuple[float, float] = (0.25, 1.0)) -> np.ndarray:
        """A random ``size`` x ``size`` float32 RGB crop in [0, 1], randomly zoomed and flipped.

        ``zoom`` is the crop side as a fraction of the photo's shorter side before resizing.
        """
        photo = self.photos[int(rng.integers(len(self.photos))) if index is None else index]
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(*zoom))
        side = max(min(side, h, w), 8)
        y = int(rng.integers(0, h - side + 1))
        x = int(rng.integers(0, w - side + 1))
        patch = Image.fromarray(photo[y:y + side, x:x + side])
        if side != size:
            patch = patch.resize((size, size), Image.BILINEAR)
        arr = np.asarray(patch, dtype=np.float32) / 255.0
        if rng.random() < 0.5:
            arr = arr[:, ::-1]
        return np.ascontiguousarray(arr)
