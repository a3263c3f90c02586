"""Photoshop (.psd) through psd-tools.

Reading keeps the layer tree (groups, names, offsets, opacity, visibility, blend
modes, layer masks). Writing a document that was read from a PSD edits that file in
place: only the layers whose mask was changed (and any renamed, hidden or re-weighted
layer) are touched, so text, shape, smart-object and adjustment layers, effects and
everything else psd-tools does not model survive byte for byte. A document from
another format is written as a new 8-bit RGB PSD.

The stored merged preview (image data section) is NOT kept: psd-tools recomposes it on
save even when no visible layer changed (docs/BATCH.md; issue #25 found CMYK previews up
to 20 levels off).
"""
from __future__ import annotations

import io
from typing import Any, BinaryIO, List, Tuple

import numpy as np

from .model import LayeredError, LayeredImage, Layer, Mask, rgba


def _psd_tools():
    try:
        import psd_tools
        from psd_tools import PSDImage
    except ImportError as exc:
        raise LayeredError("PSD files need the psd-tools package (pip install psd-tools)") from exc
    return psd_tools, PSDImage


def read_psd(data: bytes, name: str = "file") -> LayeredImage:
    """Parse PSD bytes into a :class:`LayeredImage` (keeps ``data`` for in-place writing)."""
    _, PSDImage = _psd_tools()
    try:
        psd = PSDImage.open(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - psd-tools raises many types for bad bytes
        raise LayeredError(f"{name} is not a readable PSD: {exc}") from None
    bits = 16 if psd.depth == 16 else 8
    try:
        layers = _read_group(psd, (), bits, psd.color_mode in (1, 3))
    except LayeredError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise LayeredError(f"{name}: cannot decode its layers ({exc})") from None
    return LayeredImage(psd.width, psd.height, layers, "psd", bits, data)


def _name(layer) -> str:
    """The layer's name as shown and matched: without the trailing NULs some writers (Krita)
    store; the file keeps its own bytes (see _update)."""
    return str(layer.name).rstrip("\0")


def _read_group(group, path: Tuple[int, ...], bits: int, native: bool) -> List[Layer]:
    out: List[Layer] = []
    for i, layer in enumerate(group):
        key = path + (i,)
        common = dict(opacity=layer.opacity / 255.0, visible=bool(layer.visible),
                      blend=layer.blend_mode.name.lower().replace("_", "-"), key=key)
        if layer.is_group():
            out.append(Layer(_name(layer), None, 0, 0, children=_read_group(layer, key, bits, native),
                             kind="group", **common))
            continue
        out.append(Layer(_name(layer), _pixels(layer, bits, native), layer.left, layer.top, mask=_mask(layer),
                         kind=str(layer.kind), **common))
    return out


def _pixels(layer, bits: int, native: bool):
    if layer.width <= 0 or layer.height <= 0:
        return None
    if native and layer.kind == "pixel":
        arr = layer.numpy()  # float in [0, 1], the document's own precision
        if arr is None:
            return None
        top = 65535 if bits == 16 else 255
        return rgba(np.round(np.clip(arr, 0, 1) * top).astype(np.uint16 if bits == 16 else np.uint8))
    pil = layer.topil()  # a rendering (type/shape/smart object layers, CMYK or Lab documents)
    return None if pil is None else rgba(np.asarray(pil.convert("RGBA")))


def _mask(layer) -> Any:
    if not layer.has_mask():
        return None
    m = layer.mask
    if m is None or m.width <= 0 or m.height <= 0:
        return None
    pil = m.topil()
    if pil is None:
        return None
    arr = np.asarray(pil)
    if arr.dtype not in (np.uint8, np.uint16):
        arr = np.asarray(pil.convert("L"))
    return Mask(arr.copy(), m.left, m.top, 1 if m.background_color >= 128 else 0)


# ------------------------------------------------------------------ write
def write_psd(img: LayeredImage, out: BinaryIO) -> None:
    """Write ``img`` as PSD to the binary file ``out``."""
    _, PSDImage = _psd_tools()
    if img.format == "psd" and img.source is not None:
        psd = PSDImage.open(io.BytesIO(img.source))
        for _, layer in img.walk():
            _update(psd, layer)
    else:
        psd = PSDImage.new("RGBA", (img.width, img.height))
        _build(psd, img.layers)
    psd.save(out)


def _node(psd, key: Tuple[int, ...]):
    node = psd
    for i in key:
        node = node[i]
    return node


def _mask_pil(mask: Mask):
    from PIL import Image

    px = mask.pixels
    if px.dtype == np.uint16:  # psd-tools takes 8-bit mask images (widened on 16-bit documents)
        px = ((px.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(px), "L")


def _update(psd, layer: Layer) -> None:
    if layer.key is None:
        raise LayeredError(f"layer {layer.name!r} was added after reading; PSD in-place writing "
                           "cannot add layers")
    node = _node(psd, layer.key)
    if _name(node) != layer.name:
        node.name = layer.name
    if bool(node.visible) != layer.visible:
        node.visible = layer.visible
    if abs(node.opacity - layer.opacity * 255) > 0.5:
        node.opacity = int(round(layer.opacity * 255))
    if not layer.mask_changed:
        return
    if layer.mask is None:
        if node.has_mask():
            node.remove_mask()
        return
    if node.has_mask():
        node.update_mask(_mask_pil(layer.mask), top=layer.mask.top, left=layer.mask.left)
    else:
        node.create_mask(_mask_pil(layer.mask), top=layer.mask.top, left=layer.mask.left)
    node._record.mask_data.background_color = 255 if layer.mask.default else 0


def _build(parent, layers: List[Layer]) -> None:
    from PIL import Image
    from psd_tools.api.layers import Group, PixelLayer
    from psd_tools.constants import BlendMode

    for layer in layers:
        if layer.is_group:
            node = Group.new(parent, name=layer.name)
            _build(node, layer.children or [])
        else:
            px = rgba(layer.pixels if layer.pixels is not None else np.zeros((1, 1, 4), np.uint8))
            if px.dtype == np.uint16:
                px = ((px.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
            node = PixelLayer.frompil(Image.fromarray(px, "RGBA"), parent, name=layer.name, top=layer.top,
                                      left=layer.left)
            if layer.mask is not None:
                node.create_mask(_mask_pil(layer.mask), top=layer.mask.top, left=layer.mask.left)
                node._record.mask_data.background_color = 255 if layer.mask.default else 0
        node.visible = layer.visible
        node.opacity = int(round(layer.opacity * 255))
        try:
            node.blend_mode = BlendMode[layer.blend.upper().replace("-", "_")]
        except KeyError:
            pass  # a mode Photoshop has no name for: keep normal
