"""Render the editor with the panel in every view mode to PNG screenshots.

``python tests/editor_screenshots.py OUTDIR [--service WEIGHTS]`` (a tool kept with the tests:
its default engine is the test double FakeEngineClient)

Uses a synthetic subject (no external photos), paints scribbles, refines, then
grabs the main window once per view mode.  By default the Qt-only fake engine
is used; ``--service WEIGHTS`` starts the real engine service on that model.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

from refine_matte import imaging
from refine_matte.canvas import Stroke
from refine_matte.qt import QtCore, QtGui, QtWidgets

Qt = QtCore.Qt


def make_sample_image(width: int = 480, height: int = 360, seed: int = 0) -> "QtGui.QImage":
    """A synthetic portrait-like subject with hair strands over a soft background."""
    rng = random.Random(seed)
    img = QtGui.QImage(width, height, QtGui.QImage.Format.Format_RGB32)
    p = QtGui.QPainter(img)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    grad = QtGui.QLinearGradient(0, 0, width, height)
    grad.setColorAt(0.0, QtGui.QColor(120, 170, 210))
    grad.setColorAt(1.0, QtGui.QColor(90, 140, 90))
    p.fillRect(0, 0, width, height, QtGui.QBrush(grad))
    for _ in range(40):  # background clutter so the matte has something to reject
        c = QtGui.QColor(rng.randint(60, 200), rng.randint(100, 200), rng.randint(60, 160), 90)
        p.setBrush(c)
        p.setPen(Qt.PenStyle.NoPen)
        p.drawEllipse(QtCore.QPointF(rng.uniform(0, width), rng.uniform(0, height)),
                      rng.uniform(5, 30), rng.uniform(5, 30))
    cx, cy, r = width * 0.5, height * 0.58, min(width, height) * 0.28
    body = QtGui.QRadialGradient(cx - r * 0.3, cy - r * 0.3, r * 1.4)
    body.setColorAt(0.0, QtGui.QColor(250, 190, 120))
    body.setColorAt(1.0, QtGui.QColor(170, 90, 40))
    p.setBrush(QtGui.QBrush(body))
    p.drawEllipse(QtCore.QPointF(cx, cy), r, r)
    p.drawRect(QtCore.QRectF(cx - r * 0.9, cy + r * 0.5, r * 1.8, height))
    for _ in range(260):  # fine strands: the part trimap-based matting is for
        a = rng.uniform(math.pi * 1.05, math.pi * 1.95)
        start = QtCore.QPointF(cx + math.cos(a) * r * 0.85, cy + math.sin(a) * r * 0.85)
        length = rng.uniform(0.25, 0.6) * r
        bend = rng.uniform(-0.4, 0.4)
        end = QtCore.QPointF(cx + math.cos(a + bend * 0.3) * (r + length),
                             cy + math.sin(a + bend * 0.3) * (r + length))
        ctrl = QtCore.QPointF((start.x() + end.x()) / 2 + bend * 20, (start.y() + end.y()) / 2)
        path = QtGui.QPainterPath(start)
        path.quadTo(ctrl, end)
        shade = rng.randint(60, 130)
        p.setPen(QtGui.QPen(QtGui.QColor(shade + 60, shade, 30, 200), rng.uniform(0.6, 1.6)))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(path)
    p.end()
    return img


def demo_scribbles(width: int, height: int) -> List[Stroke]:
    """Foreground strokes inside the subject, background strokes around it."""
    cx, cy, r = width * 0.5, height * 0.58, min(width, height) * 0.28
    fg = Stroke("fg", r * 0.25, [(cx - r * 0.4, cy), (cx, cy + r * 0.2), (cx + r * 0.4, cy),
                                 (cx, cy + r * 0.9)])
    bg = Stroke("bg", r * 0.2, [(width * 0.05, height * 0.9), (width * 0.06, height * 0.1),
                                (width * 0.94, height * 0.08), (width * 0.95, height * 0.9)])
    return [fg, bg]


def wait_for_job(panel: Any, timeout: float = 120.0) -> None:
    """Pump the event loop until the panel's job ends."""
    app = QtWidgets.QApplication.instance()
    deadline = time.monotonic() + timeout
    while panel.job is not None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    app.processEvents()
    if panel.job is not None:
        raise TimeoutError("the refine job did not finish in time")


