"""DiffMatte matting engine (Refine Matte).

>>> import diffmatte
>>> engine = diffmatte.load_engine(weights="default", device="auto")
>>> alpha = engine.refine(image, trimap, steps=10)

Importing this package is cheap: torch is only imported when an engine is loaded.
"""
from __future__ import annotations

from typing import Any

from .errors import Cancelled, DefaultWeightsMissing, WeightsError

__version__ = "0.1.0"
#: Raised whenever the same inputs and settings give a different matte (a new trimap rule,
#: a second solve, a changed prior): batch runs fingerprint their outputs with it, so a
#: rerun after an update redoes what the new engine would do differently. 2: rough masks'
#: bands are widened where the first matte shows the cut (trimap/widen.py); 3: the prior's
#: K-to-U flow trusts colours no known pixel has less (prior/flows.py ``explained``); 4: the
#: prior's neighbour searches by pykdtree (equally near neighbours can come in another order:
#: up to 5e-3 on a few pixels, the dev photos' SAD unchanged) and its CG in float32; 5: a
#: band solved in windows (over 600k unknown pixels) gives its windows 32 px of context
#: instead of 64 and stops their CG at a relative residual of 1e-4 (prior/windows.py); 6: a
#: rough selection's enclosed holes unlike the background around the subject stay in it
#: (trimap/holes.py); 7: a rough selection's background-like colours unlike the background
#: next to the subject are not made unknown (trimap/holes.py); 8: the default model's matte
#: is information flow's alpha stretched by 1 / 0.97 and clipped (its white point, prior/white_point.py);
#: 9: the prior's colour-mixture and intra-U searches in float32 (a neighbour a rounding away:
#: up to 5e-3 on a few pixels, the dev photos' SAD unchanged), and a rough selection's
#: segmentation banded inside where its edge wiggles (trimap/band.py ``rough_inside``);
#: 10: a box's sure backdrop far inside its unknown zones is background (trimap/sure_background.py).
#: The default model's test reference records it: ``tests/make_reference.py default`` refuses
#: a reference whose mattes moved until this is raised.
RESULTS_REVISION = 10

_LAZY = {
    "load_engine": ("engine", "load_engine"),
    "Engine": ("engine", "Engine"),
    "StepInfo": ("engine", "StepInfo"),
    "read_image": ("io.images", "read_image"),
    "read_trimap": ("io.images", "read_trimap"),
    "write_alpha": ("io.images", "write_alpha"),
    "write_rgba": ("io.images", "write_rgba"),
    "get_config": ("modeling.variants", "get_config"),
    "list_variants": ("modeling.variants", "list_variants"),
}

__all__ = ["Cancelled", "DefaultWeightsMissing", "RESULTS_REVISION", "WeightsError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'diffmatte' has no attribute {name!r}")
