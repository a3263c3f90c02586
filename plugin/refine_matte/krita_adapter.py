"""KritaAdapter: HostAdapter over Krita's scripting API (libkis), Krita 5.1 to 6.x.

Reads the active layer's pixels and the document selection with ``pixelData`` and
adds the matte as a new transparency mask; the layer's own pixels are never written.
Two ways to add the mask, chosen by what the running Krita offers (not by its
version string):

- ``Document.createTransparencyMask`` (Krita 5.2 and later): the mask gets the matte
  through ``setSelection`` (or ``setPixelData``) before ``addChildNode`` inserts it,
  so inserting it is the one undoable change;
- Krita's own ``add_new_transparency_mask`` action (Krita 5.1, whose scripting API has
  no transparency masks): the matte becomes the selection, the action turns it into a
  mask as one undo step, and the artist's own selection is put back afterwards.

Krita multiplies all visible transparency masks of a layer, so before adding, an
earlier "Refine Matte" mask is removed (an undoable step of its own) and other
visible transparency masks are switched off; the returned note says which.  Checked
in the real hosts by ``tests/hosts/krita.sh`` (Krita 5.1.5, 5.3.x, 6.0.x).
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

from .adapter import HostAdapter, HostError, NoImageError
from .qt import QtCore, QtGui

Fmt = QtGui.QImage.Format
MASK_TYPE = "transparencymask"
#: Krita's action that makes a transparency mask from the selection (Layer > Add).
MASK_ACTION = "add_new_transparency_mask"


def _bytes(data: Any) -> bytes:
    return bytes(data) if not isinstance(data, bytes) else data


def _is_mask(node: Any) -> bool:
    return node is not None and str(node.type()).endswith("mask")


def _masks(layer: Any) -> List[Any]:
    return [c for c in layer.childNodes() if c.type() == MASK_TYPE]


def _uid(node: Any) -> str:
    uid = node.uniqueId()
    return uid.toString() if hasattr(uid, "toString") else str(uid)


class KritaAdapter(HostAdapter):
    """Adapter for the running Krita instance (or an explicit ``krita.Krita``)."""

    host_name = "Krita"
    selection_name = "Selection"

    def __init__(self, krita: Any = None, selection_factory: Optional[Callable[[], Any]] = None) -> None:
        if krita is None:
            from krita import Krita  # type: ignore[import-not-found]
            krita = Krita.instance()
        if selection_factory is None:
            def selection_factory() -> Any:
                from krita import Selection  # type: ignore[import-not-found]
                return Selection()
        self._krita = krita
        self._selection_factory = selection_factory
        #: masks switched off for one of our masks: {"layer", "ours" (uid), "others", "off"}
        self._switched: List[dict] = []

    # ------------------------------------------------------------ helpers
    def _doc(self) -> Any:
        doc = self._krita.activeDocument()
        if doc is None:
            raise NoImageError("No image: open a document in Krita first.")
        return doc

    def _layer(self) -> Tuple[Any, Any, Any]:
        """(document, paint layer, active mask or None); an active mask means its layer."""
        doc = self._doc()
        node = doc.activeNode()
        mask = None
        if _is_mask(node):
            mask, node = node, node.parentNode()
        if node is None or node.type() != "paintlayer":
            raise NoImageError("Select a paint layer (not a group, vector or file layer).")
        return doc, node, mask

    # ----------------------------------------------------------- interface
    def active_image(self) -> "QtGui.QImage":
        doc, node, _ = self._layer()
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

    def selection_key(self) -> Optional[tuple]:
        """The selection's bounds: Krita's scripting API has no selection signal, and
        reading its pixels on a timer would copy the whole canvas every poll."""
        doc = self._krita.activeDocument()
        sel = doc.selection() if doc is not None else None
        return None if sel is None else (sel.x(), sel.y(), sel.width(), sel.height())

    def layer_mask(self) -> Optional["QtGui.QImage"]:
        """The active transparency mask, else the layer's topmost visible one."""
        doc, node, active = self._layer()
        if active is not None and active.type() == MASK_TYPE:
            mask = active
        else:
            shown = [m for m in _masks(node) if m.visible()]
            if not shown:
                return None
            mask = shown[-1]  # childNodes() lists bottom to top
        w, h = doc.width(), doc.height()
        return _grey(_bytes(mask.pixelData(0, 0, w, h)), w, h)

    def add_layer_mask(self, alpha: "QtGui.QImage", name: str = "Refine Matte") -> Optional[str]:
        doc, layer, _ = self._layer()
        w, h = doc.width(), doc.height()
        if alpha.width() != w or alpha.height() != h:
            raise HostError(f"The matte is {alpha.width()}x{alpha.height()} but the image is "
                            f"{w}x{h}.")
        rows = _packed_grey(alpha)
        use_api = hasattr(doc, "createTransparencyMask")
        action = None if use_api else self._krita.action(MASK_ACTION)
        if not use_api and action is None:
            raise HostError("This Krita offers neither createTransparencyMask nor the "
                            f"'{MASK_ACTION}' action, so the matte cannot become a mask. "
                            "Save the matte from the panel instead.")
        notes = []
        self.sync_masks()
        carried: List[Any] = []  # masks still off for the mask being replaced
        # Replace, never multiply: our earlier mask goes (undoable), others are switched off.
        for old in _masks(layer):
            if old.name() == name:
                for entry in [e for e in self._switched if e["ours"] == _uid(old)]:
                    self._switched.remove(entry)
                    carried += entry["others"]
                old.remove()
                notes.append(f"Replaced the earlier '{name}' mask (Undo twice to get it back).")
        if use_api:
            mask = self._add_with_api(doc, layer, rows, w, h, name)
        else:
            mask = self._add_with_action(doc, layer, action, rows, w, h, name)
        doc.refreshProjection()
        doc.waitForDone()
        if _bytes(mask.pixelData(0, 0, w, h)) != rows:
            mask.remove()
            raise HostError("Krita did not store the matte in the new mask, so it was removed "
                            "again. Save the matte from the panel instead.")
        switched = [m for m in carried if any(_uid(m) == _uid(c) for c in _masks(layer))]
        for other in _masks(layer):
            if _uid(other) != _uid(mask) and other.visible():
                other.setVisible(False)
                switched.append(other)
                notes.append(f"Switched off the mask '{other.name()}' so the masks do not "
                             "multiply; Undo switches it back on.")
        if switched:
            self._switched.append({"layer": layer, "ours": _uid(mask), "others": switched, "off": True})
            del self._switched[:-16]
        return " ".join(notes) or None

    def sync_masks(self) -> Optional[str]:
        """Follow Undo / Redo of our masks (Krita's setVisible is no undo step, and its
        scripting API has no undo signal, so the docker calls this on a timer): when a
        mask we added is gone, the masks we switched off for it are switched back on;
        when it comes back (Redo), they are switched off again. Returns a note or None."""
        notes = []
        for entry in list(self._switched):
            try:
                present = any(_uid(m) == entry["ours"] for m in _masks(entry["layer"]))
                if not present and entry["off"]:
                    for other in entry["others"]:
                        other.setVisible(True)
                    entry["off"] = False
                    notes.append("Switched the mask%s %s back on." % (
                        "s" if len(entry["others"]) > 1 else "",
                        ", ".join(f"'{o.name()}'" for o in entry["others"])))
                elif present and not entry["off"]:
                    for other in entry["others"]:
                        other.setVisible(False)
                    entry["off"] = True
            except Exception:  # noqa: BLE001 - a deleted layer or document: forget it
                self._switched.remove(entry)
        return " ".join(notes) or None

    def _add_with_api(self, doc: Any, layer: Any, rows: bytes, w: int, h: int, name: str) -> Any:
        """Krita 5.2+: fill a new TransparencyMask, then insert it (one undo step)."""
        mask = doc.createTransparencyMask(name)
        if mask is None:
            raise HostError("Krita could not create a transparency mask.")
        if hasattr(mask, "setSelection"):
            sel = self._selection_factory()
            sel.setPixelData(QtCore.QByteArray(rows), 0, 0, w, h)
            mask.setSelection(sel)
        else:
            mask.setPixelData(QtCore.QByteArray(rows), 0, 0, w, h)
        if not layer.addChildNode(mask, None):
            raise HostError("Krita refused to add the mask to the active layer.")
        return mask

    def _add_with_action(self, doc: Any, layer: Any, action: Any, rows: bytes, w: int, h: int,
                         name: str) -> Any:
        """Krita 5.1: matte -> selection -> Krita's "add transparency mask" action."""
        previous = doc.selection()  # a copy; put back after the action consumed ours
        before = {_uid(m) for m in _masks(layer)}
        sel = self._selection_factory()
        sel.setPixelData(QtCore.QByteArray(rows), 0, 0, w, h)
        doc.setSelection(sel)
        doc.setActiveNode(layer)  # the action works on the view's active node
        action.trigger()
        doc.waitForDone()
        if previous is not None:
            doc.setSelection(previous)
        added = [m for m in _masks(layer) if _uid(m) not in before]
        if len(added) != 1:
            raise HostError("Krita's 'add transparency mask' action did not add a mask to the "
                            "active layer (is the image shown in the active view?).")
        added[0].setName(name)
        return added[0]

    def document_id(self) -> Optional[str]:
        try:
            doc, layer, _ = self._layer()
        except HostError:
            return None
        return f"{doc.fileName()}:{_uid(layer)}"


def _packed_grey(alpha: "QtGui.QImage") -> bytes:
    """8-bit grey bytes without row padding (Krita wants tightly packed rows)."""
    grey = alpha.convertToFormat(Fmt.Format_Grayscale8)
    w, h, bpl = grey.width(), grey.height(), grey.bytesPerLine()
    ptr = grey.constBits()
    ptr.setsize(bpl * h)
    rows = bytes(ptr)
    if bpl != w:
        rows = b"".join(rows[y * bpl: y * bpl + w] for y in range(h))
    return rows


def _grey(raw: bytes, w: int, h: int) -> "QtGui.QImage":
    return QtGui.QImage(raw, w, h, w, Fmt.Format_Grayscale8).copy()
