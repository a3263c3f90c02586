"""EditorAdapter: the standalone editor's implementation of HostAdapter.

Mask additions go through a QUndoStack as one command each, so a single undo
removes the mask node again; layer pixels are never written.
"""

from __future__ import annotations

from typing import Callable, Optional

from ..adapter import HostAdapter, HostError, NoImageError
from ..qt import QtGui, QUndoCommand, QUndoStack
from .document import Document, Layer, MaskNode


class AddMaskCommand(QUndoCommand):
    """Put a mask node on a layer, replacing the layer's earlier node of the same name
    (one Refine Matte mask per layer); undo restores exactly the state before."""

    def __init__(self, layer: Layer, node: MaskNode, on_change: Callable[[], None]) -> None:
        self.layer, self.node, self._on_change = layer, node, on_change
        self.replaced: Optional[MaskNode] = next((m for m in layer.masks if m.name == node.name), None)
        self._index = layer.masks.index(self.replaced) if self.replaced is not None else len(layer.masks)
        super().__init__(f"{'Replace' if self.replaced is not None else 'Add'} mask '{node.name}'")

    def redo(self) -> None:
        if self.replaced is not None and self.replaced in self.layer.masks:
            self.layer.masks[self.layer.masks.index(self.replaced)] = self.node
        else:
            self.layer.masks.insert(min(self._index, len(self.layer.masks)), self.node)
        self._on_change()

    def undo(self) -> None:
        if self.node in self.layer.masks:
            i = self.layer.masks.index(self.node)
            if self.replaced is not None:
                self.layer.masks[i] = self.replaced
            else:
                del self.layer.masks[i]
        self._on_change()


class EditorAdapter(HostAdapter):
    """Adapter over a :class:`Document` held by the editor (or a test)."""

    host_name = "Standalone editor"
    selection_name = "Selection"  # the editor's own word (its Select menu)

    def __init__(self, document: Optional[Document] = None,
                 undo_stack: Optional["QUndoStack"] = None,
                 on_change: Optional[Callable[[], None]] = None) -> None:
        self.document = document
        self.undo_stack = undo_stack if undo_stack is not None else QUndoStack()
        self._on_change = on_change or (lambda: None)

    def _layer(self) -> Layer:
        if self.document is None:
            raise NoImageError()
        return self.document.active_layer()

    def active_image(self) -> "QtGui.QImage":
        return self._layer().image

    def selection_mask(self) -> Optional["QtGui.QImage"]:
        if self.document is None:
            raise NoImageError()
        return self.document.selection

    def layer_mask(self) -> Optional["QtGui.QImage"]:
        node = self._layer().mask()
        return node.image if node else None

    def add_layer_mask(self, alpha: "QtGui.QImage", name: str = "Refine Matte") -> Optional[str]:
        """Add the mask node, or replace this layer's earlier one of that name (one undo step)."""
        layer = self._layer()
        if alpha is None or alpha.isNull():
            raise HostError("The engine returned an empty matte.")
        if alpha.size() != layer.image.size():
            raise HostError(f"The matte is {alpha.width()}x{alpha.height()} but the layer is "
                            f"{layer.image.width()}x{layer.image.height()}.")
        fmt = alpha.format()
        grey = QtGui.QImage.Format
        if fmt not in (grey.Format_Grayscale8, grey.Format_Grayscale16):
            alpha = alpha.convertToFormat(grey.Format_Grayscale8)
        cmd = AddMaskCommand(layer, MaskNode(name, alpha.copy()), self._on_change)
        self.undo_stack.push(cmd)
        return "It replaced the previous Refine Matte mask (undo brings it back)." if cmd.replaced else None

    def document_id(self) -> Optional[str]:
        if self.document is None:
            return None
        return f"{id(self.document)}:{self.document.active}"
