"""Checks run on every input before the model loads: header sizes (no pixel decode for
images), decompression bombs, trimaps that are really masks or photos, masks without an
edge, and the layers a layered file offers. Each check raises ``ValueError`` with a
message that names the file; the planner turns it into that item's error."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from .plan import Item

_TRIMAP_LIKE = 0.95  # share of pixels near 0 / 128 / 255 that a trimap has at least


def image_size(path: Path, max_pixels: int) -> Tuple[int, int]:
    """(width, height) as the image will be read (EXIF rotation applied), from the header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees
                w, h = h, w
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{path}: refused as a decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    _check_pixels(path, w, h, max_pixels)
    return w, h


def _check_pixels(path: Path, w: int, h: int, max_pixels: int) -> None:
    if w < 1 or h < 1:
        raise ValueError(f"{path}: empty image ({w}x{h})")
    if w * h > max_pixels:
        raise ValueError(f"{path}: {w}x{h} = {w * h / 1e6:.3g} megapixels is over the limit of "
                         f"{max_pixels / 1e6:.3g} (--max-megapixels)")


def _grey(path: Path, size: Tuple[int, int], max_pixels: int, what: str) -> np.ndarray:
    from ..io.images import read_trimap

    got = image_size(path, max_pixels)
    if got != size:
        raise ValueError(f"{what} {path} is {got[0]}x{got[1]} but the image is {size[0]}x{size[1]}")
    return read_trimap(path)


def near_trimap_share(arr: np.ndarray) -> float:
    """Share of pixels within a JPEG's tolerance of 0, 128 or 255 (on an 8-bit scale)."""
    v = arr.astype(np.float32) / (65535.0 if arr.dtype == np.uint16 else 255.0) * 255.0
    near = (v <= 25) | ((v >= 103) & (v <= 153)) | (v >= 230)
    return float(near.mean())


def check_trimap(path: Path, size: Tuple[int, int], max_pixels: int) -> None:
    """A trimap must look like one and have unknown pixels; a binary mask is refused
    (pass it with --masks to band it) rather than passed through unchanged."""
    from ..io.images import to_trimap

    arr = _grey(path, size, max_pixels, "trimap")
    if near_trimap_share(arr) < _TRIMAP_LIKE:
        raise ValueError(f"trimap {path} does not look like a trimap (values other than 0/128/255 in "
                         f"{100 * (1 - near_trimap_share(arr)):.0f} % of pixels); is it a photo, or are "
                         f"images and trimaps swapped?")
    if not (to_trimap(arr) == 0.5).any():
        raise ValueError(f"trimap {path} has no unknown (grey) pixels, so there is nothing to refine; if it is "
                         f"a mask, pass its folder with --masks to band it into a trimap")


def check_mask(path: Path, size: Tuple[int, int], max_pixels: int) -> None:
    arr = _grey(path, size, max_pixels, "mask")
    check_edge(arr.astype(np.float32) / np.iinfo(arr.dtype).max, f"mask {path}")


def check_edge(m: np.ndarray, what: str) -> None:
    """A mask gives a trimap with an unknown band only if it has an edge or soft pixels."""
    soft = ((m > 0.02) & (m < 0.98)).any()
    if not soft and ((m >= 0.5).all() or (m < 0.5).all()):
        side = "foreground" if (m >= 0.5).all() else "background"
        raise ValueError(f"{what} is all {side}: there is no edge to refine")


def check_image_not_trimap(path: Path) -> None:
    """An 'image' made only of 0 / 128 / 255 grey is a trimap given as the image. Only grey
    and palette files are decoded for this (colour photos are not: planning stays cheap; a
    photo given as the trimap is caught by :func:`check_trimap`)."""
    from PIL import Image

    from ..io.images import read_image

    with Image.open(path) as im:
        if im.mode not in ("1", "L", "LA", "P", "I", "I;16", "I;16B", "I;16L"):
            return
    arr = read_image(path)
    if arr.ndim == 3 and arr.shape[2] >= 3 and not (
            np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
        return
    grey = arr if arr.ndim == 2 else arr[..., 0]
    vals = np.unique(grey)
    if len(vals) <= 3 and set(int(v) for v in vals) <= {0, 128, 255, 32896, 65535}:
        raise ValueError(f"image {path} holds only trimap values (0/128/255); are images and trimaps swapped?")


def layered_info(item: Item, data: bytes, pattern: Optional[str], max_pixels: int) -> Tuple[
        Tuple[int, int], List[Tuple[str, str]]]:
    """Canvas size and the (layer path, trimap source) pairs to refine in a layered file.

    Sources: ``"trimap"`` / ``"mask"`` (a file given for the item), else the layer's own
    ``"layer-mask"``, else its ``"transparency"``.
    """
    from ..io import layered

    name = item.image
    try:
        w, h, _ = layered.probe(data, item.fmt)
    except layered.LayeredError as exc:
        raise ValueError(f"{name}: {exc}") from None
    _check_pixels(Path(name), w, h, max_pixels)
    try:
        doc = layered.read(data, item.fmt, name)
    except layered.LayeredError as exc:
        raise ValueError(str(exc)) from None
    leaves = doc.leaves()
    names = ", ".join(p for p, _ in leaves)
    if pattern:
        chosen = doc.find(pattern)
        if not chosen:
            raise ValueError(f"{name}: no layer matches {pattern!r} (layers: {names})")
    elif len(leaves) == 1:
        chosen = leaves
    else:
        raise ValueError(f"{name} has {len(leaves)} layers ({names}); choose the one(s) to refine with --layers")
    out: List[Tuple[str, str]] = []
    for path, layer in chosen:
        if layer.kind != "pixel":
            raise ValueError(f"{name}: layer {path!r} is a {layer.kind} layer; rasterize it first")
        if item.trimap:
            out.append((path, "trimap"))
            continue
        if item.mask:
            out.append((path, "mask"))
            continue
        if layer.mask is not None:
            check_edge(layer.mask.canvas(doc.width, doc.height), f"{name}: layer {path!r}'s mask")
            out.append((path, "layer-mask"))
            continue
        alpha = doc.canvas_rgba(layer)[..., 3]
        if (alpha >= 1.0).all():
            raise ValueError(f"{name}: layer {path!r} has no mask and no transparency to make a trimap from; "
                             f"give one with --trimaps or --masks")
        check_edge(alpha, f"{name}: layer {path!r}'s transparency")
        out.append((path, "transparency"))
    return (doc.width, doc.height), out


def is_layered_tiff(data: bytes) -> bool:
    """True for a TIFF with several full-resolution pages (or Photoshop layer data)."""
    from ..io.layered.tiff import tiff_pages

    try:
        pages, photoshop = tiff_pages(data)
    except Exception:  # noqa: BLE001 - not a TIFF tifffile reads: Pillow will say why
        return False
    return pages > 1 or photoshop


def read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None

