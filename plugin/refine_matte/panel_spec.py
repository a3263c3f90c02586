"""The job a refine (or band preview) runs: built from the host's layer, the panel's state
and the canvas's input, with the checks that refuse it early (no document, an empty or tiny
selection, missing scribbles or SAM prompts).  Qt + stdlib; used by RefinePanel.
"""

from __future__ import annotations

from typing import Any, Optional

from . import imaging
from .adapter import HostAdapter, HostError, NoImageError, NoSelectionError
from .canvas import MatteCanvas
from .panel_state import PanelState
from .qt import QtGui
from .worker import JobSpec


def build_spec(adapter: Optional[HostAdapter], canvas: MatteCanvas, state: PanelState, seed: Any) -> JobSpec:
    """The job for the current source; shows the host's layer on the canvas when it changed,
    and keeps its pixels as ``state.spec_image`` (for the cut-out). Raises HostError /
    NoImageError / NoSelectionError with the message for the artist."""
    if adapter is None:
        raise NoImageError("No host document is connected to the panel.")
    image = adapter.active_image()
    if image is None or image.isNull():
        raise NoImageError()
    shown = canvas.image()
    if shown is None or shown.size() != image.size() or shown != image:
        # The host changed layer since the last refresh: show what we will refine.
        canvas.set_image(image, keep_input=shown is not None and shown.size() == image.size())
    state.spec_image = image  # the layer's own pixels (16-bit stays 16-bit) for the cut-out
    # QImage copies: the worker thread encodes them to PNG.
    spec = JobSpec(image_png=image.copy(), source=state.source(),
                   steps=state.steps(), samples=state.samples(), band=state.band_or_none(),
                   seed=seed, edge=state.job_edge())
    if spec.source != "scribbles":
        spec.override_png = canvas.render_overrides()  # the refine brush
    if spec.source == "selection":
        mask = adapter.selection_mask()
        if mask is None:
            raise NoSelectionError()
        _check_coverage(mask, "selection")
        canvas.set_selection(mask)  # the outline shows what is refined, even if the host did not say it changed
        spec.mask_png = mask.copy()
    elif spec.source == "mask":
        mask = adapter.layer_mask()
        if mask is None:
            raise NoSelectionError("The active layer has no mask: add one, or pick "
                                   "another trimap source.")
        _check_coverage(mask, "layer's mask")
        spec.mask_png = mask.copy()
    elif spec.source == "scribbles":
        if not (canvas.has_scribbles("fg") and canvas.has_scribbles("bg")):
            raise HostError("Paint at least one foreground (F) and one background (B) "
                            "scribble first.")
        spec.fg_png = canvas.render_scribbles("fg")
        spec.bg_png = canvas.render_scribbles("bg")
        if canvas.has_scribbles("unknown"):
            spec.unknown_png = canvas.render_scribbles("unknown")
    elif spec.source == "sam":
        if not canvas.sam_points and canvas.sam_box is None:
            raise HostError("Click a point on the subject or drag a box around it first (P).")
        spec.points = [(x, y) for x, y, _ in canvas.sam_points]
        spec.labels = [lab for _, _, lab in canvas.sam_points]
        spec.box = canvas.sam_box
    return spec


#: fewest selected pixels a selection / mask source needs (fewer on images under 6400 px)
MIN_SELECTED_PX = 64


def _check_coverage(mask: "QtGui.QImage", what: str) -> None:
    """Refuse an empty or tiny selection / mask: its matte would hide the whole layer."""
    if imaging.count_above(mask, 0) == 0:
        raise NoSelectionError(f"The {what} is empty: select the subject (roughly is fine) and "
                               "refine again, or pick another trimap source.")
    selected = imaging.count_above(mask, 127)  # at least half selected
    if selected < min(MIN_SELECTED_PX, 0.01 * mask.width() * mask.height()):
        raise NoSelectionError(f"The {what} covers only {selected} px (at least half selected): too "
                               "small to refine. Select the whole subject (roughly is fine) and "
                               "refine again.")
