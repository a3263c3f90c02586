"""OpenRaster (.ora): a zip of stack.xml and one PNG per layer, read and written with
the standard library and Pillow.

OpenRaster has no layer-mask element; a masked layer is written, as the editor always
did, as an isolated group of two layers: the layer, and above it a white layer whose
alpha is the mask, composited with ``svg:dst-in``. Such a group is read back as one
layer with a mask; every other group stays a group.
"""
from __future__ import annotations

import io
import zipfile
from typing import BinaryIO, List
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
        layers = _read_stack(zf, stack, 0, 0, name)
    bits = 16 if any(l.pixels is not None and l.pixels.dtype == np.uint16 for _, l in _iter(layers)) else 8
    return LayeredImage(w, h, layers, "ora", bits, data)


def _iter(layers: List[Layer]):
    for l in layers:
        yield "", l
        if l.children:
            yield from _iter(l.children)


def _num(elem: ET.Element, key: str, default: float) -> float:
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


def _read_stack(zf, stack: ET.Element, dx: int, dy: int, name: str) -> List[Layer]:
    """Children of a <stack>, bottom to top (stack.xml lists the top first)."""
    dx += int(_num(stack, "x", 0))
    dy += int(_num(stack, "y", 0))
    out: List[Layer] = []
    for elem in reversed(list(stack)):
        visible = elem.get("visibility", "visible") != "hidden"
        opacity = min(max(_num(elem, "opacity", 1.0), 0.0), 1.0)
        if elem.tag == "stack":
            kids = list(elem)
            if len(kids) == 2 and all(k.tag == "layer" for k in kids) and kids[0].get("composite-op") == DST_IN:
                gx, gy = dx + int(_num(elem, "x", 0)), dy + int(_num(elem, "y", 0))
                layer = _read_layer(zf, kids[1], gx, gy, name)
                mask = _png(zf, kids[0], name)[..., 3].copy()
                layer.mask = Mask(mask, gx + int(_num(kids[0], "x", 0)), gy + int(_num(kids[0], "y", 0)), 0,
                                  kids[0].get("name", "mask"))
                layer.name = elem.get("name") or layer.name
                layer.visible, layer.opacity = visible and layer.visible, opacity * layer.opacity
                layer.blend = _blend(elem) if elem.get("composite-op") else layer.blend
                out.append(layer)
            else:
                out.append(Layer(elem.get("name", "group"), None, 0, 0, opacity, visible,
                                 _blend(elem), None, _read_stack(zf, elem, dx, dy, name), "group"))
        elif elem.tag == "layer":
            out.append(_read_layer(zf, elem, dx, dy, name))
    return out


def _read_layer(zf, elem: ET.Element, dx: int, dy: int, name: str) -> Layer:
    return Layer(elem.get("name", "layer"), _png(zf, elem, name), dx + int(_num(elem, "x", 0)),
                 dy + int(_num(elem, "y", 0)), min(max(_num(elem, "opacity", 1.0), 0.0), 1.0),
                 elem.get("visibility", "visible") != "hidden", _blend(elem))


def _blend(elem: ET.Element) -> str:
    op = elem.get("composite-op", "svg:src-over")
    return "normal" if op == "svg:src-over" else op.split(":", 1)[-1]


# ------------------------------------------------------------------ write
def _png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    arr = rgba(pixels)
    if arr.dtype == np.uint16:  # Pillow writes no 16-bit RGBA PNG; OpenRaster viewers read 8 bits
        arr = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA").save(buf, "PNG")
    return buf.getvalue()


def write_ora(img: LayeredImage, out: BinaryIO) -> None:
    """Write ``img`` as OpenRaster to the binary file ``out``."""
    root = ET.Element("image", {"version": "0.0.3", "w": str(img.width), "h": str(img.height)})
    files: List[tuple] = []
    _write_stack(img, ET.SubElement(root, "stack"), img.layers, files)
    merged = img.composite()
    merged8 = np.round(merged * 255).astype(np.uint8)
    from PIL import Image

    thumb = Image.fromarray(merged8, "RGBA")
    thumb.thumbnail((256, 256))
    tbuf = io.BytesIO()
    thumb.save(tbuf, "PNG")
    with zipfile.ZipFile(out, "w") as zf:
        # The spec wants 'mimetype' first and uncompressed. Entries get a fixed date so the
        # same document always gives the same bytes (batch manifests compare hashes).
        zf.writestr(_entry("mimetype"), "image/openraster", zipfile.ZIP_STORED)
        zf.writestr(_entry("stack.xml"), ET.tostring(root, encoding="utf-8", xml_declaration=True),
                    zipfile.ZIP_DEFLATED)
        for src, data in files:
            zf.writestr(_entry(src), data, zipfile.ZIP_STORED)  # PNG is already compressed
        zf.writestr(_entry("mergedimage.png"), _png_bytes(merged8), zipfile.ZIP_STORED)
        zf.writestr(_entry("Thumbnails/thumbnail.png"), tbuf.getvalue(), zipfile.ZIP_STORED)


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    return info


def _attrs(layer: Layer, **extra: str) -> dict:
    a = {"name": layer.name, "visibility": "visible" if layer.visible else "hidden",
         "opacity": f"{layer.opacity:.6g}", "x": "0", "y": "0"}
    if layer.blend not in ("normal", "pass-through"):
        a["composite-op"] = "svg:" + layer.blend
    a.update(extra)
    return a


def _write_stack(img: LayeredImage, parent: ET.Element, layers: List[Layer], files: List[tuple]) -> None:
    for layer in reversed(layers):  # stack.xml lists the top first
        if layer.is_group:
            group = ET.SubElement(parent, "stack", _attrs(layer, isolation="isolate"))
            _write_stack(img, group, layer.children or [], files)
            continue
        src = f"data/layer{len(files)}.png"
        pixels = layer.pixels if layer.pixels is not None else np.zeros((1, 1, 4), np.uint8)
        files.append((src, _png_bytes(pixels)))
        pos = {"x": str(layer.left), "y": str(layer.top)}
        if layer.mask is None:
            ET.SubElement(parent, "layer", _attrs(layer, src=src, **pos))
            continue
        group = ET.SubElement(parent, "stack", _attrs(layer, isolation="isolate"))
        msrc = f"data/layer{len(files)}.png"
        alpha = np.round(layer.mask.canvas(img.width, img.height) * 255).astype(np.uint8)
        white = np.dstack([np.full_like(alpha, 255)] * 3 + [alpha])
        files.append((msrc, _png_bytes(white)))
        ET.SubElement(group, "layer", {"name": layer.mask.name, "src": msrc, "x": "0", "y": "0",
                                       "composite-op": DST_IN, "visibility": "visible", "opacity": "1"})
        inner = _attrs(layer, src=src, **pos)
        inner.update(visibility="visible", opacity="1")  # the group carries them
        inner.pop("composite-op", None)
        ET.SubElement(group, "layer", inner)
