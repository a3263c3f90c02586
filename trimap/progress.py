"""Progress of a trimap computation, for whoever listens (the service streams it to the
docker: a 24 MP trimap from a rough selection takes 15 s or more, issue #23).

The stages call :func:`report` with the fraction of their own work done and run their parts
inside :func:`part`; a caller listens with :func:`reporting`. Nobody listening costs a
context-variable read. The shares are the parts' measured cost at 24 MP (a cProfile of
``from_selection`` on a 6000 x 4000 photo), so the fraction follows the time spent.

    with reporting(lambda f: print(f"{100 * f:.0f} %")):
        tri, edge = from_selection(mask, image, edge="rough")

The listener may raise (to cancel): the exception leaves the trimap function.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, List, Optional, Tuple

#: ``check(fraction done)``, 0..1 of the whole computation, never lower than before
Check = Callable[[float], None]

# (listener's state, lo, hi): the span of the whole that the running part covers
_SPAN: ContextVar[Optional[Tuple[List, float, float]]] = ContextVar("trimap_progress", default=None)


@contextmanager
def reporting(check: Check) -> Iterator[None]:
    """Call ``check(fraction)`` while the block runs, whenever a stage reports; the fractions
    never go down (a stage skipped jumps ahead)."""
    token = _SPAN.set(([check, 0.0], 0.0, 1.0))
    try:
        yield
    finally:
        _SPAN.reset(token)


def report(fraction: float) -> None:
    """The running part has done ``fraction`` (0..1) of its own work."""
    span = _SPAN.get()
    if span is None:
        return
    state, lo, hi = span
    value = lo + (hi - lo) * min(max(float(fraction), 0.0), 1.0)
    if value > state[1]:
        state[1] = value
        state[0](value)


@contextmanager
def part(lo: float, hi: float) -> Iterator[None]:
    """Run a part that takes the share ``lo``..``hi`` of the running part's work: its own
    :func:`report` calls say 0..1 of that share; leaving it reports ``hi``."""
    span = _SPAN.get()
    if span is None:
        yield
        return
    state, a, b = span
    token = _SPAN.set((state, a + (b - a) * lo, a + (b - a) * hi))
    try:
        yield
    finally:
        _SPAN.reset(token)
    report(hi)