def demo_selection(width: int, height: int) -> "QtGui.QImage":
    """A rough hand-made selection of the subject (head and shoulders, no strands)."""
    cx, cy, r = width * 0.5, height * 0.58, min(width, height) * 0.28
    sel = QtGui.QImage(width, height, QtGui.QImage.Format.Format_Grayscale8)
    sel.fill(0)
    p = QtGui.QPainter(sel)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QtGui.QColor(255, 255, 255))
    p.drawEllipse(QtCore.QPointF(cx, cy), r * 1.02, r * 1.02)
    p.drawRect(QtCore.QRectF(cx - r * 0.9, cy + r * 0.5, r * 1.8, height))
    p.end()
    return sel


def _grab(win: Any, outdir: str, name: str, out: Dict[str, str]) -> None:
    QtWidgets.QApplication.instance().processEvents()
    path = os.path.join(outdir, f"editor_{name}.png")
    if not win.grab().save(path):
        raise OSError(f"could not write {path}")
    out[name] = path


def capture_workflow(win: Any, outdir: str, out: Dict[str, str]) -> None:
    """Band preview over a selection, the refine brush on it, and the output controls."""
    doc = win.document
    doc.selection = demo_selection(doc.width, doc.height)
    win._update_status()
    win.panel.clear_error()
    win.canvas.clear_input()
    win.panel.set_source("selection")
    win.panel.show_input_check.setChecked(True)
    win.panel.preview_band()
    wait_for_job(win.panel)
    _grab(win, outdir, "band_preview", out)
    # Refine brush: mark a patch of clutter as background and a strand area as unknown.
    w, h = doc.width, doc.height
    win.canvas.add_stroke(Stroke("bg", 18, [(w * 0.12, h * 0.3), (w * 0.2, h * 0.22)]))
    win.canvas.add_stroke(Stroke("unknown", 26, [(w * 0.62, h * 0.22), (w * 0.72, h * 0.3)]))
    if not win.panel.refine():
        raise RuntimeError(win.panel.error_text())
    wait_for_job(win.panel)
    win.canvas.set_view_mode("overlay")
    _grab(win, outdir, "refine_brush", out)
    win.panel.show_input_check.setChecked(False)  # what the strokes did to the trimap
    win.canvas.set_view_mode("trimap")
    _grab(win, outdir, "refine_brush_trimap", out)
    # Output controls: no new refine; the cut-out views show decontaminated colours.
    controls = win.panel.output_controls
    controls.spins["smooth"].setValue(2)
    controls.spins["feather"].setValue(1.5)
    controls.spins["shift"].setValue(-1)
    win.panel.rerender_output()
    deadline = time.monotonic() + 60
    while win.canvas.cutout() is None and time.monotonic() < deadline:
        QtWidgets.QApplication.instance().processEvents()
        time.sleep(0.01)
    win.panel.show_input_check.setChecked(False)
    win.canvas.set_view_mode("white")
    _grab(win, outdir, "output_controls", out)


