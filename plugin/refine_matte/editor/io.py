"""Open and save files for the standalone editor.

Flat PNG / JPEG / TIFF (8 and 16 bit) are read with Qt. Layered files (OpenRaster,
PSD, TIFF with several pages) are read and written by ``diffmatte.io.layered``, the one
layered-file implementation that ``diffmatte batch`` uses too; groups are flattened
into the editor's layer list (a layer is shown only when it and its groups are
visible) and a layer mask becomes the layer's mask node. Saving a document opened
from a layered file keeps that file's layer tree and changes only the masks (and
visibility) edited here. Writes the alpha, an RGBA cut-out, or the layers with their
masks (OpenRaster, PSD or layered TIFF). Every write goes to a temp file first and is
moved into place.
"""

from __future__ import annotations

import copy
import os
from typing import Callable, List, Optional, Tuple

from .. import imaging
from ..fsutil import atomic_path
from ..qt import QtGui
from .document import Document, Layer, MaskNode

Fmt = QtGui.QImage.Format
OPEN_FILTER = ("Images (*.png *.jpg *.jpeg *.tif *.tiff *.ora *.psd);;"
               "PNG (*.png);;JPEG (*.jpg *.jpeg);;TIFF (*.tif *.tiff);;"
               "OpenRaster (*.ora);;Photoshop (*.psd);;All files (*)")
_FLAT_EXT = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
_SIXTEEN = None  # filled lazily: formats that carry 16 bits per channel
_SOURCE = "_layered_source"  # Document attribute: the diffmatte.io.layered image it was read from
_PATH = "_layered_path"      # Layer attribute: its path in that image


def _sixteen_bit_formats() -> tuple:
    global _SIXTEEN
    if _SIXTEEN is None:
        names = ("Format_RGBA64", "Format_RGBA64_Premultiplied", "Format_RGBX64",
                 "Format_Grayscale16")
        _SIXTEEN = tuple(getattr(Fmt, n) for n in names if hasattr(Fmt, n))
    return _SIXTEEN


def _normalise(image: "QtGui.QImage") -> Tuple["QtGui.QImage", int]:
    """Layer storage format: RGBA64 for 16-bit sources, ARGB32 otherwise."""
    if image.format() in _sixteen_bit_formats():
        return image.convertToFormat(Fmt.Format_RGBA64), 16
    return image.convertToFormat(Fmt.Format_ARGB32), 8


