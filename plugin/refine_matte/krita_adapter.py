"""KritaAdapter: HostAdapter over Krita's scripting API (libkis).

Reads the active node's pixels and the document selection with
``pixelData``, and adds the matte as a new transparency mask whose pixels are
written *before* it is inserted, so inserting it is the only document change
(one undo step where Krita records node additions as commands).  The layer's
own pixels are never written.

Checked against Krita 5.1.5 (Debian) with ``kritarunner``: reading pixels and
the selection works; 5.1's API cannot write mask pixels, which the adapter
detects and reports instead of adding an empty mask.  The Krita 5.2+ path
(``TransparencyMask.setSelection``) is exercised only against an imitation.
"""

from __future__ import annotations

from typing import Any, Optional

from .adapter import HostAdapter, HostError, NoImageError
from .qt import QtCore, QtGui

Fmt = QtGui.QImage.Format
_LAYER_TYPES = ("paintlayer",)


def _bytes(data: Any) -> bytes:
    return bytes(data) if not isinstance(data, bytes) else data


class KritaAdapter(HostAdapter):
    """Adapter for the running Krita instance (or an explicit ``krita.Krita``)."""

    host_name = "Krita"

    def __init__(self, krita: Any = None, selection_factory: Any = None) -> None:
        if krita is None:
            from krita import Krita  # type: ignore[import-not-found]
            krita = Krita.instance()
        if selection_factory is None:
            def selection_factory() -> Any:
                from krita import Selection  # type: ignore[import-not-found]
                return Selection()
        self._krita = krita
        self._selection_factory = selection_factory

    # ------------------------------------------------------------ helpers
    def _doc(self) -> Any:
        doc = self._krita.activeDocument()
        if doc is None:
            raise NoImageError("No image: open a document in Krita first.")
        return doc

    def _node(self) -> Any:
        doc = self._doc()
        node = doc.activeNode()
        if node is None or node.type() not in _LAYER_TYPES:
            raise NoImageError("Select a paint layer (not a group, mask or vector layer).")
        return doc, node

    # ----------------------------------------------------------- interface
    def active_image(self) -> "QtGui.QImage":
        doc, node = self._node()
        w, h = doc.width(), doc.height()
        model, depth = node.colorModel(), node.colorDepth()
        if model != "RGBA" or depth not in ("U8", "U16"):
            raise HostError(f"Refine Matte needs an 8- or 16-bit RGB layer; this one is "
                            f"{model} {depth}. Convert the layer's colour space first.")
        raw = _bytes(node.pixelData(0, 0, w, h))
        if depth == "U16":
            # Krita stores 16-bit BGRA little-endian; the high bytes are the 8-bit values.
            raw = raw[1::2]
        # Krita's 8-bit RGBA is B,G,R,A in memory: the layout of QImage ARGB32 on
        # little-endian machines, which is every platform Krita ships on.
        return QtGui.QImage(raw, w, h, 4 * w, Fmt.Format_ARGB32).copy()

    def selection_mask(self) -> Optional["QtGui.QImage"]:
        doc = self._doc()
        sel = doc.selection()
        if sel is None:
            return None
        w, h = doc.width(), doc.height()
        return _grey(_bytes(sel.pixelData(0, 0, w, h)), w, h)

    def layer_mask(self) -> Optional["QtGui.QImage"]:
        doc, node = self._node()
        masks = [c for c in node.childNodes() if c.type() == "transparencymask"]
        if not masks:
            return None
        w, h = doc.width(), doc.height()
        return _grey(_bytes(masks[-1].pixelData(0, 0, w, h)), w, h)

    def add_layer_mask(self, alpha: "QtGui.QImage", name: str = "Refine Matte") -> None:
        doc, node = self._node()
        w, h = doc.width(), doc.height()
        if alpha.width() != w or alpha.height() != h:
            raise HostError(f"The matte is {alpha.width()}x{alpha.height()} but the image is "
                            f"{w}x{h}.")
        grey = alpha.convertToFormat(Fmt.Format_Grayscale8)
        ptr = grey.constBits()
        ptr.setsize(grey.bytesPerLine() * h)
        rows = bytes(ptr)
        if grey.bytesPerLine() != w:  # drop row padding: Krita wants tightly packed rows
            rows = b"".join(rows[y * grey.bytesPerLine(): y * grey.bytesPerLine() + w]
                            for y in range(h))
        if hasattr(doc, "createTransparencyMask"):
            mask = doc.createTransparencyMask(name)
        else:  # Krita < 5.2
            mask = doc.createNode(name, "transparencymask")
        if mask is None:
            raise HostError("Krita could not create a transparency mask.")
        self._fill_mask(mask, rows, w, h)
        if not node.addChildNode(mask, None):
            raise HostError("Krita refused to add the mask to the active layer.")
        doc.refreshProjection()

    def _fill_mask(self, mask: Any, rows: bytes, w: int, h: int) -> None:
        """Write the matte into a mask that is not in the document yet."""
        if hasattr(mask, "setSelection"):  # Krita 5.2+: TransparencyMask owns a Selection
            sel = self._selection_factory()
            sel.setPixelData(QtCore.QByteArray(rows), 0, 0, w, h)
            mask.setSelection(sel)
            return
        mask.setPixelData(QtCore.QByteArray(rows), 0, 0, w, h)
        # Krita 5.1's scripting API hands out masks without pixel access: writes are
        # silently dropped, so check instead of adding an all-opaque mask.
        if len(_bytes(mask.pixelData(0, 0, w, h))) != w * h:
            raise HostError("This Krita version cannot set a mask's pixels from Python "
                            "(Krita 5.2 or newer can). Save the alpha with the standalone "
                            "editor instead.")

    def document_id(self) -> Optional[str]:
        doc = self._krita.activeDocument()
        if doc is None:
            return None
        node = doc.activeNode()
        return f"{doc.fileName()}:{node.uniqueId().toString() if node else ''}"


def _grey(raw: bytes, w: int, h: int) -> "QtGui.QImage":
    return QtGui.QImage(raw, w, h, w, Fmt.Format_Grayscale8).copy()
