"""A refine's steps as front ends see them (:class:`StepInfo`), and the widened refine of a
rough trimap: solve, grow the band where the first matte shows it cut through partial alpha
(``trimap.widen``), solve again, with the progress of both passes on one bar."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..errors import Cancelled, InputError

#: a prior-only refine's progress unit (ten-thousandths): a 24 MP solve's slow first stages
#: (seconds, 0.25 % of it) still move the bars (#23); the service sends <= 4 work events a second
PRIOR_UNITS = 10000


@dataclass
class StepInfo:
    """Progress of one DDIM step, passed to ``refine(callback=...)``."""

    index: int           # 1-based step number
    total: int
    t: float             # time at which x0 was predicted (1 = pure noise)
    x0: np.ndarray       # current x0 prediction as alpha, H x W float32 in [0, 1]


StepCallback = Callable[[StepInfo], None]
Progress = Callable[[int, int], None]
#: one solve of a trimap: ``solve(trimap, callback, progress) -> alpha``
Solve = Callable[[np.ndarray, Optional[StepCallback], Optional[Progress]], np.ndarray]


def widen_radius(shape: tuple, band: Optional[float]) -> float:
    """How far (pixels) the widening pass grows the band: the radius the trimap was made with
    when the caller knows it (the user's band option), else the image's default band, which
    is what a trimap made without a band option used (``trimap.default_band``)."""
    from trimap import check_band, default_band

    if band is None:
        return default_band(shape)
    try:
        return check_band(band)   # the trimap's own rule for a band
    except ValueError as exc:
        raise InputError(str(exc)) from None


def refine_widened(solve: Solve, tri: np.ndarray, band: Optional[float], total_steps: int,
                   callback: Optional[StepCallback], progress: Optional[Progress],
                   cancel: Optional[threading.Event]) -> np.ndarray:
    """``Engine.refine(widen_band=True)``: the matte of ``tri`` (float trimap 0 / 0.5 / 1), solved
    once more where the first matte shows the band cut through partial alpha. ``band``: the
    radius the trimap was made with (None: the image's default, :func:`widen_radius`);
    ``total_steps``: one pass's steps x samples (the callback counts over both passes)."""
    from trimap.widen import widen_cut_band

    radius = widen_radius(tri.shape, band)
    alpha = solve(tri, pass_steps(callback, 0), pass_progress(progress, 0))
    grow = widen_cut_band(tri == 1, tri == 0, alpha, radius)
    if not grow.any():
        # one pass was enough: the bars end where two passes would have
        if progress is not None:
            progress(PRIOR_UNITS, PRIOR_UNITS)
        if callback is not None:
            callback(StepInfo(index=2 * total_steps, total=2 * total_steps, t=0.0, x0=alpha.copy()))
        return alpha
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
    wider = tri.copy()
    wider[grow] = 0.5
    return solve(wider, pass_steps(callback, 1), pass_progress(progress, 1))


def pass_steps(callback: Optional[StepCallback], index: int, passes: int = 2) -> Optional[StepCallback]:
    """``callback`` for pass ``index`` of ``passes``: the step numbers run on across the passes
    (1..2N for two passes of N steps) instead of starting again at 1."""
    if callback is None:
        return None

    def report(info: StepInfo) -> None:
        callback(StepInfo(index=index * info.total + info.index, total=passes * info.total, t=info.t, x0=info.x0))

    return report


def pass_progress(progress: Optional[Progress], index: int, passes: int = 2) -> Optional[Progress]:
    """``progress`` for pass ``index`` of ``passes``: each pass fills its share of one bar,
    so the second solve of a widened band does not send the bar back to zero."""
    if progress is None:
        return None

    def report(done: int, total: int) -> None:
        total = max(int(total), 1)
        progress(index * total + min(int(done), total), passes * total)

    return report
