"""OpenRaster (.ora): a zip of stack.xml and one PNG per layer, read and written with
the standard library and Pillow.

OpenRaster has no layer-mask element; a masked layer is written, as the editor always
did, as an isolated group of two layers: the layer, and above it a white layer whose
alpha is the mask, composited with ``svg:dst-in``. Such a group is read back as one
layer with a mask; every other group stays a group.

A document read from an OpenRaster file is written back in place: every archive member
and every stack.xml attribute it does not edit is kept (_write_in_place).
"""
from __future__ import annotations

import io
import zipfile
from typing import BinaryIO, List, Optional, Tuple
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


def _read_stack(zf, stack: ET.Element, dx: int, dy: int, name: str, where: tuple = ()) -> List[Layer]:
    """Children of a <stack>, bottom to top (stack.xml lists the top first). Each layer's
    ``key`` is its element's index path under the root <stack> (for in-place writing)."""
    dx += int(_num(stack, "x", 0))
    dy += int(_num(stack, "y", 0))
    out: List[Layer] = []
    kids_all = list(stack)
    for index in reversed(range(len(kids_all))):
        elem = kids_all[index]
        key = where + (index,)
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
    """Write ``img`` as OpenRaster to the binary file ``out``: a document read from an
    OpenRaster file is edited in place (see :func:`_write_in_place`), any other is written new."""
    if img.format == "ora" and img.source is not None:
        try:
            data = _write_in_place(img)
        except _NotInPlace:
            data = None
        if data is not None:
            out.write(data)
            return
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


# ------------------------------------------------------------------ in-place writing
class _NotInPlace(Exception):
    """The document no longer matches its source's tree (a layer added or moved)."""


def _write_in_place(img: LayeredImage) -> bytes:
    """The source file with only what was edited changed (issue #25: MyPaint's stroke maps,
    background tile and 'selected' attributes were dropped by a rewrite):

    - every archive member is copied as it was, in its order; a new mask adds a PNG;
    - stack.xml is the source's element tree (every attribute and namespace kept) with the
      edited layers' masks, names, visibility and opacity changed; written only if changed;
    - mergedimage.png and the thumbnail are regenerated only when a mask changed.
    """

    src = img.source
    assert src is not None
    infos, members, root, stack = _read_source(src)
    added: List[tuple] = []
    changed = masks = False
    for _, layer in img.walk():
        if layer.key is None:
            raise _NotInPlace()
        parent, index = _locate(stack, layer.key)
        elem = parent[index]
        masked = _is_mask_group(elem)
        changed |= _update_attributes(elem, layer, _as_read(elem, masked))
        if layer.is_group or not layer.mask_changed:
            continue
        changed = masks = True
        _replace_mask(img, layer, parent, index, masked, members, added)
    if changed:
        members["stack.xml"] = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    if masks:
        _regenerate_merged(img, members)
    return _rezip(infos, members, added)


def _read_source(src: bytes):
    """(zip infos, member bytes by name, stack.xml's root, its top stack) of an ORA file."""
    with zipfile.ZipFile(io.BytesIO(src)) as zf:
        infos = zf.infolist()
        members = {i.filename: zf.read(i) for i in infos}
    xml = members.get("stack.xml")
    if xml is None:
        raise _NotInPlace()
    for _, (prefix, uri) in ET.iterparse(io.BytesIO(xml), events=("start-ns",)):
        if prefix:
            ET.register_namespace(prefix, uri)
    root = ET.fromstring(xml)
    stack = root.find("stack")
    if stack is None:
        raise _NotInPlace()
    return infos, members, root, stack


def _as_read(elem: ET.Element, masked: bool) -> Tuple[Optional[str], bool, float]:
    """(name, visible, opacity) that reading gave for ``elem``, to see what the document changed."""
    if masked:
        inner = list(elem)[1]
        was_name = elem.get("name") or inner.get("name", "layer")
        was_visible = elem.get("visibility", "visible") != "hidden" and inner.get("visibility", "visible") != "hidden"
        was_opacity = min(max(_num(elem, "opacity", 1.0), 0.0), 1.0) * min(max(_num(inner, "opacity", 1.0), 0.0), 1.0)
    else:
        was_name = elem.get("name", "group" if elem.tag == "stack" else "layer")
        was_visible = elem.get("visibility", "visible") != "hidden"
        was_opacity = min(max(_num(elem, "opacity", 1.0), 0.0), 1.0)
    return was_name, was_visible, was_opacity


