"""The in-memory layered image shared by the PSD, OpenRaster and layered-TIFF codecs.

Layers are kept as the file stores them (pixels at their own offset, not padded to
the canvas), so a file that is read and written back keeps its layout. Pixels are
straight (not premultiplied) RGBA, uint8 or uint16; masks are grey, 255 (or 65535)
= shown.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np


class LayeredError(ValueError):
    """A layered file cannot be read or written, or a layer cannot be found."""


@dataclass
class Mask:
    """A layer mask: ``pixels`` (h x w, uint8 or uint16) placed at (left, top);
    outside that rectangle the mask is ``default`` (0 = hidden, 1 = shown)."""

    pixels: np.ndarray
    left: int = 0
    top: int = 0
    default: int = 0
    name: str = "mask"

    def canvas(self, width: int, height: int) -> np.ndarray:
        """The mask as H x W float32 in [0, 1] over the whole canvas."""
        top = float(np.iinfo(self.pixels.dtype).max)
        out = np.full((height, width), float(self.default), np.float32)
        paste(out, self.pixels.astype(np.float32) / top, self.left, self.top)
        return out


@dataclass
class Layer:
    """A raster layer, or a group when ``children`` is a list (bottom to top).

    ``kind`` is ``"pixel"`` for raster layers and ``"group"`` for groups; other
    values (``"type"``, ``"shape"``, ``"smartobject"``, ...) name PSD layers whose
    ``pixels`` are only a rendering (they are written back untouched to PSD).
    ``key`` is the codec's handle to the layer in the source file.
    """

    name: str
    pixels: Optional[np.ndarray] = None
    left: int = 0
    top: int = 0
    opacity: float = 1.0
    visible: bool = True
    blend: str = "normal"
    mask: Optional[Mask] = None
    children: Optional[List["Layer"]] = None
    kind: str = "pixel"
    key: Any = None
    mask_changed: bool = False

    @property
    def is_group(self) -> bool:
        return self.children is not None

    def set_mask(self, alpha: np.ndarray, bits: int = 8, name: str = "mask") -> None:
        """Make ``alpha`` (H x W float in [0, 1], canvas size) this layer's mask."""
        top = 255 if bits == 8 else 65535
        a = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
        self.mask = Mask(np.round(a * top).astype(np.uint8 if bits == 8 else np.uint16), 0, 0, 0, name)
        self.mask_changed = True


@dataclass
class LayeredImage:
    """A layered document: canvas size, layers bottom to top, and where it came from."""

    width: int
    height: int
    layers: List[Layer]
    format: str = ""
    bits: int = 8
    source: Optional[bytes] = field(default=None, repr=False)

    def walk(self) -> Iterator[Tuple[str, Layer]]:
        """Every layer and group, depth first, bottom to top, as ("group/name", layer).

        Paths are unique: where sibling names repeat (MyPaint's unnamed layers all read as
        "layer"), each of them is "name#N", N counting from 1 at the bottom, so one path
        always means one layer (a batch, the editor and ``find`` select by it)."""
        yield from _walk(self.layers, "")

    def leaves(self) -> List[Tuple[str, Layer]]:
        """The non-group layers with their paths, bottom to top."""
        return [(p, l) for p, l in self.walk() if not l.is_group]

    def find(self, pattern: str) -> List[Tuple[str, Layer]]:
        """Non-group layers whose name or (unique) path matches the shell pattern ``pattern``
        (case-sensitive; ``*`` ``?`` ``[...]`` as in fnmatch): "Layer" matches every layer of
        that name, "Layer#2" the second of them."""
        return [(p, l) for p, l in self.leaves()
                if fnmatch.fnmatchcase(l.name, pattern) or fnmatch.fnmatchcase(p, pattern)]

    def canvas_rgba(self, layer: Layer) -> np.ndarray:
        """The layer's pixels placed on the canvas: H x W x 4 float32 in [0, 1] (straight alpha)."""
        out = np.zeros((self.height, self.width, 4), np.float32)
        if layer.pixels is not None:
            paste(out, to_float(layer.pixels), layer.left, layer.top)
        return out

    def composite(self) -> np.ndarray:
        """Visible layers blended 'normal' with opacity and masks: H x W x 4 float32, straight
        alpha. Other blend modes are drawn as 'normal' (good enough to matte against)."""
        premul = np.zeros((self.height, self.width, 4), np.float32)
        _composite(self, self.layers, premul, 1.0)
        rgb = np.divide(premul[..., :3], premul[..., 3:], out=np.zeros_like(premul[..., :3]),
                        where=premul[..., 3:] > 0)
        return np.dstack([rgb, premul[..., 3]])


def _walk(layers: List[Layer], prefix: str) -> Iterator[Tuple[str, Layer]]:
    for layer, segment in zip(layers, unique_names([l.name for l in layers])):
        path = prefix + segment
        yield path, layer
        if layer.is_group:
            yield from _walk(layer.children or [], path + "/")


def unique_names(names: List[str]) -> List[str]:
    """Sibling names made unique: a repeated name becomes "name#1", "name#2", ... (bottom to
    top), skipping any number a sibling already uses literally ("name#1" as its own name)."""
    counts: dict = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    taken = {n for n in names if counts[n] == 1}
    out: List[str] = []
    seen: Dict[str, int] = {}
    for n in names:
        if counts[n] == 1:
            out.append(n)
            continue
        k = seen.get(n, 0)
        while True:
            k += 1
            cand = f"{n}#{k}"
            if cand not in taken:
                break
        seen[n] = k
        taken.add(cand)
        out.append(cand)
    return out


def _composite(img: LayeredImage, layers: List[Layer], premul: np.ndarray, opacity: float) -> None:
    for layer in layers:
        if not layer.visible:
            continue
        if layer.is_group:
            _composite(img, layer.children or [], premul, opacity * layer.opacity)
            continue
        src = img.canvas_rgba(layer)
        a = src[..., 3] * layer.opacity * opacity
        if layer.mask is not None:
            a = a * layer.mask.canvas(img.width, img.height)
        premul[..., :3] = src[..., :3] * a[..., None] + premul[..., :3] * (1 - a[..., None])
        premul[..., 3] = a + premul[..., 3] * (1 - a)


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 / uint16 pixels as float32 in [0, 1]."""
    return pixels.astype(np.float32) / float(np.iinfo(pixels.dtype).max)


def paste(dest: np.ndarray, src: np.ndarray, left: int, top: int) -> None:
    """Copy ``src`` into ``dest`` at (left, top), clipped to ``dest``."""
    h, w = dest.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + src.shape[0], h), min(left + src.shape[1], w)
    if y1 > y0 and x1 > x0:
        dest[y0:y1, x0:x1] = src[y0 - top:y1 - top, x0 - left:x1 - left]


def rgba(pixels: np.ndarray) -> np.ndarray:
    """Grey, grey+alpha, RGB or RGBA uint8/uint16 -> RGBA of the same dtype."""
    arr = np.asarray(pixels)
    if arr.dtype not in (np.uint8, np.uint16):
        raise LayeredError(f"layer pixels must be uint8 or uint16, not {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    full = np.iinfo(arr.dtype).max
    c = arr.shape[2]
    if c == 1:
        arr = np.concatenate([arr] * 3 + [np.full_like(arr, full)], axis=2)
    elif c == 2:
        arr = np.concatenate([arr[..., :1]] * 3 + [arr[..., 1:]], axis=2)
    elif c == 3:
        arr = np.concatenate([arr, np.full_like(arr[..., :1], full)], axis=2)
    elif c > 4:
        arr = arr[..., :4]
    return np.ascontiguousarray(arr)
