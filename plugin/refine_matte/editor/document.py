"""The standalone editor's document: layers, their mask nodes and a selection.

Everything is QImage so the model works without numpy; masks are grey images
at document size.  A layer's mask stack is a list of nodes; the last one is
the effective mask (that is what Refine Matte's "new mask node" appends to).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from ..qt import QtCore, QtGui


@dataclass
class MaskNode:
    """A layer mask: grey image (Grayscale8 or Grayscale16), 255/65535 = opaque."""

    name: str
    image: "QtGui.QImage"


@dataclass
class Layer:
    """A raster layer at document size; ``bits`` is 8 or 16 (source precision)."""

    name: str
    image: "QtGui.QImage"
    visible: bool = True
    bits: int = 8
    masks: List[MaskNode] = field(default_factory=list)

    def mask(self) -> Optional[MaskNode]:
        return self.masks[-1] if self.masks else None


@dataclass
class Document:
    """Layers (bottom to top), the active layer index and an optional selection."""

    layers: List[Layer]
    path: Optional[str] = None
    active: int = 0
    selection: Optional["QtGui.QImage"] = None

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("a document needs at least one layer")
        self.active = min(max(self.active, 0), len(self.layers) - 1)

    @property
    def size(self) -> "QtCore.QSize":
        return self.layers[0].image.size()

    @property
    def width(self) -> int:
        return self.size.width()

    @property
    def height(self) -> int:
        return self.size.height()

    def active_layer(self) -> Layer:
        return self.layers[self.active]

    def composite(self) -> "QtGui.QImage":
        """Visible layers with their masks applied, over transparency (ARGB32)."""
        from .. import imaging

        out = QtGui.QImage(self.size, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        out.fill(QtGui.QColor(0, 0, 0, 0))
        p = QtGui.QPainter(out)
        for layer in self.layers:
            if not layer.visible:
                continue
            node = layer.mask()
            img = imaging.cutout(layer.image, node.image) if node else layer.image
            p.drawImage(0, 0, img)
        p.end()
        return out
