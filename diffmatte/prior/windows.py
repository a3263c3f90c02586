"""Information flow over bands too large for one solve: a coarse solve, then full-resolution
windows.

One solve needs about 2.3 KB per unknown pixel, so a wide band of a large photo (24 MP with
30 % unknown: 7 million pixels) cannot be solved at once within a few GB. Here:

1. **Coarse solve.** The whole band is solved once at a reduced resolution (at most
   ``COARSE_UNKNOWN`` unknown pixels): it carries information across the band, which a
   window deep inside a wide band could not get from its own known pixels.
2. **Windows.** The crop is cut into ``core`` x ``core`` cores; every core whose blend
   rectangle holds unknown pixels is solved at full resolution on its window (the core
   grown by ``margin``), with the window's rim pinned to the coarse alpha and CG started
   from it. Positions are normalised by the whole crop's size, as in one whole solve; the
   K-to-U flow draws from the known pixels within SAMPLE_REACH px of the window (further
   where a side has none), the colour-mixture and intra-U neighbours from the window.
3. **Stitching.** Windows cross-fade over ``BLEND`` px with the engine's tile weights
   (box-blurred core indicators: they sum to one, no seams; ``diffmatte.util.ramp``).

Memory is PARALLEL_WINDOWS windows' solves (each at most (core + 2 margin)^2 unknown
pixels) plus a few whole-crop maps; time follows the number of unknown pixels.
"""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, List, Optional, Tuple

import numpy as np

from . import information_flow as ifm
from .flows import KnownSamples
from .cg import TorchCG
from .progress import monotone, span
from ..util import ramp

TILE_CORE = 512          # px; window = core + 2 x TILE_MARGIN, <= 332k unknown pixels (~0.76 GB)
# Context around each core. 32 px rather than 64 (issue #23): a 24 MP photo with a 30 % band
# 284 -> 242 s wall and SAD 563.8 -> 531.5 (this change alone; with WINDOW_RTOL below 269 ->
# 207 s in a later sitting); the 1 MP windows-forced agreement with one solve stays within 1 %
# of its SAD (docs/TILING.md, "The default model: the prior at any size").
TILE_MARGIN = 32
# CG's stop rule in the windows (one solve keeps information_flow.RTOL = 1e-5): a window's
# alpha already differs from one whole solve's by about 2e-2 on average (its rim is pinned to
# the coarse alpha), so the last decade of residual bought nothing: on a 6 MP copy of GT04
# with a 30 % band, 1e-4 gave SAD 120.39 against 120.42 and the same mean difference from
# the whole solve (1.81e-2), in fewer iterations.
WINDOW_RTOL = 1e-4
SAMPLE_REACH = 256       # px around a window whose known pixels feed its K-to-U flow
# Approximate K-to-U search in windows: pixels deep in a wide band are far from every known
# pixel, and an exact search then visits most of them (24 MP, 30 %: 25 s per 20k queries);
# eps = 1 took 0.1 s and returned neighbours 1.7 % farther on average.
SAMPLE_EPS = 1.0
BLEND = 16               # cross-fade half-width between neighbouring cores
RIM = 2                  # window rim pinned to the coarse alpha (the local flow's 3 x 3 reach)
COARSE_UNKNOWN = 150_000  # the coarse solve's size
# Windows solved at once (threads). Two: 1.5x faster on this 2-core machine (a 1500 x 2000
# portrait, 30 % unknown: 81.9 -> 55.0 s wall), at twice one window's memory. With more than
# one, each window's own stages run in one thread (information_flow.STAGE_THREADS is for a
# solve that runs alone): two windows with two-thread stages kept four or more threads busy
# on two cores (24 MP, 30 % band: 206.8 -> 193.2 s wall, 403 -> 372 s CPU; three windows
# 195.4 s; docs/TILING.md).
PARALLEL_WINDOWS = 2

Rect = Tuple[int, int, int, int]