# ================================================================= open
def load_document(path: str) -> Document:
    """Open ``path`` as a Document; raises ValueError with a readable reason."""
    if not os.path.isfile(path):
        raise ValueError(f"file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext in (".ora", ".psd") or (ext in (".tif", ".tiff") and _tiff_has_layers(path)):
        doc = _load_layered(path)
    elif ext in _FLAT_EXT:
        doc = Document([_read_flat(path)])
    else:
        raise ValueError(f"unsupported file type {ext or '(none)'}: {path} "
                         "(use PNG, JPEG, TIFF, OpenRaster or PSD)")
    doc.path = path
    doc.active = len(doc.layers) - 1
    return doc


def _read_flat(path: str, name: Optional[str] = None) -> Layer:
    reader = QtGui.QImageReader(path)
    reader.setAutoTransform(True)
    image = reader.read()
    if image.isNull():
        raise ValueError(f"cannot read image {path}: {reader.errorString()}")
    image, bits = _normalise(image)
    return Layer(name or os.path.basename(path), image, bits=bits)


def _tiff_has_layers(path: str) -> bool:
    """Several full-resolution pages (layers); one page is a flat image Qt reads best."""
    try:
        from diffmatte.io.layered.tiff import tiff_pages

        with open(path, "rb") as f:
            pages, photoshop = tiff_pages(f.read())
    except Exception:  # noqa: BLE001 - tifffile missing or the file is not one it reads
        return False
    return pages > 1 or photoshop


def _load_layered(path: str) -> Document:
    """A layered file through diffmatte.io.layered, each raster layer placed on the canvas."""
    import numpy as np
    from diffmatte.io import layered
    from diffmatte.io.layered.model import paste

    img = layered.read(path)
    layers: List[Layer] = []
    for lpath, node, visible in _leaves(img.layers, "", True):
        if node.pixels is None:
            continue
        canvas = np.zeros((img.height, img.width, 4), node.pixels.dtype)
        paste(canvas, node.pixels, node.left, node.top)
        image, bits = _normalise(array_to_qimage(canvas))
        layer = Layer(node.name, image, visible=visible, bits=bits)
        if node.mask is not None:
            m = node.mask
            top = np.iinfo(m.pixels.dtype).max
            grey = np.full((img.height, img.width), top if m.default else 0, m.pixels.dtype)
            paste(grey, m.pixels, m.left, m.top)
            layer.masks.append(MaskNode(m.name, array_to_qimage(grey)))
        setattr(layer, _PATH, lpath)
        layers.append(layer)
    if not layers:
        raise ValueError(f"{path}: no raster layers")
    doc = Document(layers)
    setattr(doc, _SOURCE, img)
    return doc


def _leaves(nodes, prefix: str, shown: bool):
    """(path, layer, effectively visible) of every non-group layer, bottom to top; paths are
    the unique ones of ``LayeredImage.walk`` (same-named siblings are "name#N")."""
    from diffmatte.io.layered.model import unique_names

    for node, segment in zip(nodes, unique_names([n.name for n in nodes])):
        path = prefix + segment
        if node.is_group:
            yield from _leaves(node.children or [], path + "/", shown and node.visible)
        else:
            yield path, node, shown and node.visible


# ========================================================== numpy bridge
def array_to_qimage(arr) -> "QtGui.QImage":
    """uint8/uint16 H x W (grey), H x W x 3 or x 4 array -> QImage (copied)."""
    import numpy as np

    arr = np.ascontiguousarray(arr)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"unsupported pixel type {arr.dtype}")
    wide = arr.dtype == np.uint16
    if arr.ndim == 2:
        fmt = Fmt.Format_Grayscale16 if wide else Fmt.Format_Grayscale8
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        if arr.shape[2] == 3:
            full = np.iinfo(arr.dtype).max
            arr = np.concatenate([arr, np.full(arr.shape[:2] + (1,), full, arr.dtype)], axis=2)
        fmt = Fmt.Format_RGBA64 if wide else Fmt.Format_RGBA8888
    else:
        raise ValueError(f"unsupported image shape {arr.shape}")
    h, w = arr.shape[:2]
    return QtGui.QImage(arr.tobytes(), w, h, arr.strides[0], fmt).copy()


def qimage_to_array(image: "QtGui.QImage", channels: int):
    """QImage -> uint8 / uint16 (for 16-bit images) array, H x W or H x W x 4."""
    import numpy as np

    if channels not in (1, 4):
        raise ValueError("channels must be 1 or 4")
    wide = image.format() in _sixteen_bit_formats()
    if channels == 1:
        fmt = Fmt.Format_Grayscale16 if wide else Fmt.Format_Grayscale8
    else:
        fmt = Fmt.Format_RGBA64 if wide else Fmt.Format_RGBA8888
    dtype = np.uint16 if wide else np.uint8
    img = image.convertToFormat(fmt)
    h, w = img.height(), img.width()
    raw = np.frombuffer(imaging.image_bytes(img), dtype=np.uint8).reshape(h, img.bytesPerLine())
    row = w * channels * np.dtype(dtype).itemsize
    arr = raw[:, :row].copy().view(dtype).reshape(h, w, channels)
    return arr[..., 0] if channels == 1 else arr


# ================================================================= save
def _atomic(path: str, write: Callable[[str], None]) -> None:
    """Call write(tmp) on a temp file next to ``path`` (same extension), then move it into
    place with the mode a normal write would give."""
    with atomic_path(path, suffix=os.path.splitext(path)[1]) as tmp:
        write(tmp)


