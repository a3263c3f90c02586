"""Host-adapter interface: the only way the panel touches a host's document.

A host (the standalone editor, later Krita) implements :class:`HostAdapter`.
Pixels cross this boundary as QImage because every host that can show the
panel already has Qt; no editor- or host-specific types appear here.

Contract for implementers:
- ``active_image`` returns the active layer's own pixels at document size;
- ``add_layer_mask`` adds a *new* mask node holding the refined alpha, as one
  undoable step of the host, and never modifies the layer's pixels.  A host
  whose masks multiply (Krita) replaces its own earlier Refine Matte mask and
  switches other masks off rather than multiplying them, and says so in the
  note it returns.
"""

from __future__ import annotations

import abc
from typing import Optional

from .qt import QtGui


class HostError(Exception):
    """A problem the artist can fix in the host; the message is shown as-is."""


class NoImageError(HostError):
    """No document or no paintable active layer."""

    def __init__(self, message: str = "No image: open an image and select a layer first.") -> None:
        super().__init__(message)


class NoSelectionError(HostError):
    """The chosen trimap source needs a selection or layer mask that is missing."""

    def __init__(self, message: str = "No selection: make a selection (or pick another trimap source).") -> None:
        super().__init__(message)


class HostAdapter(abc.ABC):
    """What the Refine Matte panel needs from a host application."""

    #: Shown in the panel's title/status, e.g. "Standalone editor" or "Krita".
    host_name: str = "host"
    #: The host's own word for its selection, shown as that trimap source (Krita: "Selection").
    selection_name: str = "Host selection"

    @abc.abstractmethod
    def active_image(self) -> "QtGui.QImage":
        """Pixels of the active layer at document size (any QImage format).

        Raises NoImageError when there is no document or active layer.
        """

    @abc.abstractmethod
    def selection_mask(self) -> Optional["QtGui.QImage"]:
        """The host's current selection as a grey mask (255 = selected), or None."""

    @abc.abstractmethod
    def layer_mask(self) -> Optional["QtGui.QImage"]:
        """The active layer's effective mask as a grey image, or None if it has none."""

    @abc.abstractmethod
    def add_layer_mask(self, alpha: "QtGui.QImage", name: str = "Refine Matte") -> Optional[str]:
        """Attach ``alpha`` (grey, document size) to the active layer as a new mask node.

        Must be one undoable step in the host and must not change the layer's pixels.
        Returns an optional note for the artist (e.g. which older masks were replaced
        or switched off), or None.  Raises HostError when the layer cannot take a mask.
        """

    def selection_key(self) -> Optional[tuple]:
        """Something cheap that changes when the host's selection changes (Krita: its
        bounds), polled so the panel's outline follows the host; None: not polled."""
        return None

    def document_id(self) -> Optional[str]:
        """An identifier that changes when the active document/layer changes (optional)."""
        return None
