"""Progress of a prior's solve: ``check(fraction done)`` callbacks, shares of them for the
parts of the work, and the relay that passes on the progress of worker threads."""
from __future__ import annotations

from typing import Callable, Tuple

#: ``check(fraction done)``: the solve's progress callback (it may raise to cancel).
Progress = Callable[[float], None]


def ignore(fraction: float) -> None:
    """A progress callback that does nothing."""


def span(check: Progress, lo: float, hi: float) -> Progress:
    """``check`` seen by a part of the work that takes the share ``lo``..``hi`` of it: the
    part reports its own fraction 0..1."""
    return lambda f: check(lo + (hi - lo) * min(max(float(f), 0.0), 1.0))


def monotone(check: Progress) -> Progress:
    """``check`` that never sees a fraction below one it saw already (CG's residual is
    not monotone, and parts of the work are estimated)."""
    shown = [0.0]

    def report(f: float) -> None:
        shown[0] = max(shown[0], min(1.0, float(f)))
        check(shown[0])
    return report


class Stopped(Exception):
    """Ends a worker's stage after the solve it belongs to was cancelled or failed."""


class Relay:
    """Progress of stages running in worker threads, replayed by the thread that reports it.

    Workers append ``(stage, fraction)``; :meth:`replay` passes every new event on, in
    order, as the weighted sum of the stages' latest fractions (so the steps stay small
    even when the workers finish between two looks)."""

    def __init__(self, weights: Tuple[float, ...], start: float, check: Progress) -> None:
        self.weights, self.start, self.check = weights, start, check
        self.events: list = []
        self.latest = [0.0] * len(weights)
        self.seen = 0
        self.stopped = False

    def stage(self, index: int) -> Progress:
        """Stage ``index``'s progress callback, for its worker thread: it records, and once
        :meth:`stop` was called it raises :class:`Stopped`, so that the worker ends at its
        next report instead of running to its end after the solve was cancelled."""
        def record(fraction: float) -> None:
            if self.stopped:
                raise Stopped("the solve stopped")
            self.events.append((index, float(fraction)))  # list.append is atomic
        return record

    def stop(self) -> None:
        self.stopped = True

    def replay(self) -> None:
        """Pass the new events on; with none new, the current share again (``check`` also
        looks for cancel, which must not wait for a worker's silent stretch to end)."""
        share = lambda: self.start + sum(w * f for w, f in zip(self.weights, self.latest))  # noqa: E731
        if self.seen == len(self.events):
            self.check(share())
        while self.seen < len(self.events):
            index, fraction = self.events[self.seen]
            self.seen += 1
            self.latest[index] = max(self.latest[index], fraction)
            self.check(share())