def solve_tiled(image: np.ndarray, label: np.ndarray, check: Callable[[float], None],
                core: Optional[int] = None, margin: Optional[int] = None,
                torch_cg: Optional[TorchCG] = None) -> np.ndarray:
    """Alpha (h, w) float32 of a crop with labels -1 / 0 / 1 (not yet expanded), solved as
    a coarse solve plus full-resolution windows of ``core`` px (default TILE_CORE) grown by
    ``margin`` (default TILE_MARGIN);
    ``check(fraction)`` and ``torch_cg`` as in ``information_flow_alpha``."""
    core = core or TILE_CORE
    margin = max(BLEND, TILE_MARGIN if margin is None else margin)  # the cross-fade needs the window
    if core < 2 * BLEND:
        raise ValueError(f"window core must be at least {2 * BLEND} px, got {core}")
    h, w = label.shape
    unk = label < 0
    cores = _active_cores(unk, core)
    wins = [_grow(c, margin, h, w) for c in cores]
    counts = [int(unk[y0:y1, x0:x1].sum()) for y0, y1, x0, x1 in wins]
    factor = int(np.ceil(np.sqrt(int(unk.sum()) / COARSE_UNKNOWN)))
    coarse_n = int(unk.sum()) / factor ** 2
    # Shares of the work: the coarse solve and the windows by their unknown pixels, the
    # known-region expansion of the whole crop 3 %.
    total = coarse_n + sum(counts)
    first = 0.97 * coarse_n / total
    report = monotone(check)   # never backwards: CG's residual is not monotone
    coarse = ifm._solve_reduced(image, label, max(factor, 1), span(report, 0.0, first), torch_cg)
    label = ifm.expand_known(image, label, check=span(report, first, first + 0.03))
    windows = span(report, first + 0.03, 1.0)
    alpha = _solve_windows(image, label, coarse, cores, wins, counts, windows, torch_cg)
    # Every unknown pixel lies in the blend rectangle of its own core and of every core whose
    # rectangle reaches it, all of them active; known pixels keep their (expanded) labels.
    alpha[label == 1] = 1.0
    alpha[label == 0] = 0.0
    return np.clip(alpha, 0, 1, out=alpha)


class _WindowProgress:
    """Workers only record (window, fraction) steps; the solving thread replays them, in
    order, into ``report`` (the windows' share of the progress, weighted by unknown pixels),
    so the progress rises in small steps even when windows finish between two looks."""

    def __init__(self, counts: List[int], report: Callable[[float], None]) -> None:
        self.counts, self.report = counts, report
        self.frac = [0.0] * len(counts)
        self.events: List[Tuple[int, float]] = []   # list.append is atomic
        self.seen = 0

    def record(self, i: int, f: float) -> None:
        self.events.append((i, f))

    def replay(self) -> None:
        """Report the recorded steps; with none new, the current share again: ``report``
        checks for cancel, which must not wait for a window's silent stretch to end."""
        total = max(sum(self.counts), 1)
        share = lambda: sum(g * n for g, n in zip(self.frac, self.counts)) / total  # noqa: E731
        if self.seen == len(self.events):
            self.report(share())
        while self.seen < len(self.events):
            i, f = self.events[self.seen]
            self.seen += 1
            self.frac[i] = max(self.frac[i], f)
            self.report(share())


def _solve_window(image: np.ndarray, label: np.ndarray, coarse: np.ndarray, win: Rect,
                  progress: Callable[[float], None], torch_cg: Optional[TorchCG] = None) -> np.ndarray:
    """One window's full-resolution solve, its rim pinned to the coarse alpha."""
    h, w = label.shape
    y0, y1, x0, x1 = win
    pinned = np.full((y1 - y0, x1 - x0), np.nan, np.float32)
    rim = _rim(win, h, w)
    pinned[rim] = coarse[y0:y1, x0:x1][rim]
    samples = _nearby_samples(image, label, win, (0, 0), (h, w), torch_cg)
    progress(0.0)   # a stop is seen after the samples' trees are built (a second at 24 MP)
    return ifm._solve(image[y0:y1, x0:x1], label[y0:y1, x0:x1], progress, pinned=pinned, scale=(h, w),
                      init=coarse[y0:y1, x0:x1], origin=(y0, x0), samples=samples, torch_cg=torch_cg,
                      rtol=WINDOW_RTOL, threads=1 if PARALLEL_WINDOWS > 1 else None)


