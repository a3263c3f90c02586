"""LocalFinisher: the editor's edge controls and cut-outs through ``diffmatte.finish.cutout``.

The editor runs in the engine's venv, so it calls the very function the CLI's
``--rgba`` calls (``diffmatte.finish.cutout.finish``): the same image and matte give the
same cut-out pixels in both.  The foreground estimate is cached per (image, raw
matte), so edge and amount changes do not estimate it again.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Dict, Optional, Tuple

from ..qt import QtGui
from . import io as edio

Fmt = QtGui.QImage.Format


def _key(*arrays: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        h.update(f"{a.shape}|{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def layer_array(image: "QtGui.QImage"):
    """RGB array of a layer (uint16 for 16-bit layers, else uint8): what the CLI reads."""
    return edio.qimage_to_array(image, 4)[..., :3]


def alpha_array(alpha: "QtGui.QImage"):
    """Grey matte as uint16 (the service's 16-bit grid)."""
    return edio.qimage_to_array(alpha.convertToFormat(Fmt.Format_Grayscale16), 1)


class LocalFinisher:
    """Finisher (see refine_matte.finishing) backed by diffmatte.finish.cutout in-process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fg: Optional[Tuple[str, Any]] = None  # (key, foreground estimate)

    def edges(self, alpha: "QtGui.QImage", edges: Dict[str, float]) -> "QtGui.QImage":
        import numpy as np
        from diffmatte.finish.edges import apply_edges

        out = apply_edges(alpha_array(alpha), edges)
        return edio.array_to_qimage(np.rint(out * 65535.0).astype(np.uint16))

    def foreground(self, rgb, raw):
        """The foreground estimate of ``rgb`` under the raw matte, cached for the last pair."""
        from diffmatte.finish.cutout import estimate_foreground

        key = _key(rgb, raw)
        with self._lock:
            if self._fg is not None and self._fg[0] == key:
                return self._fg[1]
        fg = estimate_foreground(rgb, (raw.astype("float32") / 65535.0))
        with self._lock:
            self._fg = (key, fg)
        return fg

    def finish_arrays(self, image: "QtGui.QImage", raw_alpha: "QtGui.QImage", edges: Dict[str, float],
                      amount: float, premultiplied: bool = False):
        """``diffmatte.finish.cutout.finish`` on the layer's own pixels: (final alpha, RGBA array)."""
        from diffmatte.finish.cutout import finish

        rgb, raw = layer_array(image), alpha_array(raw_alpha)
        fg = self.foreground(rgb, raw) if amount > 0 else None
        return finish(rgb, raw, edges=edges, decontaminate=amount, premultiplied=premultiplied, foreground=fg)

    def cutout(self, image: "QtGui.QImage", raw_alpha: "QtGui.QImage", edges: Dict[str, float],
               amount: float) -> "QtGui.QImage":
        _, rgba = self.finish_arrays(image, raw_alpha, edges, amount)
        return edio.array_to_qimage(rgba)