def _qt_write(image: "QtGui.QImage", fmt: bytes) -> Callable[[str], None]:
    def write(tmp: str) -> None:
        writer = QtGui.QImageWriter(tmp, fmt)
        if not writer.write(image):
            raise ValueError(f"could not write {fmt.decode()} file: {writer.errorString()}")
    return write


def _flat_format(path: str) -> bytes:
    ext = os.path.splitext(path)[1].lower()
    if ext == ".png":
        return b"png"
    if ext in (".tif", ".tiff"):
        return b"tiff"
    raise ValueError(f"cannot save {ext or 'a file without extension'} here: use .png or .tif")


def save_alpha(path: str, alpha: "QtGui.QImage", bits: int = 16) -> None:
    """Write the matte as a grey PNG/TIFF, 8 or 16 bits."""
    if alpha is None or alpha.isNull():
        raise ValueError("there is no matte to save yet")
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    fmt = _flat_format(path)
    img = alpha.convertToFormat(Fmt.Format_Grayscale16 if bits == 16 else Fmt.Format_Grayscale8)
    _atomic(path, _qt_write(img, fmt))


def save_layered(path: str, doc: Document) -> None:
    """Write every layer with its effective mask as a layer mask (.ora, .psd or .tif)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".ora", ".psd", ".tif", ".tiff"):
        raise ValueError(f"layered save needs .ora, .psd or .tif, not {ext or '(none)'}")
    from diffmatte.io import layered

    img = to_layered(doc)
    data = layered.encode(img, layered.format_of(path))
    _atomic(path, lambda tmp: _write_bytes(tmp, data))


def _write_bytes(tmp: str, data: bytes) -> None:
    with open(tmp, "wb") as f:
        f.write(data)


def to_layered(doc: Document):
    """The document as a diffmatte.io.layered image: the file it came from, with the masks
    (and visibility) edited here, or a new one with one layer per editor layer."""
    from diffmatte.io.layered import LayeredImage
    from diffmatte.io.layered import Layer as LLayer

    source = getattr(doc, _SOURCE, None)
    if source is not None:
        img = copy.deepcopy(source)
        nodes = dict(img.leaves())
        loaded = {p: l for p, l, _ in _leaves(source.layers, "", True)}
        shown = {p: v for p, _, v in _leaves(source.layers, "", True)}
        for layer in doc.layers:
            lpath = getattr(layer, _PATH, None)
            node = nodes.get(lpath)
            if node is None:
                source = None  # a layer the file does not have: write the editor's layers
                break
            if layer.visible != shown[lpath]:
                node.visible = layer.visible
            _apply_mask(node, layer, loaded[lpath], img.bits)
        if source is not None:
            return img
    bits = 16 if any(l.bits == 16 for l in doc.layers) else 8
    out = []
    for layer in doc.layers:
        node = LLayer(layer.name, qimage_to_array(layer.image, 4), visible=layer.visible)
        _apply_mask(node, layer, None, bits)
        out.append(node)
    return LayeredImage(doc.width, doc.height, out, bits=bits)


def _apply_mask(node, layer: Layer, loaded, bits: int) -> None:
    """Give ``node`` the editor layer's effective mask, unless it is the one read from the file."""
    mask = layer.mask()
    if mask is None:
        if node.mask is not None:
            node.mask, node.mask_changed = None, True
        return
    if loaded is not None and len(layer.masks) == 1 and loaded.mask is not None and \
            layer.masks[0].name == loaded.mask.name and _same_mask(layer.masks[0], loaded):
        return
    grey = qimage_to_array(mask.image, 1)
    node.set_mask(grey.astype("float32") / (65535.0 if grey.dtype.itemsize == 2 else 255.0), bits=bits,
                  name=mask.name)


def _same_mask(node: MaskNode, loaded) -> bool:
    import numpy as np
    from diffmatte.io.layered.model import paste

    m = loaded.mask
    grey = qimage_to_array(node.image, 1)
    top = np.iinfo(m.pixels.dtype).max
    want = np.full(grey.shape, top if m.default else 0, m.pixels.dtype)
    paste(want, m.pixels, m.left, m.top)
    return grey.dtype == want.dtype and np.array_equal(grey, want)