def _blend_into(alpha: np.ndarray, a: np.ndarray, c: Rect, win: Rect) -> None:
    """Add window result ``a`` (of window ``win``) to ``alpha`` over its core ``c``'s blend
    rectangle, weighted by the cross-fade."""
    h, w = alpha.shape
    y0, _, x0, _ = win
    oy0, oy1, ox0, ox1 = _grow(c, BLEND, h, w)
    wt = (ramp(oy0, oy1, c[0], c[1], h, BLEND)[:, None]
          * ramp(ox0, ox1, c[2], c[3], w, BLEND)[None]).numpy()
    alpha[oy0:oy1, ox0:ox1] += wt * a[oy0 - y0:oy1 - y0, ox0 - x0:ox1 - x0]


def _solve_windows(image: np.ndarray, label: np.ndarray, coarse: np.ndarray, cores: List[Rect],
                   wins: List[Rect], counts: List[int], report: Callable[[float], None],
                   torch_cg: Optional[TorchCG] = None) -> np.ndarray:
    """The windows' cross-faded alpha (unknown pixels; known ones are set by the caller).

    Windows are independent: PARALLEL_WINDOWS of them run at once in threads (numpy,
    scipy and the KD-tree release the GIL). Workers only record their progress; this
    thread reports it and checks for cancel, and a stop flag ends the workers' solves.
    """
    h, w = label.shape
    stop = threading.Event()
    steps = _WindowProgress(counts, report)

    def solve_window(i: int) -> np.ndarray:
        if stop.is_set():
            raise _Stopped

        def progress(f: float) -> None:
            if stop.is_set():
                raise _Stopped
            steps.record(i, f)

        return _solve_window(image, label, coarse, wins[i], progress, torch_cg)

    # Weighted window results are summed straight into the output: the weights of the cores
    # reaching an unknown pixel sum to one (box-blurred indicators of a partition).
    alpha = np.zeros((h, w), np.float32)
    with ThreadPoolExecutor(max(1, PARALLEL_WINDOWS)) as pool:
        # largest first: the last windows to finish are small ones, so neither thread waits
        # long for the other at the end
        order = sorted(range(len(cores)), key=lambda i: -counts[i])
        pending = {pool.submit(solve_window, i): i for i in order}
        try:
            while pending:
                finished, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                steps.replay()
                for fut in finished:
                    i = pending.pop(fut)
                    a = fut.result()
                    steps.record(i, 1.0)
                    _blend_into(alpha, a, cores[i], wins[i])
                steps.replay()
        except BaseException:
            stop.set()   # the running solves raise _Stopped at their next progress call
            pool.shutdown(wait=True, cancel_futures=True)   # the queued ones never start
            raise
    return alpha


class _Stopped(Exception):
    """Ends a window's solve after another window failed or the refine was cancelled."""


def _known_samples(image: np.ndarray, label: np.ndarray, origin: Tuple[int, int] = (0, 0),
                   scale: Optional[Tuple[int, int]] = None, torch_cg: Optional[TorchCG] = None) -> "KnownSamples":
    """The known pixels of the search region (within SEARCH_MARGIN of the band) of ``image``
    (at ``origin`` in a frame of size ``scale``, default its own): the K-to-U flow's sources
    of one whole solve, shared by every window; on ``torch_cg``'s device when its ``flows``."""
    from scipy import ndimage as ndi

    h, w = scale or label.shape
    region = ndi.maximum_filter(label < 0, size=2 * ifm.SEARCH_MARGIN + 1)
    ky, kx = np.nonzero(region & (label >= 0))
    xy = np.stack([(kx + origin[1]) / w, (ky + origin[0]) / h], 1)
    dev = torch_cg if torch_cg is not None and torch_cg.flows else None
    return KnownSamples(image[ky, kx].astype(np.float64), xy, label[ky, kx], eps=SAMPLE_EPS, dev=dev)


def _nearby_samples(image: np.ndarray, label: np.ndarray, win: Rect, shift: Tuple[int, int],
                    scale: Tuple[int, int], torch_cg: Optional[TorchCG] = None) -> "KnownSamples":
    """K-to-U sources of a window: the known pixels of the search region within SAMPLE_REACH
    px of it (doubled until both fg and bg pixels are in reach). Drawing from the whole
    band instead made each query search a tree of every known pixel of the band's rims:
    about 85 of 105 s of one 640-px window at 24 MP, 30 % unknown."""
    h, w = label.shape
    reach = SAMPLE_REACH
    while True:
        y0, y1, x0, x1 = box = _grow(win, reach, h, w)
        lab = label[y0:y1, x0:x1]
        whole = box == (0, h, 0, w)
        if whole or ((lab == 1).any() and (lab == 0).any()):
            return _known_samples(image[y0:y1, x0:x1], lab, origin=(y0 + shift[0], x0 + shift[1]), scale=scale,
                                  torch_cg=torch_cg)
        reach *= 2


