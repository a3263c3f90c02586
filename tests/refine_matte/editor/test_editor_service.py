"""End to end: the editor and panel against a real `diffmatte serve` with a tiny model.

The service runs on an ephemeral port with its config dir in a temp folder
(REFINE_MATTE_CONFIG_DIR), loaded with a small random-weight checkpoint, so the
mattes are meaningless but every byte goes through the real HTTP path.
"""
from __future__ import annotations

import os
import sys

import pytest
from conftest import ROOT

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(ROOT / "plugin"))

pytest.importorskip("pytestqt")
pytest.importorskip("torch")
pytest.importorskip("diffmatte.service")
from refine_matte import imaging  # noqa: E402
from refine_matte.client import EngineClient  # noqa: E402
from refine_matte.qt import QtCore, QtGui  # noqa: E402

Qt = QtCore.Qt
W, H = 48, 32


@pytest.fixture(scope="module")
def service(tmp_path_factory, tiny_weights):
    """(config_dir, client) of a service started for this module, shut down after it."""
    base = tmp_path_factory.mktemp("engine")
    weights = tiny_weights  # the same checkpoint the CLI comparison below loads
    config = str(base / "config")
    client = EngineClient.ensure_running(
        python=sys.executable, config=config, timeout=180,
        args=["--weights", str(weights), "--device", "cpu", "--port", "0"])
    yield config, client
    try:
        client.shutdown()
    finally:
        if client.process is not None:
            try:
                client.process.wait(timeout=30)
            except Exception:  # noqa: BLE001 - last resort: do not leave it running
                client.process.kill()


@pytest.fixture
def editor(service, qtbot, tmp_path, monkeypatch):
    """An editor using its default client factory, pointed at the test service."""
    from refine_matte.editor.app import EditorWindow

    config, _ = service
    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", config)
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = EditorWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(800, 500)
    win.show()
    open_sample(win, tmp_path, W, H)
    return win


def open_sample(win, folder, w: int, h: int) -> None:
    """Write a w x h photo (a light box on green) as folder/sample.png and open it."""
    img = QtGui.QImage(w, h, QtGui.QImage.Format.Format_RGB32)
    img.fill(QtGui.QColor(40, 120, 60))
    p = QtGui.QPainter(img)
    p.fillRect(12, 8, 24, 16, QtGui.QColor(230, 210, 190))
    p.end()
    img.save(str(folder / "sample.png"))
    win.open_path(str(folder / "sample.png"))


def drag(qtbot, canvas, points):
    wp = [canvas.to_widget(QtCore.QPointF(x, y)).toPoint() for x, y in points]
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=wp[0])
    for pt in wp[1:]:
        qtbot.mouseMove(canvas, pos=pt)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=wp[-1])


def scribble(qtbot, win):
    win.panel.set_source("scribbles")
    win.panel.set_tool("fg")
    win.canvas.set_brush_size(4)
    drag(qtbot, win.canvas, [(20, 14), (24, 16), (28, 18)])
    win.panel.set_tool("bg")
    drag(qtbot, win.canvas, [(2, 2), (46, 2), (46, 30)])


