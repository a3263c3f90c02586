"""The editor's scribble workflow on real photos: strokes until the matte is good (issue #27).

    QT_QPA_PLATFORM=offscreen python tests/hosts/editor_strokes.py DATA OUTDIR [--photos GT04 GT01]

``DATA`` is an alphamatting-style folder (``input/``, ``gt/``, ``trimap2/``, e.g.
``../shared/data/dev/alphamatting-real``); without it the script says so and exits 0
(nothing is copied from it into the repository). For each photo it drives the real
editor window (``EditorWindow``, offscreen Qt) against a real ``diffmatte serve`` with the
bundled default model on the CPU, started for this run in a temporary config folder:

1. the engine's matte from the dataset's ``trimap2`` (the same service) gives the target:
   whole-image SAD within ``max(1.5 x, + 2.0)`` of that matte's, as ``bench/rough_bench.py``
   counts strokes;
2. the simulated artist of the bench (``trimap.simulate.first_strokes``, then
   ``corrective_stroke`` where the matte is most wrong; the same seeds, so the first
   strokes are the bench's) paints with the *Scribbles* source: each stroke is a mouse
   drag on the canvas (press, moves every ~3 image px, release) with the F / B brush at
   12 px (the bench's 6 px radius);
3. *Preview band* is pressed once, when both kinds of stroke exist; the live preview stays
   on across refines, so each corrective stroke brings the band preview back and updates it; after every stroke the window is saved as
   ``OUTDIR/<photo>_stroke<N>.png`` once the band preview has caught up (the Trimap view:
   the trimap over the dimmed photo, mid grey = the unknown band, with the strokes on top);
4. *Refine Matte* is clicked, and when the job ends the layer's mask (what the editor holds
   and would save) is compared with the ground truth (``trimap.evaluate.sad``); the
   matte is saved as ``OUTDIR/<photo>_matte<N>.png`` (the Alpha view).

One line per stroke (kind, SAD, seconds for the band preview and for the refine), then the
count per photo (``>N``: not reached within ``--max-strokes``). ``run()`` returns the counts
(the slow test in tests/refine_matte/editor/test_editor_strokes.py asserts GT04's).
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
for _p in (str(ROOT), str(ROOT / "plugin")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402

#: the bench's stroke radius (bench/rough_bench.py STROKE_RADIUS = 6) as the editor's diameter
BRUSH = 12
#: window size of the screenshots
WINDOW = (1280, 900)


def data_ready(data: Path) -> bool:
    return all((data / sub).is_dir() for sub in ("input", "gt", "trimap2"))


def _grey01(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im.convert("L"), np.float32)
    return a / 255.0


def _png_bytes(path: Path) -> bytes:
    return path.read_bytes()


def _alpha_from_png(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        a = np.asarray(im).astype(np.float32)
    return a / (65535.0 if a.max() > 255 else 255.0)


def _pump(seconds: float = 0.0) -> None:
    from refine_matte.qt import QtWidgets

    app = QtWidgets.QApplication.instance()
    end = time.monotonic() + seconds
    while True:
        app.processEvents()
        if time.monotonic() >= end:
            return
        time.sleep(0.005)


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        _pump(0.01)
    _pump()


def mask_array(win: Any) -> Optional[np.ndarray]:
    """The active layer's Refine Matte mask (what the editor holds and saves) in 0..1."""
    from refine_matte.editor import io as edio

    node = win.document.active_layer().mask()
    if node is None:
        return None
    a = edio.qimage_to_array(node.image, 1)
    return a.astype(np.float32) / (65535.0 if a.dtype == np.uint16 else 255.0)


def drag(canvas: Any, points: Sequence[Tuple[float, float]], step: float = 3.0) -> None:
    """A left-button drag along ``points`` (image px) as mouse events on the canvas."""
    from refine_matte.qt import API, QtCore

    QTest = importlib.import_module(API + ".QtTest").QTest
    Qt = QtCore.Qt
    dense: List[Tuple[float, float]] = [tuple(points[0])]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        n = max(1, int(math.ceil(math.hypot(x1 - x0, y1 - y0) / step)))
        dense += [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(1, n + 1)]
    wp = [canvas.to_widget(QtCore.QPointF(x, y)).toPoint() for x, y in dense]
    none = Qt.KeyboardModifier.NoModifier
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, none, wp[0])
    for pt in wp[1:]:
        QTest.mouseMove(canvas, pt)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, none, wp[-1])
    _pump()


