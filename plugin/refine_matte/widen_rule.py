"""Which refines ask the engine to widen the band (``Engine.refine(widen_band=True)``): one rule
for every front end that makes its own trimaps: the docker and the editor (worker.py),
``diffmatte refine --mask`` and ``diffmatte batch --masks``. Stdlib only: it ships in the Krita
bundle, and diffmatte imports it as it does progress_text (pyproject's import contracts). The
service only passes on what its client asks for (the refine's ``widen_band``)."""

from typing import Optional

#: how a selection or mask was read (the service's ``X-Trimap-Edge``, the second value of
#: ``trimap.from_selection``): the one reading whose band sits on a segmentation of the
#: region, not on the subject's edge ("exact": the outline; "sam-box": SAM read a rectangle)
ROUGH = "rough"


def widens(source: str, edge: Optional[str]) -> bool:
    """Whether the refine of a trimap made from ``source`` ("scribbles", "selection", "mask",
    "sam", "trimap") asks the engine to widen the band: only a trimap from rough input, whose
    band may have missed the edge: strokes (``trimap.from_region``) and a selection or mask
    read with a rough edge (``edge``; "auto" as it was decided). SAM, an exact edge or a given
    trimap: no."""
    if source == "scribbles":
        return True
    return source in ("selection", "mask") and edge == ROUGH