def test_refine_through_real_service_adds_mask_and_undoes(editor, qtbot):
    win = editor
    before = win.document.active_layer().image.copy()
    scribble(qtbot, win)
    win.panel.steps_spin.setValue(2)
    progress = []
    win.panel.jobStarted.connect(
        lambda: win.panel.job.signals.progress.connect(lambda s, t, p: progress.append((s, t, p))))
    with qtbot.waitSignal(win.panel.jobFinished, timeout=120000) as blocker:
        qtbot.mouseClick(win.panel.refine_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["done"], win.panel.error_text()
    layer = win.document.active_layer()
    assert len(layer.masks) == 1
    mask = layer.masks[0].image
    assert mask.size() == before.size()
    assert mask.format() in (QtGui.QImage.Format.Format_Grayscale16,
                             QtGui.QImage.Format.Format_Grayscale8)
    assert layer.image == before
    # trimap from the service: painted fg is 255, painted bg is 0
    tri = win.canvas.trimap()
    assert QtGui.qGray(tri.pixel(24, 16)) == 255 and QtGui.qGray(tri.pixel(10, 2)) == 0
    # Scribbles are rough input: the refine asks for widen_band, so the steps are counted over
    # two passes (of 4); the count only rises, and ends at 4 whether or not the first matte
    # made the engine widen the band (here the strokes are islands it never reopens: 1, 2, 4).
    steps = [s for s, _, _ in progress]
    assert steps[:2] == [1, 2] and steps == sorted(set(steps)) and steps[-1] == 4
    assert all(t == 4 for _, t, _ in progress)
    # Previews travel as PNG bytes and are decoded on the GUI thread.
    assert all(p is not None and imaging.png_to_qimage(p).size() == before.size() for _, _, p in progress)
    win.undo_action.trigger()
    assert layer.masks == [] and layer.image == before


def test_cancel_stops_a_running_service_job(editor, service, qtbot):
    win = editor
    _, client = service
    scribble(qtbot, win)
    win.panel.steps_spin.setValue(100)
    steps = []
    win.panel.jobStarted.connect(
        lambda: win.panel.job.signals.progress.connect(lambda s, t, p: steps.append(s)))
    assert win.panel.refine()
    qtbot.waitUntil(lambda: len(steps) >= 1, timeout=120000)
    with qtbot.waitSignal(win.panel.jobFinished, timeout=60000) as blocker:
        qtbot.keyClick(win.canvas, Qt.Key.Key_Escape)
    assert blocker.args == ["cancelled"]
    assert max(steps) < 100
    assert win.document.active_layer().masks == []
    qtbot.waitUntil(lambda: client.info()["queue"]["running"] is None, timeout=30000)


def test_editor_and_cli_give_the_same_matte_and_cutout(editor, qtbot, tmp_path, tiny_weights):
    """Same image, trimap and default variation (seed 0): the editor's matte and cut-out
    through the service equal `diffmatte refine --rgba`'s, pixel for pixel. An exact
    selection: its trimap is refined once, as the CLI refines a given trimap (a rough
    source would ask for widen_band, a second pass the CLI's --trimap does not make)."""
    import numpy as np

    from diffmatte.cli import main

    win = editor
    # An image of a size no earlier job of this service refined: the engine's caches (prior
    # memo, tile cache) then hold nothing that could move its numbers off the CLI's fresh run.
    w, h = W + 2, H + 2
    open_sample(win, tmp_path, w, h)
    sel = imaging.blank_mask(w, h)
    p = QtGui.QPainter(sel)
    p.fillRect(12, 8, 24, 16, QtGui.QColor(255, 255, 255))
    p.end()
    win.document.selection = sel
    win.panel.set_source("selection")
    win.panel.set_edge("exact")
    win.panel.band_slider.setValue(2)
    win.panel.steps_spin.setValue(2)
    assert win.panel.output_controls.seed() == 0
    with qtbot.waitSignal(win.panel.jobFinished, timeout=120000) as blocker:
        win.panel.refine()
    assert blocker.args == ["done"], win.panel.error_text()
    tri = tmp_path / "tri.png"
    assert win.canvas.trimap().save(str(tri))
    win.save_alpha(str(tmp_path / "ed_alpha.png"), bits=16)
    win.save_cutout(str(tmp_path / "ed_cut.png"))
    assert main(["refine", str(tmp_path / "sample.png"), "--trimap", str(tri), "-o", str(tmp_path / "cli_alpha.png"),
                 "--bits", "16", "--rgba", str(tmp_path / "cli_cut.png"), "--weights", str(tiny_weights),
                 "--device", "cpu", "--steps", "2", "-q"]) == 0

    def arr(name, channels):
        from refine_matte.editor import io as edio
        return edio.qimage_to_array(QtGui.QImage(str(tmp_path / name)).convertToFormat(
            QtGui.QImage.Format.Format_Grayscale16 if channels == 1 else QtGui.QImage.Format.Format_RGBA8888), channels)

    ed_a, cli_a = arr("ed_alpha.png", 1), arr("cli_alpha.png", 1)
    assert 0 < (ed_a > 0).mean() < 1
    assert np.array_equal(ed_a, cli_a)
    assert np.array_equal(arr("ed_cut.png", 4), arr("cli_cut.png", 4))


def test_panel_without_numpy_finishes_through_the_service(service, qtbot):
    """A host panel (no in-process finisher, as in Krita): edge controls and the
    decontaminated cut-out go through the service's /v1/cutout, no new refine."""
    from refine_matte.editor.adapter import EditorAdapter
    from refine_matte.editor.document import Document, Layer
    from refine_matte.panel import RefinePanel

    _, client = service
    img = QtGui.QImage(W, H, QtGui.QImage.Format.Format_ARGB32)
    img.fill(QtGui.QColor(20, 200, 40))
    p = QtGui.QPainter(img)
    p.fillRect(12, 8, 24, 16, QtGui.QColor(230, 120, 90))
    p.end()
    sel = imaging.blank_mask(W, H)
    p = QtGui.QPainter(sel)
    p.fillRect(12, 8, 24, 16, QtGui.QColor(255, 255, 255))
    p.end()
    doc = Document([Layer("l", img)], selection=sel)
    panel = RefinePanel(EditorAdapter(doc), client=client)
    qtbot.addWidget(panel)
    panel.refresh()
    panel.set_source("selection")
    panel.steps_spin.setValue(1)
    with qtbot.waitSignal(panel.jobFinished, timeout=120000) as blocker:
        panel.refine()
    assert blocker.args == ["done"], panel.error_text()
    assert panel.output_controls.spins["feather"].isEnabled()
    completed = client.info()["queue"]["completed"]
    before = doc.active_layer().masks[0].image
    with qtbot.waitSignal(panel.maskAdded, timeout=30000):
        panel.output_controls.spins["contrast"].setValue(100.0)
    after = doc.active_layer().masks[0].image
    levels = {QtGui.qGray(after.pixel(x, y)) for x in range(W) for y in range(H)}
    assert levels <= {0, 255} and after != before
    qtbot.waitUntil(lambda: panel.canvas.cutout() is not None, timeout=30000)
    assert client.info()["queue"]["completed"] == completed  # no engine job for any of it
