"""Trimap generation for Refine Matte: from masks, scribbles and SAM prompts.

Pure functions over numpy arrays (no Qt). Importing this package is cheap: torch
and segment-anything are imported only when a :class:`SamPrompter` is built.

    trimap.from_mask(mask, band=None, adaptive=True)            -> H x W uint8
    trimap.from_scribbles(image, fg, bg, unknown=None, band=None) -> H x W uint8
    trimap.from_selection(mask, image, edge="auto")               -> (H x W uint8, "rough" | "exact")
    trimap.from_region(image, region=None, fg=None, bg=None)      -> H x W uint8 (rough input)
    trimap.SamPrompter(checkpoint).trimap(image, points=..., labels=..., box=...)
    trimap.box_of(mask)                                           -> (x0, y0, x1, y1) | None
    trimap.read_selection(mask, image, edge="auto", sam_box=None) -> (H x W uint8, "rough" | "exact" | "sam-box")

Trimaps hold 0 (background), 128 (unknown) and 255 (foreground).
"""
from ._validate import BG, FG, MAX_BAND, UNKNOWN, check_band
from .band import default_band, from_mask, shift_edge
from .box import box_of
from .sam import SamPrompter, find_checkpoint
from .scribbles import from_scribbles, strokes_to_mask
from .rough import RoughInputWarning, from_region, from_selection, segment
from .selection import installed_sam_box, installed_sam_id, read_selection
from .transparency import mark_unknown, transparency_widen
from .widen import widen_cut_band

__all__ = [
    "BG",
    "RoughInputWarning",
    "FG",
    "MAX_BAND",
    "UNKNOWN",
    "SamPrompter",
    "box_of",
    "check_band",
    "default_band",
    "find_checkpoint",
    "from_mask",
    "from_region",
    "from_selection",
    "from_scribbles",
    "installed_sam_box",
    "installed_sam_id",
    "mark_unknown",
    "read_selection",
    "segment",
    "shift_edge",
    "strokes_to_mask",
    "transparency_widen",
    "widen_cut_band",
]
