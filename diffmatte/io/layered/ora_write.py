"""OpenRaster writing from nothing: stack.xml, one PNG per layer, the merged image and a
thumbnail (a document that did not come from an OpenRaster file; see ora.py).
"""
from __future__ import annotations

import io
import zipfile
from typing import BinaryIO, List
from xml.etree import ElementTree as ET

import numpy as np

from .model import LayeredImage, Layer, rgba
from .ora_read import DST_IN


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    arr = rgba(pixels)
    if arr.dtype == np.uint16:  # Pillow writes no 16-bit RGBA PNG; OpenRaster viewers read 8 bits
        arr = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA").save(buf, "PNG")
    return buf.getvalue()


def write_new(img: LayeredImage, out: BinaryIO) -> None:
    """Write ``img`` as a new OpenRaster file to the binary file ``out``."""
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
        zf.writestr(zip_entry("mimetype"), "image/openraster", zipfile.ZIP_STORED)
        zf.writestr(zip_entry("stack.xml"), ET.tostring(root, encoding="utf-8", xml_declaration=True),
                    zipfile.ZIP_DEFLATED)
        for src, data in files:
            zf.writestr(zip_entry(src), data, zipfile.ZIP_STORED)  # PNG is already compressed
        zf.writestr(zip_entry("mergedimage.png"), png_bytes(merged8), zipfile.ZIP_STORED)
        zf.writestr(zip_entry("Thumbnails/thumbnail.png"), tbuf.getvalue(), zipfile.ZIP_STORED)


def zip_entry(name: str) -> zipfile.ZipInfo:
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
        files.append((src, png_bytes(pixels)))
        pos = {"x": str(layer.left), "y": str(layer.top)}
        if layer.mask is None:
            ET.SubElement(parent, "layer", _attrs(layer, src=src, **pos))
            continue
        group = ET.SubElement(parent, "stack", _attrs(layer, isolation="isolate"))
        msrc = f"data/layer{len(files)}.png"
        alpha = np.round(layer.mask.canvas(img.width, img.height) * 255).astype(np.uint8)
        white = np.dstack([np.full_like(alpha, 255)] * 3 + [alpha])
        files.append((msrc, png_bytes(white)))
        ET.SubElement(group, "layer", {"name": layer.mask.name, "src": msrc, "x": "0", "y": "0",
                                       "composite-op": DST_IN, "visibility": "visible", "opacity": "1"})
        inner = _attrs(layer, src=src, **pos)
        inner.update(visibility="visible", opacity="1")  # the group carries them
        inner.pop("composite-op", None)
        ET.SubElement(group, "layer", inner)