class Session:
    """One editor window on one photo, with the helpers the artist's steps need."""

    def __init__(self, client: Any, photo: Path, workdir: Path) -> None:
        from refine_matte.editor.app import EditorWindow
        from refine_matte.qt import QtCore

        settings = QtCore.QSettings(str(workdir / "editor.ini"), QtCore.QSettings.Format.IniFormat)
        self.win = EditorWindow(client=client, settings=settings)
        self.win.resize(*WINDOW)
        self.win.show()
        self.win.open_path(str(photo))
        _pump(0.1)
        self.panel, self.canvas = self.win.panel, self.win.canvas
        self.panel.set_source("scribbles")
        self.canvas.fit()
        self.canvas.set_brush_size(BRUSH)
        self.previews = 0
        self.panel.jobStarted.connect(self._on_job)

    def _on_job(self) -> None:
        spec = self.panel.state.job_spec
        if spec is not None and getattr(spec, "trimap_only", False):
            self.previews += 1

    def idle(self) -> bool:
        return self.panel.job is None and not self.panel.state.band_pending

    def stroke(self, kind: str, points: Sequence[Tuple[float, float]]) -> None:
        self.panel.set_tool(kind)
        before = len(self.canvas.strokes)
        drag(self.canvas, points)
        if len(self.canvas.strokes) != before + 1 or self.canvas.strokes[-1].kind != kind:
            raise RuntimeError(f"the {kind} stroke did not land on the canvas")

    def press_preview(self, timeout: float = 120.0) -> float:
        """Click *Preview band* and wait for the trimap; seconds."""
        from refine_matte.qt import QtCore
        from refine_matte.qt import API

        QTest = importlib.import_module(API + ".QtTest").QTest
        t0 = time.perf_counter()
        n = self.previews
        QTest.mouseClick(self.panel.preview_band_button, QtCore.Qt.MouseButton.LeftButton)
        _wait(lambda: self.previews > n and self.idle(), timeout, "the band preview")
        self._check_error()
        return time.perf_counter() - t0

    def wait_live_preview(self, before: int, timeout: float = 120.0) -> float:
        """After a stroke with the live preview on: wait until it has been recomputed."""
        t0 = time.perf_counter()
        _wait(lambda: self.previews > before and self.idle(), timeout, "the live band preview")
        self._check_error()
        return time.perf_counter() - t0

    def refine(self, timeout: float = 600.0) -> float:
        from refine_matte.qt import API, QtCore

        QTest = importlib.import_module(API + ".QtTest").QTest
        outcome: List[str] = []
        self.panel.jobFinished.connect(outcome.append)
        t0 = time.perf_counter()
        QTest.mouseClick(self.panel.refine_button, QtCore.Qt.MouseButton.LeftButton)
        try:
            _wait(lambda: bool(outcome), timeout, "the refine")
        finally:
            self.panel.jobFinished.disconnect(outcome.append)
        if outcome != ["done"]:
            raise RuntimeError(f"the refine ended {outcome}: {self.panel.error_text()}")
        return time.perf_counter() - t0

    def _check_error(self) -> None:
        if self.panel.error_text():
            raise RuntimeError(self.panel.error_text())

    def grab(self, path: Path) -> None:
        _pump(0.05)
        if not self.win.grab().save(str(path)):
            raise OSError(f"could not write {path}")

    def close(self) -> None:
        self.win.close()
        _pump()


