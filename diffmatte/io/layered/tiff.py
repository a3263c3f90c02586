"""Layered TIFF: one page per layer, read and written with tifffile.

Each page written here carries its layer's name (PageName), and an ImageDescription
holding JSON with the offset, opacity, visibility, blend mode and group path; a layer
mask is the following grey page named ``"<layer> mask"``. Multi-page TIFFs from other
programs are read by PageName and XPosition / YPosition (as GIMP writes them); reduced-
resolution pages (thumbnails, pyramids) are skipped.
"""
from __future__ import annotations

import io
import json
from typing import Any, BinaryIO, Dict, List, Optional, Tuple

import numpy as np

from .model import LayeredError, LayeredImage, Layer, Mask, rgba

KEY = "refine_matte_layer"
PHOTOSHOP_LAYERS = 37724  # ImageSourceData: Photoshop's own layer block


def tiff_pages(data: bytes) -> Tuple[int, bool]:
    """(number of full-resolution pages, whether Photoshop layer data is present)."""
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        pages = [p for p in tif.pages if not p.is_reduced]
        return len(pages), bool(pages) and PHOTOSHOP_LAYERS in pages[0].tags


def read_tiff(data: bytes, name: str = "file") -> LayeredImage:
    """Parse a multi-page TIFF into layers (bottom page = bottom layer)."""
    import tifffile

    try:
        tif = tifffile.TiffFile(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - tifffile raises many types for bad bytes
        raise LayeredError(f"{name} is not a readable TIFF: {exc}") from None
    with tif:
        pages = [p for p in tif.pages if not p.is_reduced]
        if pages and PHOTOSHOP_LAYERS in pages[0].tags and len(pages) == 1:
            raise LayeredError(f"{name}: Photoshop keeps this TIFF's layers in its own block, which is not "
                               "supported; save it as PSD (or as a TIFF with one page per layer)")
        layers: List[Layer] = []
        groups: Dict[int, Layer] = {}
        width = height = 0
        last: Optional[Layer] = None
        for i, page in enumerate(pages):
            meta = _meta(page)
            try:
                arr = page_pixels(page)
            except LayeredError as exc:
                raise LayeredError(f"{name}, page {i + 1}: {exc}") from None
            tag = page.tags.get("PageName")
            pname = str(meta.get("name", tag.value if tag is not None else f"page {i + 1}"))
            left, top = int(meta.get("left", _position(page, "XPosition", "XResolution"))), \
                int(meta.get("top", _position(page, "YPosition", "YResolution")))
            canvas = meta.get("canvas")
            if canvas:
                width, height = int(canvas[0]), int(canvas[1])
            is_mask = meta.get("role") == "mask" if meta else (pname.endswith(" mask") and arr.ndim == 2)
            if is_mask and last is not None and arr.ndim == 2:
                last.mask = Mask(arr, left, top, int(meta.get("default", 0)), pname)
                continue
            layer = Layer(pname, rgba(arr), left, top, float(meta.get("opacity", 1.0)),
                          bool(meta.get("visible", True)), str(meta.get("blend", "normal")))
            _place(layer, meta.get("groups", []), layers, groups)
            width = max(width, left + arr.shape[1]) if not canvas else width
            height = max(height, top + arr.shape[0]) if not canvas else height
            last = layer
    if not layers:
        raise LayeredError(f"{name}: no image pages")
    bits = 16 if any(l.pixels is not None and l.pixels.dtype == np.uint16 for _, l in
                     LayeredImage(1, 1, layers).walk()) else 8
    return LayeredImage(width, height, layers, "tiff", bits, data)


def _meta(page) -> Dict[str, Any]:
    tag = page.tags.get("ImageDescription")
    if tag is None:
        return {}
    try:
        value = json.loads(tag.value)
    except (TypeError, ValueError):
        return {}
    return value.get(KEY, {}) if isinstance(value, dict) else {}


def _position(page, pos: str, res: str) -> int:
    p, r = page.tags.get(pos), page.tags.get(res)
    if p is None:
        return 0
    num, den = p.value if isinstance(p.value, tuple) else (p.value, 1)
    rnum, rden = r.value if r is not None and isinstance(r.value, tuple) else (1, 1)
    return int(round(num / max(den, 1) * rnum / max(rden, 1)))


def page_pixels(page) -> np.ndarray:
    """A TIFF page as H x W (x C) uint8/uint16, samples last, associated alpha undone."""
    arr = page.asarray()
    if arr.dtype not in (np.uint8, np.uint16):
        raise LayeredError(f"pixel type {arr.dtype} is not supported (8- or 16-bit only)")
    if arr.ndim == 3 and page.planarconfig == 2:  # separate planes: samples first
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise LayeredError(f"page shape {arr.shape} is not an image")
    extra = tuple(getattr(page, "extrasamples", ()) or ())
    if arr.ndim == 3 and arr.shape[2] in (2, 4) and extra and int(extra[0]) == 1:
        arr = _unpremultiply(arr)  # associated alpha
    return np.ascontiguousarray(arr)


def _unpremultiply(arr: np.ndarray) -> np.ndarray:
    top = float(np.iinfo(arr.dtype).max)
    a = arr[..., -1:].astype(np.float32)
    col = np.where(a > 0, arr[..., :-1].astype(np.float32) * top / np.maximum(a, 1), 0)
    return np.concatenate([np.clip(np.round(col), 0, top).astype(arr.dtype), arr[..., -1:]], axis=2)


def _place(layer: Layer, path: List[dict], top: List[Layer], groups: Dict[int, Layer]) -> None:
    parent = top
    for g in path:
        gid = int(g.get("id", -1))
        node = groups.get(gid)
        if node is None:
            node = Layer(str(g.get("name", "group")), None, 0, 0, float(g.get("opacity", 1.0)),
                         bool(g.get("visible", True)), str(g.get("blend", "pass-through")), None, [], "group")
            groups[gid] = node
            parent.append(node)
        parent = node.children  # type: ignore[assignment]
    parent.append(layer)


# ------------------------------------------------------------------ write
def write_tiff(img: LayeredImage, out: BinaryIO) -> None:
    """Write every raster layer as a page (and its mask as the next page)."""
    import tifffile

    counter = iter(range(1 << 30))
    with tifffile.TiffWriter(out) as tw:
        for layer, groups in _flatten(img.layers, [], counter):
            pixels = rgba(layer.pixels if layer.pixels is not None else np.zeros((1, 1, 4), np.uint8))
            meta = {"name": layer.name, "left": layer.left, "top": layer.top, "opacity": layer.opacity,
                    "visible": layer.visible, "blend": layer.blend, "groups": groups,
                    "canvas": [img.width, img.height], "role": "layer"}
            tw.write(pixels, photometric="rgb", extrasamples=["unassalpha"], compression="zlib",
                     metadata=None, description=json.dumps({KEY: meta}),
                     extratags=[(285, "s", 0, layer.name, False)])
            if layer.mask is not None:
                m = layer.mask
                mmeta = {"name": f"{layer.name} mask", "left": m.left, "top": m.top, "default": m.default,
                         "canvas": [img.width, img.height], "role": "mask"}
                tw.write(m.pixels, photometric="minisblack", compression="zlib", metadata=None,
                         description=json.dumps({KEY: mmeta}), extratags=[(285, "s", 0, f"{layer.name} mask", False)])


def _flatten(layers: List[Layer], path: List[dict], counter) -> List[Tuple[Layer, List[dict]]]:
    out: List[Tuple[Layer, List[dict]]] = []
    for layer in layers:
        if layer.is_group:
            g = {"id": next(counter), "name": layer.name, "visible": layer.visible, "opacity": layer.opacity,
                 "blend": layer.blend}
            out.extend(_flatten(layer.children or [], path + [g], counter))
        else:
            out.append((layer, path))
    return out
