"""OpenRaster writing in place: a document read from an OpenRaster file is written back
with every archive member and every stack.xml attribute it does not edit kept (see ora.py).
"""
from __future__ import annotations

import io
import zipfile
from typing import List, Optional, Tuple
from xml.etree import ElementTree as ET

import numpy as np

from .model import LayeredImage, Layer
from .ora_read import DST_IN, number
from .ora_write import png_bytes, zip_entry


class NotInPlace(Exception):
    """The document no longer matches its source's tree (a layer added or moved)."""


def write_in_place(img: LayeredImage) -> bytes:
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
            raise NotInPlace()
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
        raise NotInPlace()
    for _, (prefix, uri) in ET.iterparse(io.BytesIO(xml), events=("start-ns",)):
        if prefix:
            ET.register_namespace(prefix, uri)
    root = ET.fromstring(xml)
    stack = root.find("stack")
    if stack is None:
        raise NotInPlace()
    return infos, members, root, stack


def _as_read(elem: ET.Element, masked: bool) -> Tuple[Optional[str], bool, float]:
    """(name, visible, opacity) that reading gave for ``elem``, to see what the document changed."""
    if masked:
        inner = list(elem)[1]
        was_name = elem.get("name") or inner.get("name", "layer")
        was_visible = elem.get("visibility", "visible") != "hidden" and inner.get("visibility", "visible") != "hidden"
        was_opacity = min(max(number(elem, "opacity", 1.0), 0.0), 1.0) * min(max(number(inner, "opacity", 1.0), 0.0), 1.0)
    else:
        was_name = elem.get("name", "group" if elem.tag == "stack" else "layer")
        was_visible = elem.get("visibility", "visible") != "hidden"
        was_opacity = min(max(number(elem, "opacity", 1.0), 0.0), 1.0)
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
    added.append((msrc, png_bytes(np.dstack([np.full_like(alpha, 255)] * 3 + [alpha]))))
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
    members["mergedimage.png"] = png_bytes(merged8)
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
                out.writestr(zip_entry(name), members[name], zipfile.ZIP_STORED)
        for name, data in added:
            out.writestr(zip_entry(name), data, zipfile.ZIP_STORED)
    return buf.getvalue()


def _locate(stack: ET.Element, key: tuple):
    node = stack
    try:
        for i in key[:-1]:
            node = list(node)[i]
        list(node)[key[-1]]
    except (IndexError, TypeError):
        raise NotInPlace() from None
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