def count_strokes(client: Any, data: Path, name: str, index: int, outdir: Path, workdir: Path,
                  seed: int = 0, max_strokes: int = 20, log=print) -> Dict[str, Any]:
    """Strokes until the editor's matte of ``name`` is within the target; a dict with
    ``count`` (max_strokes + 1 if never), ``target``, ``t2``, ``sads``, ``shots``."""
    from refine_matte.qt import QtWidgets
    from trimap import simulate
    from trimap.evaluate import sad

    photo = data / "input" / f"{name}.png"
    alpha = _grey01(data / "gt" / f"{name}.png")
    t0 = time.perf_counter()
    t2_matte = _alpha_from_png(client.refine(_png_bytes(photo), _png_bytes(data / "trimap2" / f"{name}.png"),
                                             steps=1, preview=False))
    t2 = sad(t2_matte, alpha)
    target = max(1.5 * t2, t2 + 2.0)
    log(f"{name}: trimap2 matte SAD {t2:.2f} ({time.perf_counter() - t0:.1f} s), target {target:.2f}")
    rng = np.random.default_rng([seed, index])  # bench/rough_bench.py --inputs strokes: the same hand
    fg_stroke, bg_stroke = simulate.first_strokes(alpha, rng)
    ed = Session(client, photo, workdir)
    result: Dict[str, Any] = {"name": name, "t2": t2, "target": target, "sads": [], "shots": [],
                              "count": max_strokes + 1}
    try:
        ed.stroke("fg", fg_stroke)
        shot = outdir / f"{name}_stroke1.png"
        ed.grab(shot)  # one stroke: no band yet (it needs both kinds)
        result["shots"].append(shot)
        log(f"{name} stroke  1 fg  (no band preview before a background stroke)  shot {shot.name}")
        ed.stroke("bg", bg_stroke)
        pending: Tuple[str, float] = ("bg", ed.press_preview())
        n = 2
        while True:
            kind, t_band = pending
            ed.canvas.set_view_mode("trimap")
            shot = outdir / f"{name}_stroke{n}.png"
            ed.grab(shot)
            result["shots"].append(shot)
            shown = ed.canvas.trimap().copy()  # the band preview on the screen
            t_ref = ed.refine()
            if ed.canvas.trimap() != shown:  # the preview must be what the engine got
                raise RuntimeError(f"stroke {n}: the refine's trimap is not the band preview's")
            matte = mask_array(ed.win)
            if matte is None:
                raise RuntimeError("the refine left no mask on the layer")
            err = sad(matte, alpha)
            result["sads"].append(err)
            ed.canvas.set_view_mode("alpha")
            ed.grab(outdir / f"{name}_matte{n}.png")
            log(f"{name} stroke {n:2d} {kind:2s}  SAD {err:7.2f}  (target {target:.2f})  band preview "
                f"{t_band:5.1f} s  refine {t_ref:5.1f} s  shot {shot.name}")
            if err <= target:
                result["count"] = n
                break
            if n >= max_strokes:
                break
            fix = simulate.corrective_stroke(alpha, matte, rng)
            if fix is None:
                log(f"{name}: the simulated artist finds no mistake to paint over")
                break
            before = ed.previews  # the live preview stays on: the stroke shows the band again
            ed.stroke(fix[0], fix[1])
            pending = (fix[0], ed.wait_live_preview(before))
            n += 1
    finally:
        ed.close()
        QtWidgets.QApplication.instance().processEvents()
    shown = str(result["count"]) if result["count"] <= max_strokes else f">{max_strokes}"
    log(f"{name}: {shown} strokes (SAD after each refine: {' '.join(f'{s:.2f}' for s in result['sads'])}; "
        f"trimap2 matte {t2:.2f})")
    return result


def start_service(config: str, threads: int) -> Any:
    from refine_matte.client import EngineClient

    return EngineClient.ensure_running(
        python=sys.executable, config=config, timeout=300,
        args=["--weights", "default", "--device", "cpu", "--port", "0", "--threads", str(threads)])


def stop_service(client: Any) -> None:
    try:
        client.shutdown()
    finally:
        proc = getattr(client, "process", None)
        if proc is not None:
            try:
                proc.wait(timeout=30)
            except Exception:  # noqa: BLE001 - never leave it running
                proc.kill()


def run(data: Path, outdir: Path, photos: Sequence[str] = ("GT04",), seed: int = 0,
        max_strokes: int = 20, threads: int = 2, log=print) -> Dict[str, int]:
    """Counts per photo (max_strokes + 1: not reached)."""
    from refine_matte.qt import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    outdir.mkdir(parents=True, exist_ok=True)
    names = sorted(p.stem for p in (data / "gt").glob("*.png"))  # the bench's photo index -> seed
    counts: Dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="editor-strokes-") as tmp:
        work = Path(tmp)
        os.environ["REFINE_MATTE_CONFIG_DIR"] = str(work / "config")
        client = start_service(str(work / "config"), threads)
        try:
            for name in photos:
                if name not in names:
                    raise SystemExit(f"{name} is not in {data / 'gt'}")
                res = count_strokes(client, data, name, names.index(name), outdir, work, seed=seed,
                                    max_strokes=max_strokes, log=log)
                counts[name] = res["count"]
        finally:
            stop_service(client)
    shown = ", ".join(f"{k} {v if v <= max_strokes else '>' + str(max_strokes)}" for k, v in counts.items())
    log(f"strokes per photo: {shown}")
    del app
    return counts


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="folder with input/, gt/ and trimap2/ (alphamatting-real)")
    ap.add_argument("outdir", type=Path, help="where the screenshots go")
    ap.add_argument("--photos", nargs="+", default=["GT04"])
    ap.add_argument("--seed", type=int, default=0, help="seed of the simulated hand (the bench's --seed)")
    ap.add_argument("--max-strokes", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2, help="the service's CPU threads")
    args = ap.parse_args(argv)
    if not data_ready(args.data):
        print(f"skipped: {args.data} has no input/, gt/ and trimap2/ (the dev photos are not here)")
        return 0
    run(args.data, args.outdir, args.photos, args.seed, args.max_strokes, args.threads,
        log=lambda s: print(s, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