def capture(outdir: str, client: Any, size=(1280, 940)) -> Dict[str, str]:
    """Open the sample in a fresh editor, refine, and save one PNG per view mode
    (plus ``running``: a shot taken while the refine is in progress)."""
    from refine_matte.editor.app import EditorWindow

    os.makedirs(outdir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="refine-matte-shots-")
    sample = os.path.join(tmp, "sample.png")
    make_sample_image().save(sample)
    settings = QtCore.QSettings(os.path.join(tmp, "settings.ini"),
                                QtCore.QSettings.Format.IniFormat)
    win = EditorWindow(client=client, settings=settings)
    win.resize(*size)
    win.show()
    win.open_path(sample)
    win.panel.set_source("scribbles")
    win.panel.steps_spin.setValue(4)
    for stroke in demo_scribbles(win.document.width, win.document.height):
        win.canvas.add_stroke(stroke)
    out = {}
    running_path = os.path.join(outdir, "editor_running.png")

    def grab_running(step: int, total: int, _preview: Any) -> None:
        # One shot mid-run: progress bar, Cancel enabled, x0 preview on the canvas.
        if "running" not in out and step >= min(2, total):
            QtWidgets.QApplication.instance().processEvents()
            if win.grab().save(running_path):
                out["running"] = running_path

    win.panel.jobStarted.connect(lambda: win.panel.job.signals.progress.connect(grab_running))
    if not win.panel.refine():
        raise RuntimeError(win.panel.error_text())
    wait_for_job(win.panel)
    if win.panel.error_text():
        raise RuntimeError(win.panel.error_text())
    win.canvas.fit()
    for mode, _, _ in imaging.VIEW_MODES:
        win.canvas.set_view_mode(mode)
        # Scribbles on top of the matte views would hide what they show.
        win.panel.show_input_check.setChecked(mode == "overlay")
        QtWidgets.QApplication.instance().processEvents()
        path = os.path.join(outdir, f"editor_{mode}.png")
        if not win.grab().save(path):
            raise OSError(f"could not write {path}")
        out[mode] = path
    capture_workflow(win, outdir, out)
    win.close()
    return out


class _NoSamYet:
    """A SAM set-up with no checkpoint installed: the panel offers the download."""

    def available(self) -> bool:
        return False

    def download(self, progress, cancel) -> str:  # pragma: no cover - never clicked in shots
        raise RuntimeError("not in screenshots")


def capture_panel(outdir: str, client: Any, size=(380, 900)) -> str:
    """The panel on its own, with its own canvas, as a host plugin docker shows it
    (SAM source on a machine without its checkpoint: the download is offered)."""
    from refine_matte.panel import RefinePanel
    from refine_matte.editor.adapter import EditorAdapter
    from refine_matte.editor.document import Document, Layer

    image = make_sample_image()
    doc = Document([Layer("sample", image.convertToFormat(QtGui.QImage.Format.Format_ARGB32))])
    panel = RefinePanel(EditorAdapter(doc), client=client, sam_setup=_NoSamYet())
    panel.resize(*size)
    panel.show()
    panel.refresh()
    panel.set_tool("sam")
    w, h = image.width(), image.height()
    panel.canvas.add_sam_point(w * 0.5, h * 0.6, 1)
    panel.canvas.add_sam_point(w * 0.1, h * 0.2, 0)
    panel.canvas.set_sam_box((w * 0.18, h * 0.2, w * 0.82, h))
    QtWidgets.QApplication.instance().processEvents()
    panel.canvas.fit()
    path = os.path.join(outdir, "panel_docked.png")
    if not panel.grab().save(path):
        raise OSError(f"could not write {path}")
    panel.close()
    return path


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--service", metavar="WEIGHTS",
                        help="start the real engine service with this checkpoint")
    args = parser.parse_args(argv)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    client = None
    if args.service:
        from refine_matte.client import EngineClient
        config = tempfile.mkdtemp(prefix="refine-matte-cfg-")
        client = EngineClient.ensure_running(python=sys.executable, config=config,
                                             args=["--weights", args.service, "--device", "cpu"])
    else:
        from doubles.plugin_fakes import FakeEngineClient
        client = FakeEngineClient(step_delay=0.05)
    try:
        for mode, path in capture(args.outdir, client).items():
            print(mode, path)
        print("panel", capture_panel(args.outdir, client))
    finally:
        if args.service:
            client.shutdown()
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
