"""Words for a refine's progress (stdlib only): "Solving the matte… 42 % (about 12 s left)".

The docker names the work under way (:data:`PREPARING`, :data:`TRIMAP`, :data:`SOLVING`)
with the per cent its bar shows (:func:`stage_text`): one number for the whole refine,
not the stage's own (the text said "Solving… 0 %" under a bar at 10 %).

A prior-only model (the shipped default: its matte is the information-flow prior, no
diffusion runs) reports the solve's fraction done, not steps; the time left is estimated
from the rate since the first report, so an upload or a wait in the queue before the
solve does not count (issue #23). ``diffmatte/cli.py`` prints its line with these
(the one implementation; stdlib only, which an import contract keeps, so the engine's
CLI may import it).
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional

PREPARING = "Preparing the image…"
TRIMAP = "Building the trimap…"
SOLVING = "Solving the matte…"
MIN_PROGRESS = 0.01   # fraction gained since the first report before the time left is guessed
MIN_SECONDS = 0.5     # and seconds passed


def time_left(seconds: float) -> str:
    """"12 s", "1 min 30 s" (10-s steps), "14 min": rounded up, coarser as it grows."""
    s = max(0, math.ceil(seconds))
    if s < 60:
        return f"{s} s"
    if s < 600:
        s = 10 * math.ceil(s / 10)
        return f"{s // 60} min" + (f" {s % 60} s" if s % 60 else "")
    return f"{math.ceil(s / 60)} min"


def stage_text(stage: str, fraction: float, left: Optional[float] = None) -> str:
    """``stage`` with the per cent done after its "…" ("Building the trimap… 42 %"), and
    " (about 12 s left)" when ``left`` (seconds) is known; a note after the "…" follows
    ("Connecting to the engine… 21 % (the first time ...)")."""
    pct = int(100 * min(max(fraction, 0.0), 1.0))
    head, dots, note = stage.partition("…")
    return (f"{head}{dots} {pct} %" + (f" (about {time_left(left)} left)" if left is not None else "")
            + note)


def solving_text(fraction: float, left: Optional[float] = None) -> str:
    """"Solving the matte… 42 %", with " (about 12 s left)" when ``left`` (seconds) is known."""
    return stage_text(SOLVING, fraction, left)


class Estimate:
    """Seconds left of a piece of work from the fractions it reports: the rate since the
    first report, applied to what is left."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start: Optional[tuple] = None   # (time, fraction) of the first report

    def update(self, fraction: float) -> Optional[float]:
        """Record ``fraction`` done now; seconds left, or None while too little is known."""
        now = self._clock()
        if self._start is None:
            self._start = (now, fraction)
            return None
        t0, f0 = self._start
        gained, spent = fraction - f0, now - t0
        if gained < MIN_PROGRESS or spent < MIN_SECONDS:
            return None
        return spent * (1.0 - fraction) / gained

    def text(self, fraction: float) -> str:
        """:func:`solving_text` of ``fraction`` with this estimate's time left."""
        return solving_text(fraction, self.update(fraction))
