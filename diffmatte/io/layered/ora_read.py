"""OpenRaster reading: stack.xml and its layer PNGs to a :class:`LayeredImage` (see ora.py).

A masked layer is stored as an isolated group of two layers (the layer, and above it a
white layer whose alpha is the mask, composited with ``svg:dst-in``); such a group is read
back as one layer with a mask, every other group stays a group. Each layer keeps its
element's index path (``key``) for in-place writing (ora_inplace.py).
"""
from __future__ import annotations

import io
import zipfile
from typing import List
from xml.etree import ElementTree as ET

import numpy as np

from .model import LayeredError, LayeredImage, Layer, Mask, rgba

DST_IN = "svg:dst-in"
_MAX_XML = 16 << 20  # a stack.xml larger than this is not a real document
_MAX_PIXELS = 1 << 30  # per layer PNG; callers check the canvas size first (see probe)


def read_ora(data: bytes, name: str = "file") -> LayeredImage:
    """Parse OpenRaster bytes; ``name`` is used in error messages."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise LayeredError(f"{name} is not an OpenRaster file: {exc}") from None
    with zf:
        try:
            info = zf.getinfo("stack.xml")
            if info.file_size > _MAX_XML:
                raise LayeredError(f"{name}: stack.xml is {info.file_size} bytes")
            root = ET.fromstring(zf.read(info))
        except (KeyError, ET.ParseError) as exc:
            raise LayeredError(f"{name}: missing or broken stack.xml ({exc})") from None
        try:
            w, h = int(root.get("w", "0")), int(root.get("h", "0"))
        except ValueError:
            w = h = 0
        if w <= 0 or h <= 0:
            raise LayeredError(f"{name}: stack.xml has no valid image size")
        stack = root.find("stack")
        if stack is None:
            raise LayeredError(f"{name}: stack.xml has no <stack>")
        layers = _read_stack(zf, stack, 0, 0, name, ())
    bits = 16 if any(l.pixels is not None and l.pixels.dtype == np.uint16 for _, l in _iter(layers)) else 8
    return LayeredImage(w, h, layers, "ora", bits, data)


def _iter(layers: List[Layer]):
    for l in layers:
        yield "", l
        if l.children:
            yield from _iter(l.children)


def number(elem: ET.Element, key: str, default: float) -> float:
    try:
        return float(elem.get(key, default))
    except ValueError:
        return default


def _png(zf: zipfile.ZipFile, elem: ET.Element, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    src = elem.get("src", "")
    try:
        raw = zf.read(src)
    except KeyError:
        raise LayeredError(f"{name}: layer file {src!r} is missing") from None
    try:
        with Image.open(io.BytesIO(raw)) as im:
            if im.width * im.height > _MAX_PIXELS:
                raise LayeredError(f"{name}: layer {src!r} is {im.width}x{im.height} pixels, too large")
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                return rgba(np.asarray(im).astype(np.uint16))
            return rgba(np.asarray(im.convert("RGBA")))
    except Image.DecompressionBombError as exc:
        raise LayeredError(f"{name}: layer file {src!r} is a decompression bomb ({exc})") from None
    except LayeredError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise LayeredError(f"{name}: layer file {src!r} is not a readable PNG ({exc})") from None


def _read_stack(zf, stack: ET.Element, dx: int, dy: int, name: str, where: tuple = ()) -> List[Layer]:
    """Children of a <stack>, bottom to top (stack.xml lists the top first). Each layer's
    ``key`` is its element's index path under the root <stack> (for in-place writing)."""
    dx += int(number(stack, "x", 0))
    dy += int(number(stack, "y", 0))
    out: List[Layer] = []
    kids_all = list(stack)
    for index in reversed(range(len(kids_all))):
        elem = kids_all[index]
        key = where + (index,)
        visible = elem.get("visibility", "visible") != "hidden"
        opacity = min(max(number(elem, "opacity", 1.0), 0.0), 1.0)
        if elem.tag == "stack":
            kids = list(elem)
            if len(kids) == 2 and all(k.tag == "layer" for k in kids) and kids[0].get("composite-op") == DST_IN:
                gx, gy = dx + int(number(elem, "x", 0)), dy + int(number(elem, "y", 0))
                layer = _read_layer(zf, kids[1], gx, gy, name)
                mask = _png(zf, kids[0], name)[..., 3].copy()
                layer.mask = Mask(mask, gx + int(number(kids[0], "x", 0)), gy + int(number(kids[0], "y", 0)), 0,
                                  kids[0].get("name", "mask"))
                layer.name = elem.get("name") or layer.name
                layer.visible, layer.opacity = visible and layer.visible, opacity * layer.opacity
                layer.blend = _blend(elem) if elem.get("composite-op") else layer.blend
                layer.key = key
                out.append(layer)
            else:
                out.append(Layer(elem.get("name", "group"), None, 0, 0, opacity, visible,
                                 _blend(elem), None, _read_stack(zf, elem, dx, dy, name, key), "group", key=key))
        elif elem.tag == "layer":
            layer = _read_layer(zf, elem, dx, dy, name)
            layer.key = key
            out.append(layer)
    return out


def _read_layer(zf, elem: ET.Element, dx: int, dy: int, name: str) -> Layer:
    return Layer(elem.get("name", "layer"), _png(zf, elem, name), dx + int(number(elem, "x", 0)),
                 dy + int(number(elem, "y", 0)), min(max(number(elem, "opacity", 1.0), 0.0), 1.0),
                 elem.get("visibility", "visible") != "hidden", _blend(elem))


def _blend(elem: ET.Element) -> str:
    op = elem.get("composite-op", "svg:src-over")
    return "normal" if op == "svg:src-over" else op.split(":", 1)[-1]