def _update_attributes(elem: ET.Element, layer: Layer, was: Tuple[Optional[str], bool, float]) -> bool:
    """Write the layer's edited name, visibility and opacity; True when any changed."""
    was_name, was_visible, was_opacity = was
    changed = False
    if layer.name != was_name:
        elem.set("name", layer.name)
        changed = True
    if layer.visible != was_visible:
        elem.set("visibility", "visible" if layer.visible else "hidden")
        changed = True
    if abs(layer.opacity - was_opacity) > 0.5 / 255:
        elem.set("opacity", f"{layer.opacity:.6g}")
        changed = True
    return changed


def _replace_mask(img: LayeredImage, layer: Layer, parent: ET.Element, index: int, masked: bool,
                  members: dict, added: List[tuple]) -> None:
    """The layer's new mask (or none) in the tree; a new mask PNG is appended to ``added``."""
    elem = parent[index]
    if layer.mask is None:
        if masked:   # unwrap: the layer alone, carrying the group's attributes
            inner = list(elem)[1]
            for k in ("name", "visibility", "opacity", "composite-op"):
                value = elem.get(k)
                if value is not None:
                    inner.set(k, value)
            parent[index] = inner
        return
    msrc = _free_name(members, added)
    alpha = np.round(layer.mask.canvas(img.width, img.height) * 255).astype(np.uint8)
    added.append((msrc, _png_bytes(np.dstack([np.full_like(alpha, 255)] * 3 + [alpha]))))
    mask_attrs = {"name": layer.mask.name, "src": msrc, "x": "0", "y": "0", "composite-op": DST_IN,
                  "visibility": "visible", "opacity": "1"}
    if masked:
        old = list(elem)[0]
        old.attrib.clear()
        old.attrib.update(mask_attrs)
        return
    # A plain layer becomes the isolated two-layer group that stands for a masked layer;
    # the group carries the layer's name, visibility, opacity and blend, and the layer
    # keeps every other attribute it had (selected, a stroke map, ...).
    group = ET.Element("stack", {k: v for k, v in elem.attrib.items()
                                 if k in ("name", "visibility", "opacity", "composite-op", "x", "y")})
    group.set("isolation", "isolate")
    group.set("x", "0")
    group.set("y", "0")
    group.tail = elem.tail
    ET.SubElement(group, "layer", mask_attrs)
    elem.set("visibility", "visible")
    elem.set("opacity", "1")
    elem.attrib.pop("composite-op", None)
    group.append(elem)
    parent[index] = group


def _regenerate_merged(img: LayeredImage, members: dict) -> None:
    """mergedimage.png and the 256 px thumbnail from the document's composite."""
    merged8 = np.round(img.composite() * 255).astype(np.uint8)
    from PIL import Image

    thumb = Image.fromarray(merged8, "RGBA")
    thumb.thumbnail((256, 256))
    tbuf = io.BytesIO()
    thumb.save(tbuf, "PNG")
    members["mergedimage.png"] = _png_bytes(merged8)
    members["Thumbnails/thumbnail.png"] = tbuf.getvalue()


def _rezip(infos: list, members: dict, added: List[tuple]) -> bytes:
    """The archive: the source's members in their order (mimetype first, stored), then a new
    merged image / thumbnail, then the added mask PNGs."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        names = [i.filename for i in infos]
        order = (["mimetype"] if "mimetype" in members else []) + [n for n in names if n != "mimetype"]
        by_name = {i.filename: i for i in infos}
        for name in order:
            info = by_name[name]
            if name == "mimetype":
                info.compress_type = zipfile.ZIP_STORED
            out.writestr(info, members[name], info.compress_type)
        for name in ("mergedimage.png", "Thumbnails/thumbnail.png"):
            if name in members and name not in by_name:
                out.writestr(_entry(name), members[name], zipfile.ZIP_STORED)
        for name, data in added:
            out.writestr(_entry(name), data, zipfile.ZIP_STORED)
    return buf.getvalue()


def _locate(stack: ET.Element, key: tuple):
    node = stack
    try:
        for i in key[:-1]:
            node = list(node)[i]
        list(node)[key[-1]]
    except (IndexError, TypeError):
        raise _NotInPlace() from None
    return node, key[-1]


def _is_mask_group(elem: ET.Element) -> bool:
    kids = list(elem)
    return (elem.tag == "stack" and len(kids) == 2 and all(k.tag == "layer" for k in kids)
            and kids[0].get("composite-op") == DST_IN)


def _free_name(members: dict, added: List[tuple]) -> str:
    taken = set(members) | {n for n, _ in added}
    i = 0
    while f"data/refine-matte-mask{i}.png" in taken:
        i += 1
    return f"data/refine-matte-mask{i}.png"
