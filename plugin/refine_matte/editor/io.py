"""Open and save files for the standalone editor.

Reads PNG / JPEG / TIFF (8 and 16 bit, multi-page TIFF as layers) with Qt,
OpenRaster (.ora: a zip of stack.xml + PNGs) with the stdlib, PSD through
psd-tools when it is installed.  Writes the alpha, an RGBA cut-out, or the
image with its mask as a layer mask (OpenRaster, or layered TIFF through
tifffile).  Every write goes to a temp file first and is moved into place.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from typing import Callable, List, Optional, Tuple
from xml.etree import ElementTree as ET

from .. import imaging
from ..qt import QtCore, QtGui
from .document import Document, Layer, MaskNode

Fmt = QtGui.QImage.Format
OPEN_FILTER = ("Images (*.png *.jpg *.jpeg *.tif *.tiff *.ora *.psd);;"
               "PNG (*.png);;JPEG (*.jpg *.jpeg);;TIFF (*.tif *.tiff);;"
               "OpenRaster (*.ora);;Photoshop (*.psd);;All files (*)")
_FLAT_EXT = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
_SIXTEEN = None  # filled lazily: formats that carry 16 bits per channel
DST_IN = "svg:dst-in"


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
    if ext == ".ora":
        doc = _load_ora(path)
    elif ext == ".psd":
        doc = _load_psd(path)
    elif ext in (".tif", ".tiff"):
        doc = _load_tiff(path)
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


class _PageSizeError(ValueError):
    """Pages of a multi-page TIFF differ in size (they cannot be layers of one image)."""


def _load_tiff(path: str) -> Document:
    try:
        import tifffile  # noqa: F401  (engine venv; gives page names for layered TIFF)
    except ImportError:
        tifffile = None
    if tifffile is not None:
        try:
            doc = _load_tiff_pages(path)
        except _PageSizeError:
            raise
        except Exception:  # noqa: BLE001 - tifffile dislikes some files Qt reads fine
            doc = None
        if doc is not None:
            return doc
    reader = QtGui.QImageReader(path)
    layers: List[Layer] = []
    count = max(reader.imageCount(), 1)
    for i in range(count):
        image = reader.read()
        if image.isNull():
            if i == 0:
                raise ValueError(f"cannot read image {path}: {reader.errorString()}")
            break
        image, bits = _normalise(image)
        layers.append(Layer(f"page {i + 1}" if count > 1 else os.path.basename(path),
                            image, bits=bits))
        if not reader.jumpToNextImage():
            break
    return Document(layers)


def _load_tiff_pages(path: str) -> Optional[Document]:
    """Multi-page TIFF via tifffile; pages named '<layer> mask' become mask nodes."""
    import numpy as np
    import tifffile

    with tifffile.TiffFile(path) as tif:
        pages = list(tif.pages)
        if len(pages) < 2:
            return None  # single page: Qt handles orientation and more photometrics
        layers: List[Layer] = []
        for i, page in enumerate(pages):
            tag = page.tags.get("PageName")
            name = str(tag.value) if tag is not None else f"page {i + 1}"
            arr = page.asarray()
            if name.endswith(" mask") and layers and arr.ndim == 2:
                layers[-1].masks.append(MaskNode(name[:-5] or "mask", array_to_qimage(arr)))
                continue
            if arr.ndim == 2:
                arr = np.stack([arr] * 3, axis=-1)
            image, bits = _normalise(array_to_qimage(arr))
            layers.append(Layer(name, image, bits=bits))
    sizes = {(l.image.width(), l.image.height()) for l in layers}
    if len(sizes) != 1:
        raise _PageSizeError(f"{path}: TIFF pages have different sizes {sorted(sizes)}")
    return Document(layers)


def _load_ora(path: str) -> Document:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{path} is not an OpenRaster file: {exc}") from exc
    with zf:
        try:
            root = ET.fromstring(zf.read("stack.xml"))
        except (KeyError, ET.ParseError) as exc:
            raise ValueError(f"{path}: missing or broken stack.xml ({exc})") from exc
        w, h = int(root.get("w", "0")), int(root.get("h", "0"))
        if w <= 0 or h <= 0:
            raise ValueError(f"{path}: stack.xml has no valid image size")
        stack = root.find("stack")
        if stack is None:
            raise ValueError(f"{path}: stack.xml has no <stack>")
        layers: List[Layer] = []
        _ora_collect(zf, stack, w, h, 0, 0, layers, path)
    if not layers:
        raise ValueError(f"{path}: no raster layers")
    return Document(layers)


def _ora_png(zf: zipfile.ZipFile, elem: ET.Element, w: int, h: int, dx: int, dy: int,
             path: str) -> Tuple["QtGui.QImage", int]:
    src = elem.get("src", "")
    try:
        data = zf.read(src)
    except KeyError as exc:
        raise ValueError(f"{path}: layer file {src!r} is missing") from exc
    img = QtGui.QImage()
    if not img.loadFromData(QtCore.QByteArray(data)):
        raise ValueError(f"{path}: layer file {src!r} is not a readable PNG")
    img, bits = _normalise(img)
    x, y = dx + int(float(elem.get("x", 0))), dy + int(float(elem.get("y", 0)))
    if (x, y) == (0, 0) and img.width() == w and img.height() == h:
        return img, bits
    placed = QtGui.QImage(w, h, img.format())
    placed.fill(QtGui.QColor(0, 0, 0, 0))
    p = QtGui.QPainter(placed)
    p.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_Source)
    p.drawImage(x, y, img)
    p.end()
    return placed, bits


def _ora_collect(zf, stack, w, h, dx, dy, out: List[Layer], path: str) -> None:
    """Append raster layers bottom-to-top; a 2-child group of [dst-in layer, layer]
    (what save_layered writes) becomes one layer with a mask node."""
    dx += int(float(stack.get("x", 0)))
    dy += int(float(stack.get("y", 0)))
    for elem in reversed(list(stack)):  # stack.xml lists top first
        if elem.tag == "stack":
            kids = [k for k in elem if k.tag == "layer"]
            if (len(kids) == 2 and len(list(elem)) == 2
                    and kids[0].get("composite-op") == DST_IN):
                img, bits = _ora_png(zf, kids[1], w, h, dx, dy, path)
                mimg, _ = _ora_png(zf, kids[0], w, h, dx, dy, path)
                mask = imaging.to_grey8(_alpha_of(mimg))
                layer = Layer(elem.get("name") or kids[1].get("name", "layer"), img, bits=bits,
                              visible=elem.get("visibility", "visible") != "hidden")
                layer.masks.append(MaskNode(kids[0].get("name", "mask"), mask))
                out.append(layer)
            else:
                _ora_collect(zf, elem, w, h, dx, dy, out, path)
        elif elem.tag == "layer":
            img, bits = _ora_png(zf, elem, w, h, dx, dy, path)
            out.append(Layer(elem.get("name", "layer"), img, bits=bits,
                             visible=elem.get("visibility", "visible") != "hidden"))


def _alpha_of(image: "QtGui.QImage") -> "QtGui.QImage":
    """The alpha channel of an image as a Grayscale8 image."""
    a8 = image.convertToFormat(Fmt.Format_Alpha8)
    grey = QtGui.QImage(imaging.image_bytes(a8), a8.width(), a8.height(),
                        a8.bytesPerLine(), Fmt.Format_Grayscale8)
    return grey.copy()


def _load_psd(path: str) -> Document:
    try:
        from psd_tools import PSDImage
    except ImportError as exc:
        raise ValueError("opening PSD files needs the psd-tools package "
                         "(pip install psd-tools)") from exc
    try:
        psd = PSDImage.open(path)
    except Exception as exc:  # noqa: BLE001 - psd-tools raises many types
        raise ValueError(f"cannot read PSD {path}: {exc}") from exc
    w, h = psd.width, psd.height
    layers: List[Layer] = []
    for layer in psd.descendants():
        if layer.is_group():
            continue
        pil = layer.topil()
        if pil is None:
            continue
        img = QtGui.QImage(w, h, Fmt.Format_ARGB32)
        img.fill(QtGui.QColor(0, 0, 0, 0))
        p = QtGui.QPainter(img)
        p.drawImage(layer.left, layer.top, _pil_to_qimage(pil))
        p.end()
        layers.append(Layer(layer.name, img, visible=layer.visible))
    if not layers:
        pil = psd.composite()
        layers.append(Layer(os.path.basename(path), _normalise(_pil_to_qimage(pil))[0]))
    return Document(layers)


def _pil_to_qimage(pil) -> "QtGui.QImage":
    import io as _io

    buf = _io.BytesIO()
    pil.convert("RGBA").save(buf, "PNG")
    return imaging.png_to_qimage(buf.getvalue())


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
    """Call write(tmp) on a temp file next to ``path``, then move it into place."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    ext = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".refine-matte-", suffix=ext, dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def cutout_image(layer: Layer, alpha: "QtGui.QImage") -> "QtGui.QImage":
    """Unpremultiplied RGBA cut-out; 16-bit when the layer is 16-bit and numpy exists."""
    if layer.bits == 16:
        try:
            import numpy as np
        except ImportError:
            np = None
        if np is not None:
            rgba = qimage_to_array(layer.image, 4).astype(np.uint32)
            a = qimage_to_array(alpha.convertToFormat(Fmt.Format_Grayscale16), 1)
            rgba[..., 3] = (rgba[..., 3] * a.astype(np.uint32) + 32767) // 65535
            return array_to_qimage(rgba.astype(np.uint16))
    return imaging.cutout(layer.image, alpha).convertToFormat(Fmt.Format_ARGB32)


