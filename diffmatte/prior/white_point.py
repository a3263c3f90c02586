"""The white point of the default model's matte: information flow's alpha stops a few percent
short of 1 inside a solid subject, so the matte of a prior-only model stretches it (numpy only,
so that the command line checks ``--white-point`` before torch is imported)."""
from __future__ import annotations

import numpy as np

#: information flow's white point: its alpha inside a solid subject stops a few percent short
#: of 1 (a grey veil the cut-out shows over a dark backdrop), so the matte of a prior-only
#: model is the prior divided by this, clipped at 1. 0.97 rather than 0.95: the same gain on
#: rough selections, and less lost where the band holds only partial alpha (glass; the
#: Composition-1k crops), docs/MODEL_CARD.md "Session 15 ... the white point"
WHITE_POINT = 0.97


def prior_matte(kind: str, prior: np.ndarray, white_point: float = WHITE_POINT) -> np.ndarray:
    """The matte (H, W) float32 of a model whose matte is its ``kind`` prior (its correction
    layers all zero): information flow's alpha with its white point moved to
    ``white_point`` (partial alpha stretched by 1/white_point, the rest opaque; 1.0 keeps
    the prior as it is, for glass); other priors as they are."""
    alpha = np.asarray(prior, np.float32)
    if kind != "ifm" or white_point >= 1.0:
        return alpha.copy()
    return np.minimum(alpha * np.float32(1.0 / white_point), np.float32(1.0))


def check_white_point(value: float, name: str = "white_point") -> float:
    """``value`` as a float if it is a white point the matte can take (0.5 to 1), else a
    ValueError naming it as ``name`` (the argument or option the user gave)."""
    try:
        wp = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number between 0.5 and 1, got {value!r}") from None
    if not 0.5 <= wp <= 1.0:
        raise ValueError(f"{name} must be between 0.5 and 1 (1 keeps the prior's own alpha), got {value!r}")
    return wp
