"""A selection's trimap as every front end reads it: the service's ``/v1/trimap/mask`` (the
docker, the editor), ``diffmatte refine --mask`` and ``diffmatte batch --masks``.

A rough (or auto) selection that is a plain filled rectangle (:func:`trimap.box_of`) says
only where the subject is; Segment Anything's box prompt reads that far better than colour
models, so it goes there when SAM is installed (the edge is then ``"sam-box"``). Any other
selection, or a rectangle without SAM, goes through :func:`trimap.from_selection`.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .box import box_of
from .rough import from_selection
from .sam import SamPrompter, locate_checkpoint

#: the edge of a rectangle read by SAM's box prompt (the service's ``X-Trimap-Edge``)
SAM_BOX = "sam-box"

Box = Tuple[int, int, int, int]
#: ``sam_box(box)``: SAM's trimap for a box prompt (x0, y0, x1, y1), or None without SAM
BoxTrimap = Callable[[Box], Optional[np.ndarray]]


def read_selection(
    mask: object,
    image: object,
    band: Optional[float] = None,
    *,
    edge: str = "auto",
    adaptive: bool = True,
    report: Optional[List[str]] = None,
    sam_box: Optional[BoxTrimap] = None,
) -> Tuple[np.ndarray, str]:
    """``(trimap, edge used)`` of a selection: ``"sam-box"`` when ``edge`` is not "exact", the
    selection is a plain rectangle and ``sam_box`` gives a trimap for it (None: SAM is not
    installed); else :func:`trimap.from_selection` (``"rough"`` or ``"exact"``), whose
    arguments the others are. ``sam_box`` is asked only for a rectangle, so SAM loads only then."""
    if edge != "exact" and sam_box is not None:
        box = box_of(mask)
        if box is not None:
            tri = sam_box(box)
            if tri is not None:
                return tri, SAM_BOX
    return from_selection(mask, image, band=band, edge=edge, adaptive=adaptive, report=report)


# The installed SAM of this process, per device (None: none is installed): a batch of masks
# loads the checkpoint once, not once per rectangle.
_INSTALLED: Dict[str, Optional[SamPrompter]] = {}
_INSTALLED_LOCK = threading.Lock()
#: what building a prompter raises when SAM cannot run here (no checkpoint, no
#: segment-anything, a damaged file): the colour models read the rectangle instead
SAM_MISSING = (ImportError, OSError, ValueError, RuntimeError, KeyError)


def installed_prompter(device: str = "auto") -> Optional[SamPrompter]:
    """The SAM checkpoint installed where :func:`trimap.find_checkpoint` looks (the
    ``REFINE_MATTE_SAM_CHECKPOINT`` variable, the config folder's ``sam/``), built once per
    process and device; None when there is none or it cannot run."""
    with _INSTALLED_LOCK:
        if device not in _INSTALLED:
            try:
                # found first: without a checkpoint nothing imports torch (the CLI reads its
                # inputs before loading the engine, so that a typo answers at once)
                _INSTALLED[device] = SamPrompter(locate_checkpoint(None, None), device=device)
            except SAM_MISSING:
                _INSTALLED[device] = None
        return _INSTALLED[device]


def installed_sam_id() -> Optional[str]:
    """What identifies the installed SAM checkpoint for batch fingerprints (its file name, size
    and modification time; None when none is installed): a rerun after SAM was installed or
    replaced redoes the rectangles it reads. Cheap: the file is found, not loaded."""
    try:
        path = locate_checkpoint(None, None)
        stat = path.stat()
    except (OSError, ValueError):   # SamCheckpointError is a ValueError
        return None
    return f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}"


def installed_sam_box(image: Any, band: Optional[float], device: str = "auto") -> BoxTrimap:
    """``sam_box`` for :func:`read_selection` from the installed SAM (:func:`installed_prompter`)."""
    def run(box: Box) -> Optional[np.ndarray]:
        prompter = installed_prompter(device)
        return None if prompter is None else prompter.trimap(image, box=list(box), band=band)
    return run