def save_cutout(path: str, layer: Layer, alpha: "QtGui.QImage") -> None:
    """Write the layer with the matte as its alpha channel (PNG/TIFF)."""
    if alpha is None or alpha.isNull():
        raise ValueError("there is no matte to save yet")
    _atomic(path, _qt_write(cutout_image(layer, alpha), _flat_format(path)))


def save_layered(path: str, doc: Document) -> None:
    """Write every layer with its effective mask as a layer mask (.ora or .tif)."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".ora":
        _atomic(path, lambda tmp: _write_ora(tmp, doc))
    elif ext in (".tif", ".tiff"):
        _atomic(path, lambda tmp: _write_layered_tiff(tmp, doc))
    else:
        raise ValueError(f"layered save needs .ora or .tif, not {ext or '(none)'}")


def _png(image: "QtGui.QImage") -> bytes:
    return imaging.qimage_to_png(image)


def _mask_layer_image(mask: "QtGui.QImage") -> "QtGui.QImage":
    """White pixels whose alpha is the mask: composited with dst-in it masks the layer."""
    white = QtGui.QImage(mask.size(), Fmt.Format_ARGB32)
    white.fill(QtGui.QColor(255, 255, 255))
    return imaging.cutout(white, mask).convertToFormat(Fmt.Format_ARGB32)


def _write_ora(tmp: str, doc: Document) -> None:
    root = ET.Element("image", {"version": "0.0.3", "w": str(doc.width), "h": str(doc.height)})
    top = ET.SubElement(root, "stack")
    files = []
    for i, layer in enumerate(reversed(doc.layers)):  # stack.xml: top first
        vis = "visible" if layer.visible else "hidden"
        src = f"data/layer{i}.png"
        files.append((src, _png(layer.image)))
        node = layer.mask()
        if node is None:
            ET.SubElement(top, "layer", {"name": layer.name, "src": src, "x": "0", "y": "0",
                                         "visibility": vis, "opacity": "1.0"})
            continue
        group = ET.SubElement(top, "stack", {"name": layer.name, "isolation": "isolate",
                                             "visibility": vis, "x": "0", "y": "0"})
        msrc = f"data/layer{i}_mask.png"
        files.append((msrc, _png(_mask_layer_image(node.image))))
        ET.SubElement(group, "layer", {"name": node.name, "src": msrc, "x": "0", "y": "0",
                                       "composite-op": DST_IN, "visibility": "visible",
                                       "opacity": "1.0"})
        ET.SubElement(group, "layer", {"name": layer.name, "src": src, "x": "0", "y": "0",
                                       "visibility": "visible", "opacity": "1.0"})
    merged = doc.composite()
    thumb = merged.scaled(256, 256, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                          QtCore.Qt.TransformationMode.SmoothTransformation)
    with zipfile.ZipFile(tmp, "w") as zf:
        # The spec wants 'mimetype' first and uncompressed.
        zf.writestr(zipfile.ZipInfo("mimetype"), "image/openraster", zipfile.ZIP_STORED)
        zf.writestr("stack.xml", ET.tostring(root, encoding="utf-8", xml_declaration=True),
                    zipfile.ZIP_DEFLATED)
        for name, data in files:
            zf.writestr(name, data, zipfile.ZIP_STORED)  # PNG is already compressed
        zf.writestr("mergedimage.png", _png(merged), zipfile.ZIP_STORED)
        zf.writestr("Thumbnails/thumbnail.png", _png(thumb), zipfile.ZIP_STORED)


def _write_layered_tiff(tmp: str, doc: Document) -> None:
    try:
        import numpy  # noqa: F401
        import tifffile
    except ImportError as exc:
        raise ValueError("layered TIFF needs numpy and tifffile; save as .ora instead") from exc
    with tifffile.TiffWriter(tmp) as tw:
        for layer in doc.layers:
            rgba = qimage_to_array(layer.image, 4)
            tw.write(rgba, photometric="rgb", extrasamples=["unassalpha"],
                     compression="zlib", metadata=None,
                     extratags=[(285, "s", 0, layer.name, False)])
            node = layer.mask()
            if node is not None:
                grey = qimage_to_array(node.image, 1)
                tw.write(grey, photometric="minisblack", compression="zlib", metadata=None,
                         extratags=[(285, "s", 0, f"{layer.name} mask", False)])
