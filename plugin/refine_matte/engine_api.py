"""What the panel, its worker and the editor need from an engine: :class:`EngineApi`.

:class:`refine_matte.client.EngineClient` (HTTP to the local service) is the product's
implementation; the tests' fakes (``tests/doubles/plugin_fakes.py``) implement the same
methods. Only these are called from the panel's side, so another engine (in-process, a
remote one) needs only these. An engine may also offer ``cutout(alpha_png, image_png=None,
edges=None, output="rgba")``: the output controls use it when present
(``finishing.ServiceFinisher``). Standard library only: this runs inside the host.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

try:
    from typing import Protocol
except ImportError:  # pragma: no cover - Python 3.7 (no host ships it any more)
    Protocol = object  # type: ignore[assignment,misc]

ProgressCallback = Callable[[int, int, Optional[bytes]], None]
WarningCallback = Callable[[str], None]


class EngineApi(Protocol):
    """The engine as the plugin sees it: trimaps, refines and cut-outs over PNG bytes."""

    def info(self) -> Dict[str, Any]:
        """Variant, device, version and the engine's own ``prior_only`` flag."""
        ...

    def trimap_from_mask(self, mask_png: bytes, band: Optional[int] = None, adaptive: bool = True,
                         image_png: Optional[bytes] = None, edge: str = "exact",
                         on_warning: Optional[WarningCallback] = None,
                         on_edge: Optional[Callable[[str], None]] = None,
                         on_work: Optional[Callable[[int, int], None]] = None,
                         cancel_event: Optional[threading.Event] = None) -> bytes:
        """Trimap PNG from a selection or mask (``edge``: rough / exact / auto);
        ``on_edge(edge)`` hears how it was read ("rough" or "exact", auto decided);
        ``on_work(done, total)`` the computation's progress; ``cancel_event`` stops it."""
        ...

    def trimap_from_scribbles(self, image_png: bytes, fg_png: bytes, bg_png: bytes,
                              unknown_png: Optional[bytes] = None, band: Optional[int] = None,
                              on_warning: Optional[WarningCallback] = None,
                              on_work: Optional[Callable[[int, int], None]] = None,
                              cancel_event: Optional[threading.Event] = None) -> bytes:
        """Trimap PNG from foreground / background (/ unknown) strokes (``on_work`` and
        ``cancel_event`` as for a mask)."""
        ...

    def sam_trimap(self, image_png: bytes, points: Sequence[Tuple[float, float]] = (),
                   labels: Sequence[int] = (), box: Optional[Sequence[float]] = None,
                   band: Optional[int] = None) -> bytes:
        """Trimap PNG from SAM clicks and / or a box."""
        ...

    def refine(self, image_png: bytes, trimap_png: bytes, steps: int = 10, seed: Optional[int] = None,
               on_progress: Optional[ProgressCallback] = None,
               cancel_event: Optional[threading.Event] = None, preview: bool = True, samples: int = 1,
               on_work: Optional[Callable[[int, int], None]] = None,
               on_warning: Optional[WarningCallback] = None, widen_band: bool = False,
               on_status: Optional[Callable[[str], None]] = None, band: Optional[float] = None) -> bytes:
        """The alpha PNG for an image and its trimap (blocking; cancellable); ``widen_band``
        for a trimap made from rough input (the engine may widen its band, by ``band``, the
        radius the trimap was made with, and solve again);
        ``on_status`` hears "submitted" and "started"."""
        ...