def _active_cores(unk: np.ndarray, core: int) -> List[Rect]:
    """Cores of a ``core``-px grid whose blend rectangle holds an unknown pixel."""
    h, w = unk.shape
    out = []
    for y0 in range(0, h, core):
        for x0 in range(0, w, core):
            c = (y0, min(h, y0 + core), x0, min(w, x0 + core))
            gy0, gy1, gx0, gx1 = _grow(c, BLEND, h, w)
            if unk[gy0:gy1, gx0:gx1].any():
                out.append(c)
    return out


def _grow(r: Rect, m: int, h: int, w: int) -> Rect:
    return max(0, r[0] - m), min(h, r[1] + m), max(0, r[2] - m), min(w, r[3] + m)


def _rim(win: Rect, h: int, w: int) -> np.ndarray:
    """Pixels of the window within RIM px of an edge that is not the crop's own edge."""
    y0, y1, x0, x1 = win
    rim = np.zeros((y1 - y0, x1 - x0), bool)
    if y0 > 0:
        rim[:RIM] = True
    if y1 < h:
        rim[-RIM:] = True
    if x0 > 0:
        rim[:, :RIM] = True
    if x1 < w:
        rim[:, -RIM:] = True
    return rim


UPDATE_REACH = 64        # px around an edit that are re-solved (an edit's influence, measured)
UPDATE_MARGIN = 64       # context around them (the incremental bench's; windows' TILE_MARGIN is less)


def update_alpha(image: np.ndarray, label: np.ndarray, previous: np.ndarray, changed: np.ndarray,
                 check: Callable[[float], None], torch_cg: Optional[TorchCG] = None) -> Optional[np.ndarray]:
    """Alpha after a local trimap edit: the pixels within UPDATE_REACH of the ``changed``
    ones are solved again (window grown by UPDATE_MARGIN, rim pinned to and CG started from
    ``previous``), cross-faded into ``previous`` over BLEND px; the rest is kept. ``label``
    is the whole image's new labels (-1 / 0 / 1). Returns None when the edit is too large
    for one window (the caller then solves from scratch)."""
    h, w = label.shape
    unk = label < 0
    if not unk.any():
        return None
    ys, xs = np.nonzero(changed)
    r = _grow((int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1), UPDATE_REACH, h, w)
    y0, y1, x0, x1 = win = _grow(r, UPDATE_MARGIN, h, w)
    n = int(unk[y0:y1, x0:x1].sum())
    if n > (TILE_CORE + 2 * UPDATE_MARGIN) ** 2 or (y1 - y0) * (x1 - x0) > h * w // 4:
        return None
    # The whole solve's frame: positions normalised by the band's bounding box.
    (by0, by1), (bx0, bx1) = ifm._bbox(unk, ifm.SEARCH_MARGIN + ifm.EXPAND_RADIUS)
    lab = ifm.expand_known(image[y0:y1, x0:x1], label[y0:y1, x0:x1])
    pinned = np.full(lab.shape, np.nan, np.float32)
    rim = _rim(win, h, w)
    pinned[rim] = previous[y0:y1, x0:x1][rim]
    samples = _nearby_samples(image, label, win, (-by0, -bx0), (by1 - by0, bx1 - bx0), torch_cg)
    a = ifm._solve(image[y0:y1, x0:x1], lab, check, pinned=pinned, scale=(by1 - by0, bx1 - bx0),
                   init=previous[y0:y1, x0:x1], origin=(y0 - by0, x0 - bx0), samples=samples,
                   torch_cg=torch_cg)
    wt = (ramp(y0, y1, r[0], r[1], h, BLEND)[:, None] * ramp(x0, x1, r[2], r[3], w, BLEND)[None]).numpy()
    out = previous.astype(np.float32, copy=True)
    out[y0:y1, x0:x1] = wt * a + (1 - wt) * out[y0:y1, x0:x1]
    out[label == 1] = 1.0
    out[label == 0] = 0.0
    return np.clip(out, 0, 1)
