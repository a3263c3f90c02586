"""Refine Matte panel (PyQt6 via pytest-qt, offscreen) against the fake engine client."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from conftest import ROOT

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(ROOT / "plugin"))

pytest.importorskip("pytestqt")
from refine_matte import imaging  # noqa: E402
from refine_matte.canvas import MatteCanvas, Stroke  # noqa: E402
from refine_matte.editor.adapter import EditorAdapter  # noqa: E402
from refine_matte.editor.document import Document, Layer  # noqa: E402
from refine_matte.panel import RefinePanel, shortcut_help  # noqa: E402
from refine_matte.panel_progress import BAR_MAX  # noqa: E402
from refine_matte.qt import API, QtCore, QtGui  # noqa: E402
from doubles.plugin_fakes import FakeEngineClient  # noqa: E402

Qt = QtCore.Qt
W, H = 64, 48


def sample_image() -> "QtGui.QImage":
    img = QtGui.QImage(W, H, QtGui.QImage.Format.Format_ARGB32)
    img.fill(QtGui.QColor(30, 90, 200))
    p = QtGui.QPainter(img)
    p.fillRect(16, 12, 32, 24, QtGui.QColor(240, 200, 40))
    p.end()
    return img


def pixel_grey(img: "QtGui.QImage", x: int, y: int) -> int:
    return QtGui.qGray(img.pixel(x, y))


@pytest.fixture
def host(qtbot):
    """A one-layer document, its adapter and a panel wired to a fake client."""
    doc = Document([Layer("layer", sample_image())])
    adapter = EditorAdapter(doc)
    client = FakeEngineClient()
    panel = RefinePanel(adapter, client=client)
    qtbot.addWidget(panel)
    panel.resize(420, 640)
    panel.show()
    qtbot.waitExposed(panel)
    panel.refresh()
    return doc, adapter, client, panel


def drag(qtbot, canvas: MatteCanvas, points, button=Qt.MouseButton.LeftButton) -> None:
    """Press at the first image point, move through the rest, release at the last."""
    wp = [canvas.to_widget(QtCore.QPointF(x, y)).toPoint() for x, y in points]
    qtbot.mousePress(canvas, button, pos=wp[0])
    for pt in wp[1:]:
        qtbot.mouseMove(canvas, pos=pt)
    qtbot.mouseRelease(canvas, button, pos=wp[-1])


def scribble(qtbot, panel: RefinePanel) -> None:
    panel.set_source("scribbles")
    panel.set_tool("fg")
    panel.canvas.set_brush_size(6)
    drag(qtbot, panel.canvas, [(28, 20), (32, 24), (36, 28)])
    panel.set_tool("bg")
    drag(qtbot, panel.canvas, [(4, 4), (30, 4), (58, 4)])


def on_progress(panel: RefinePanel, fn) -> None:
    """Subscribe ``fn`` to the next job's progress before its thread starts."""
    panel.jobStarted.connect(lambda: panel.job.signals.progress.connect(fn))


def test_binding_is_pyqt6_by_default():
    assert API == "PyQt6"


def test_unknown_binding_is_a_clear_error():
    env = dict(os.environ, REFINE_MATTE_QT="tk", PYTHONPATH=str(ROOT / "plugin"))
    proc = subprocess.run([sys.executable, "-c", "import refine_matte.qt"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "REFINE_MATTE_QT='tk' is not supported" in proc.stderr


def test_view_modes_render_distinct_images(qtbot):
    img = sample_image()
    alpha = imaging.blank_mask(W, H)
    p = QtGui.QPainter(alpha)
    p.fillRect(16, 12, 32, 24, QtGui.QColor(255, 255, 255))
    p.end()
    trimap = imaging.blank_mask(W, H)
    trimap.fill(128)
    renders = {}
    for mode, _, _ in imaging.VIEW_MODES:
        renders[mode] = imaging.compose_view(mode, img, alpha, trimap, split=0.25)
    keys = list(renders)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert renders[a] != renders[b], (a, b)
    # background pixel (alpha 0) / subject pixel (alpha 1)
    assert QtGui.QColor(renders["black"].pixel(60, 40)).getRgb()[:3] == (0, 0, 0)
    assert QtGui.QColor(renders["white"].pixel(60, 40)).getRgb()[:3] == (255, 255, 255)
    assert QtGui.QColor(renders["black"].pixel(30, 20)).getRgb()[:3] == (240, 200, 40)
    assert pixel_grey(renders["alpha"], 30, 20) == 255 and pixel_grey(renders["alpha"], 2, 2) == 0
    # trimap view: the trimap over a dimmed image (70 / 30), so the band can be judged
    expect = 0.7 * 128 + 0.3 * pixel_grey(img, 2, 2)
    assert abs(pixel_grey(renders["trimap"], 2, 2) - expect) <= 3
    ov = QtGui.QColor(renders["overlay"].pixel(60, 40))
    assert ov.red() > 100 and ov.blue() < 200  # background tinted red
    assert QtGui.QColor(renders["overlay"].pixel(30, 20)).getRgb()[:3] == (240, 200, 40)
    # split: left of the line is the untouched image, right is the cut-out on checker
    assert QtGui.QColor(renders["split"].pixel(2, 40)).getRgb()[:3] == (30, 90, 200)
    assert QtGui.QColor(renders["split"].pixel(60, 40)).getRgb()[:3] != (30, 90, 200)


def test_png_round_trip_keeps_pixels():
    img = sample_image().convertToFormat(QtGui.QImage.Format.Format_RGB32)
    back = imaging.png_to_qimage(imaging.qimage_to_png(img))
    assert back.convertToFormat(QtGui.QImage.Format.Format_RGB32) == img
    with pytest.raises(ValueError, match="not a readable image"):
        imaging.png_to_qimage(b"not a png")
    with pytest.raises(ValueError, match="not a readable image"):
        imaging.png_to_qimage(b"\x89PNG\r\n\x1a\n truncated")
    # Other formats still decode (the format is named only for PNG).
    buf = QtCore.QBuffer()
    buf.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    assert img.save(buf, "BMP")
    bmp = imaging.png_to_qimage(bytes(buf.data()))
    assert bmp.convertToFormat(QtGui.QImage.Format.Format_RGB32) == img


def test_scribble_refine_adds_mask_node_keeps_pixels_and_undoes(host, qtbot):
    doc, adapter, client, panel = host
    before = doc.active_layer().image.copy()
    scribble(qtbot, panel)
    assert [s.kind for s in panel.canvas.strokes] == ["fg", "bg"]
    steps = []
    panel.steps_spin.setValue(5)
    on_progress(panel, lambda s, t, prev: steps.append((s, t, prev is not None)))
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        qtbot.mouseClick(panel.refine_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["done"], panel.error_text()
    assert panel.error_text() == ""
    layer = doc.active_layer()
    assert len(layer.masks) == 1 and layer.masks[0].name == "Refine Matte"
    mask = layer.masks[0].image
    assert mask.size() == before.size()
    assert pixel_grey(mask, 32, 24) == 255      # painted foreground
    assert pixel_grey(mask, 30, 4) == 0         # painted background
    assert layer.image == before                # the layer's own pixels are untouched
    assert [s for s, _, _ in steps] == [1, 2, 3, 4, 5] and all(p for _, _, p in steps)
    assert panel.progress.value() == panel.progress.maximum() == BAR_MAX  # the whole job, full
    assert panel.canvas.trimap() is not None
    ops = [c["op"] for c in client.calls]
    assert ops == ["trimap_from_scribbles", "refine"]
    assert client.calls[1]["samples"] == 1
    # one undo removes the mask node, redo restores it
    adapter.undo_stack.undo()
    assert layer.masks == [] and layer.image == before
    adapter.undo_stack.redo()
    assert len(layer.masks) == 1


def test_samples_reach_the_engine_and_stretch_the_progress_bar(host, qtbot):
    doc, adapter, client, panel = host
    scribble(qtbot, panel)
    panel.steps_spin.setValue(3)
    panel.samples_spin.setValue(2)
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        panel.refine()
    assert blocker.args == ["done"], panel.error_text()
    assert client.calls[-1]["op"] == "refine" and client.calls[-1]["samples"] == 2
    assert panel.progress.value() == panel.progress.maximum() == BAR_MAX


def test_cancel_stops_running_job(host, qtbot):
    doc, adapter, client, panel = host
    client.step_delay = 0.05
    scribble(qtbot, panel)
    panel.steps_spin.setValue(100)
    seen = []
    on_progress(panel, lambda s, t, p: seen.append(s))
    assert panel.refine()
    qtbot.waitUntil(lambda: len(seen) >= 2, timeout=10000)
    assert panel.cancel_button.isEnabled()
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["cancelled"]
    assert max(seen) < 100
    assert doc.active_layer().masks == []
    assert panel.status_label.text() == "Cancelled."
    assert panel.refine_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_escape_key_cancels(host, qtbot):
    doc, adapter, client, panel = host
    client.step_delay = 0.05
    scribble(qtbot, panel)
    panel.steps_spin.setValue(100)
    assert panel.refine()
    qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=10000)
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        panel.activateWindow()
        panel.canvas.setFocus()
        qtbot.keyClick(panel.canvas, Qt.Key.Key_Escape)
    assert blocker.args == ["cancelled"]


def test_errors_are_shown_in_the_panel(qtbot):
    panel = RefinePanel(EditorAdapter(None), client=FakeEngineClient())
    qtbot.addWidget(panel)
    assert panel.refine() is False
    assert panel.error_text().startswith("No image")
    assert panel.error_label.isVisibleTo(panel)

    doc = Document([Layer("layer", sample_image())])
    panel.adapter = EditorAdapter(doc)
    panel.set_source("selection")
    assert panel.refine() is False and panel.error_text().startswith("No selection")
    panel.set_source("mask")
    assert panel.refine() is False and "no mask" in panel.error_text()
    panel.set_source("scribbles")
    assert panel.refine() is False and "foreground (F)" in panel.error_text()
    panel.set_source("sam")
    assert panel.refine() is False and "Click a point" in panel.error_text()


def _some_selection():
    sel = imaging.blank_mask(W, H)
    p = QtGui.QPainter(sel)
    p.fillRect(16, 12, 32, 24, QtGui.QColor(255, 255, 255))
    p.end()
    return sel


def test_engine_not_running_is_reported_not_raised(qtbot):
    from refine_matte.client import EngineNotRunning

    def factory():
        raise EngineNotRunning("no running engine service found in /nowhere")

    doc = Document([Layer("layer", sample_image())])
    doc.selection = _some_selection()  # (an empty one is refused now)
    panel = RefinePanel(EditorAdapter(doc), client_factory=factory)
    qtbot.addWidget(panel)
    panel.set_source("selection")
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        assert panel.refine()
    assert blocker.args == ["failed"]
    assert panel.error_text().startswith("Engine not running")
    assert "/nowhere" in panel.error_text()
    assert doc.active_layer().masks == []


def test_engine_error_during_refine(qtbot):
    from refine_matte.client import EngineError

    doc = Document([Layer("layer", sample_image())])
    doc.selection = _some_selection()  # (an empty one is refused now)
    panel = RefinePanel(EditorAdapter(doc), client=FakeEngineClient(fail=EngineError("boom")))
    qtbot.addWidget(panel)
    panel.set_source("selection")
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        panel.refine()
    assert blocker.args == ["failed"] and panel.error_text() == "Engine error: boom"
    # the next successful run clears the error
    panel.state.client = FakeEngineClient()
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        panel.refine()
    assert blocker.args == ["done"] and panel.error_text() == ""


def test_selection_source_passes_band(host, qtbot):
    doc, adapter, client, panel = host
    sel = imaging.blank_mask(W, H)
    p = QtGui.QPainter(sel)
    p.fillRect(16, 12, 32, 24, QtGui.QColor(255, 255, 255))
    p.end()
    doc.selection = sel.convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    panel.set_source("selection")
    panel.band_slider.setValue(4)
    assert panel.band_label.text() == "±4 px"  # radius per side
    with qtbot.waitSignal(panel.jobFinished, timeout=10000):
        panel.refine()
    # A host selection is read as rough (a region around the subject) by default.
    assert client.calls[0] == {"op": "trimap_from_mask", "band": 4, "image": True, "edge": "rough"}
    mask = doc.active_layer().masks[-1].image
    assert pixel_grey(mask, 32, 24) == 255 and pixel_grey(mask, 2, 2) == 0


def test_engine_warning_about_the_trimap_is_shown_with_the_result(qtbot):
    doc, adapter, client, panel = selection_host(qtbot, client=FakeEngineClient())
    client.warning = "The unknown area around x 1-9, y 1-9 has colours ... Paint foreground or background there."
    with qtbot.waitSignal(panel.warningShown, timeout=10000):
        refine_and_wait(qtbot, panel)
    assert "Paint foreground or background there" in panel.status_label.text()
    assert doc.active_layer().masks  # a warning, not an error: the matte is applied
    client.warning = None
    refine_and_wait(qtbot, panel)
    assert "Warning" not in panel.status_label.text()


def test_a_selection_warning_from_the_trimap_step_is_shown_with_the_result_and_the_preview(qtbot):
    """Issue #27: a selection that leaves almost no background gives a trimap warning
    (the service's X-Trimap-Warning); the panel shows it after the refine and with the
    band preview, together with a warning from the refine itself."""
    doc, adapter, client, panel = selection_host(qtbot, client=FakeEngineClient())
    client.trimap_warning = "the selection covers 99 % of the photo, which leaves too little background"
    client.warning = "The unknown area around x 1-9, y 1-9 has colours ... Paint foreground or background there."
    refine_and_wait(qtbot, panel)
    text = panel.status_label.text()
    assert "covers 99 % of the photo" in text and "Paint foreground or background there" in text
    assert doc.active_layer().masks
    client.warning = None
    with qtbot.waitSignal(panel.jobFinished, timeout=10000):
        panel.preview_band()
    assert "Band preview" in panel.status_label.text() and "covers 99 %" in panel.status_label.text()
    client.trimap_warning = None
    refine_and_wait(qtbot, panel)
    assert "Warning" not in panel.status_label.text()


def test_edge_mode_is_per_source_and_remembered(host, qtbot, tmp_path):
    doc, adapter, client, panel = host
    panel.set_source("selection")
    assert panel.edge() == "rough" and panel.edge_combo.isEnabled()
    panel.set_source("mask")
    assert panel.edge() == "exact"  # a layer mask already follows the edge
    panel.set_edge("auto")
    panel.set_source("selection")
    assert panel.edge() == "rough"
    panel.set_source("scribbles")
    assert not panel.edge_combo.isEnabled()
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    panel.save_settings(settings)
    panel.set_source("mask")
    panel.set_edge("exact")
    panel.restore_settings(settings)
    panel.set_source("mask")
    assert panel.edge() == "auto"


def test_sam_points_and_box_from_mouse(host, qtbot):
    doc, adapter, client, panel = host
    panel.set_tool("sam")
    assert panel.source() == "sam"
    canvas = panel.canvas
    click = canvas.to_widget(QtCore.QPointF(32, 24)).toPoint()
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=click)
    bg = canvas.to_widget(QtCore.QPointF(4, 40)).toPoint()
    qtbot.mouseClick(canvas, Qt.MouseButton.RightButton, pos=bg)
    drag(qtbot, canvas, [(10, 8), (30, 20), (54, 40)])
    assert [lab for _, _, lab in canvas.sam_points] == [1, 0]
    x0, y0, x1, y1 = canvas.sam_box
    assert abs(x0 - 10) < 1.5 and abs(y1 - 40) < 1.5
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        panel.refine()
    assert blocker.args == ["done"]
    call = client.calls[0]
    assert call["op"] == "sam_trimap" and call["labels"] == [1, 0]
    assert abs(call["points"][0][0] - 32) < 1.5 and call["box"] == canvas.sam_box
    qtbot.keyClick(canvas, Qt.Key.Key_Backspace)
    assert canvas.sam_points == [] and canvas.sam_box is None


def test_single_keys_switch_view_modes_and_brush(host, qtbot):
    doc, adapter, client, panel = host
    panel.activateWindow()
    panel.canvas.setFocus()
    for mode, _, keys in imaging.VIEW_MODES:
        for key in keys:
            panel.canvas.set_view_mode("overlay" if mode != "overlay" else "alpha")
            qtbot.keyClicks(panel.canvas, key.lower() if key.isalpha() else key)
            assert panel.canvas.view_mode() == mode, key
            assert panel.view_buttons[mode].isChecked()
            assert sum(b.isChecked() for b in panel.view_buttons.values()) == 1
    panel.set_source("scribbles")
    panel.canvas.set_brush_size(20)
    qtbot.keyClicks(panel.canvas, "]")
    assert panel.canvas.brush_size() == 24 and panel.brush_spin.value() == 24
    qtbot.keyClicks(panel.canvas, "[[")
    assert panel.canvas.brush_size() < 20
    qtbot.keyClicks(panel.canvas, "b")
    assert panel.canvas.tool() == "bg"
    qtbot.keyClicks(panel.canvas, "p")
    assert panel.canvas.tool() == "sam" and panel.source() == "sam"
    assert panel.canvas.input_visible()
    qtbot.keyClicks(panel.canvas, "x")
    assert not panel.canvas.input_visible() and not panel.show_input_check.isChecked()
    qtbot.keyClicks(panel.canvas, "x")
    assert panel.canvas.input_visible()
    keys = " ".join(k for k, _ in shortcut_help())
    for needed in ("[", "]", "Esc", "F", "B", "U", "P", "O", "K", "W", "T", "A", "S"):
        assert needed in keys


def test_scribble_masks_render_where_painted(qtbot):
    canvas = MatteCanvas()
    qtbot.addWidget(canvas)
    canvas.set_image(sample_image())
    canvas.add_stroke(Stroke("fg", 4, [(10, 10), (20, 10)]))
    canvas.add_stroke(Stroke("unknown", 2, [(40, 40)]))
    fg = canvas.render_scribbles("fg")
    assert fg.format() == QtGui.QImage.Format.Format_Grayscale8
    assert pixel_grey(fg, 15, 10) == 255 and pixel_grey(fg, 15, 20) == 0
    assert pixel_grey(canvas.render_scribbles("bg"), 15, 10) == 0
    assert pixel_grey(canvas.render_scribbles("unknown"), 40, 40) == 255
    with pytest.raises(ValueError):
        canvas.render_scribbles("nope")


def test_canvas_zoom_keeps_anchor(qtbot):
    canvas = MatteCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.show()
    canvas.set_image(sample_image())
    canvas.fit()
    anchor = QtCore.QPointF(150, 120)
    before = canvas.to_image(anchor)
    canvas.set_zoom(canvas.zoom() * 2, anchor)
    after = canvas.to_image(anchor)
    assert abs(before.x() - after.x()) < 1e-6 and abs(before.y() - after.y()) < 1e-6


def test_settings_round_trip(tmp_path, qtbot):
    s = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    a = RefinePanel(None, client=FakeEngineClient())
    qtbot.addWidget(a)
    a.set_source("selection")
    a.steps_spin.setValue(17)
    a.band_slider.setValue(9)
    a.canvas.set_brush_size(33)
    a.canvas.set_view_mode("white")
    a.save_settings(s)
    s.sync()
    b = RefinePanel(None, client=FakeEngineClient())
    qtbot.addWidget(b)
    b.restore_settings(QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat))
    assert (b.source(), b.steps_spin.value(), b.band_slider.value(), b.canvas.brush_size(),
            b.canvas.view_mode()) == ("selection", 17, 9, 33, "white")


def test_progress_preview_reaches_canvas(host, qtbot):
    doc, adapter, client, panel = host
    client.step_delay = 0.02
    scribble(qtbot, panel)
    panel.steps_spin.setValue(3)
    previews = []
    orig = panel.canvas.set_preview
    panel.canvas.set_preview = lambda img: (previews.append(img), orig(img))
    with qtbot.waitSignal(panel.jobFinished, timeout=10000):
        panel.refine()
    shown = [p for p in previews if p is not None]
    assert len(shown) == 3 and all(p.size() == QtCore.QSize(W, H) for p in shown)


def test_gui_thread_stays_responsive_during_refine(host, qtbot):
    doc, adapter, client, panel = host
    client.step_delay = 0.1
    refine_threads = []
    fake_refine = client.refine
    client.refine = lambda *a, **kw: (refine_threads.append(threading.current_thread()), fake_refine(*a, **kw))[1]
    scribble(qtbot, panel)
    panel.steps_spin.setValue(5)
    ticks = []
    timer = QtCore.QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    with qtbot.waitSignal(panel.jobFinished, timeout=10000):
        panel.refine()
    timer.stop()
    assert len(ticks) >= 10  # ~0.5 s of work; the event loop kept running
    # The engine call ran once, on a worker thread, not on the GUI thread.
    assert len(refine_threads) == 1 and refine_threads[0] is not threading.main_thread()


def test_split_divider_can_be_dragged(host, qtbot):
    doc, adapter, client, panel = host
    canvas = panel.canvas
    canvas.set_alpha(imaging.blank_mask(W, H))
    canvas.set_view_mode("split")
    start = QtCore.QPoint(int(round(canvas.split_x())), 20)
    target = canvas.to_widget(QtCore.QPointF(W * 0.25, 10)).toPoint()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(canvas, pos=QtCore.QPoint(target.x(), 20))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QtCore.QPoint(target.x(), 20))
    assert abs(canvas.split - 0.25) < 0.05
    assert canvas.strokes == [] and canvas.sam_points == []  # moved the divider only
    shown = canvas.display_image()
    # left of the divider: original blue; right: the (fully transparent) cut-out on checker
    assert QtGui.QColor(shown.pixel(2, 40)).getRgb()[:3] == (30, 90, 200)
    assert QtGui.QColor(shown.pixel(W // 2, 40)).getRgb()[:3] != (30, 90, 200)


def test_result_is_not_applied_when_the_layer_changed_meanwhile(qtbot):
    doc = Document([Layer("bottom", sample_image()), Layer("top", sample_image())], active=1)
    doc.selection = _some_selection()  # (an empty one is refused now)
    client = FakeEngineClient(step_delay=0.05)
    panel = RefinePanel(EditorAdapter(doc), client=client)
    qtbot.addWidget(panel)
    panel.set_source("selection")
    panel.steps_spin.setValue(6)
    outcomes = []
    panel.jobFinished.connect(outcomes.append)
    assert panel.refine()
    qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=10000)
    doc.active = 0  # the artist picked another layer while the job ran
    qtbot.waitUntil(lambda: bool(outcomes), timeout=10000)
    assert outcomes == ["failed"]
    assert "changed while refining" in panel.error_text()
    assert doc.layers[0].masks == [] and doc.layers[1].masks == []


def test_later_strokes_and_the_eraser_win(qtbot):
    canvas = MatteCanvas()
    qtbot.addWidget(canvas)
    canvas.set_image(sample_image())
    canvas.add_stroke(Stroke("fg", 4, [(4, 10), (40, 10)]))
    canvas.add_stroke(Stroke("bg", 4, [(30, 10), (40, 10)]))   # overrides fg there
    canvas.add_stroke(Stroke("erase", 4, [(4, 10), (10, 10)]))  # clears the start
    fg, bg = canvas.render_scribbles("fg"), canvas.render_scribbles("bg")
    assert pixel_grey(fg, 20, 10) == 255 and pixel_grey(bg, 20, 10) == 0
    assert pixel_grey(fg, 35, 10) == 0 and pixel_grey(bg, 35, 10) == 255
    assert pixel_grey(fg, 6, 10) == 0 and pixel_grey(bg, 6, 10) == 0
    overlay = canvas.scribble_overlay()
    assert overlay.pixelColor(6, 10).alpha() == 0
    fg_px, bg_px = overlay.pixelColor(20, 10), overlay.pixelColor(35, 10)
    assert fg_px.red() > 150 and fg_px.green() < 120  # fg magenta
    assert bg_px.blue() > 150 and bg_px.red() < 100  # bg cyan (the later stroke wins)


def test_eraser_key_and_mouse(host, qtbot):
    doc, adapter, client, panel = host
    scribble(qtbot, panel)
    panel.activateWindow()
    panel.canvas.setFocus()
    qtbot.keyClicks(panel.canvas, "e")
    assert panel.canvas.tool() == "erase" and panel.tool_buttons["erase"].isChecked()
    panel.canvas.set_brush_size(12)
    drag(qtbot, panel.canvas, [(26, 20), (38, 28)])
    assert panel.canvas.strokes[-1].kind == "erase"
    fg = panel.canvas.render_scribbles("fg")
    assert pixel_grey(fg, 32, 24) == 0


def test_engine_that_fails_to_start_is_explained():
    from refine_matte.client import EngineNotRunning
    from refine_matte.worker import describe_error

    msg = describe_error(EngineNotRunning("the engine service exited with code 2:\nerror: no model"))
    assert msg.startswith("The engine could not start:") and "no model" in msg
    assert describe_error(ValueError("bad trimap")) == "bad trimap"
    assert describe_error(ConnectionRefusedError(111, "refused")).startswith("Cannot reach the engine")
    assert describe_error(RuntimeError("x")) == "Unexpected error (RuntimeError): x"


# ----------------------------------------------------------- #13: output, refine brush, SAM
class SeedRecordingClient(FakeEngineClient):
    """The fake engine, remembering the seed of every refine."""

    def refine(self, image_png, trimap_png, steps=10, seed=None, **kwargs):
        self.calls.append({"op": "seed", "seed": seed})
        return super().refine(image_png, trimap_png, steps=steps, seed=seed, **kwargs)


def selection_host(qtbot, finisher=None, client=None):
    doc = Document([Layer("layer", sample_image())])
    sel = imaging.blank_mask(W, H)
    p = QtGui.QPainter(sel)
    p.fillRect(16, 12, 32, 24, QtGui.QColor(255, 255, 255))
    p.end()
    doc.selection = sel
    adapter = EditorAdapter(doc)
    client = client or SeedRecordingClient()
    panel = RefinePanel(adapter, client=client, finisher=finisher)
    qtbot.addWidget(panel)
    panel.resize(420, 820)
    panel.show()
    qtbot.waitExposed(panel)
    panel.refresh()
    panel.set_source("selection")
    panel.band_slider.setValue(2)
    return doc, adapter, client, panel


def refine_and_wait(qtbot, panel):
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        assert panel.refine(), panel.error_text()
    assert blocker.args == ["done"], panel.error_text()


def test_default_source_needs_no_download(qtbot):
    panel = RefinePanel(EditorAdapter(Document([Layer("l", sample_image())])), client=FakeEngineClient())
    qtbot.addWidget(panel)
    assert panel.source() == "scribbles"


def test_variation_is_a_fixed_seed_that_repeats(qtbot):
    doc, adapter, client, panel = selection_host(qtbot)
    refine_and_wait(qtbot, panel)
    refine_and_wait(qtbot, panel)
    panel.output_controls.variation_spin.setValue(7)
    refine_and_wait(qtbot, panel)
    assert [c["seed"] for c in client.calls if c["op"] == "seed"] == [0, 0, 7]


def test_second_refine_replaces_the_first_mask_and_undo_brings_it_back(qtbot):
    doc, adapter, client, panel = selection_host(qtbot)
    refine_and_wait(qtbot, panel)
    first = doc.active_layer().masks[0]
    panel.band_slider.setValue(6)
    refine_and_wait(qtbot, panel)
    layer = doc.active_layer()
    assert len(layer.masks) == 1 and layer.masks[0] is not first
    assert "replaced" in panel.status_label.text()
    adapter.undo_stack.undo()
    assert layer.masks == [first]
    adapter.undo_stack.undo()
    assert layer.masks == []


def _widen_asked(client) -> list:
    return [c["widen_band"] for c in client.calls if c["op"] == "refine"]


@pytest.mark.parametrize("edge,auto_edge,widen", [("rough", "rough", True), ("exact", "rough", False),
                                                  ("auto", "rough", True), ("auto", "exact", False)])
def test_a_selection_read_as_rough_asks_the_engine_to_widen_the_band(qtbot, edge, auto_edge, widen):
    # The band of a trimap found inside a rough selection may miss the edge: the engine
    # widens it where the first matte shows that (Engine.refine's widen_band); "auto"
    # follows what the service decided (X-Trimap-Edge). An exact edge is left alone.
    client = SeedRecordingClient()
    client.auto_edge = auto_edge
    doc, adapter, client, panel = selection_host(qtbot, client=client)
    panel.set_edge(edge)
    refine_and_wait(qtbot, panel)
    assert [c["edge"] for c in client.calls if c["op"] == "trimap_from_mask"] == [edge]
    assert _widen_asked(client) == [widen]


def test_the_widening_follows_the_band_the_user_chose(qtbot):
    # The band the trimap was made with goes with the refine: the engine grows the band by
    # it (Engine.refine's band); "auto" (0) leaves it to the engine's default for the image.
    client = SeedRecordingClient()
    client.auto_edge = "rough"
    doc, adapter, client, panel = selection_host(qtbot, client=client)
    panel.set_edge("rough")
    panel.band_slider.setValue(6)
    refine_and_wait(qtbot, panel)
    panel.band_slider.setValue(0)
    refine_and_wait(qtbot, panel)
    assert [(c["widen_band"], c["band"]) for c in client.calls if c["op"] == "refine"] == [(True, 6), (True, None)]


def _scribbles_then_sam(qtbot, panel) -> None:
    """Refine from scribbles, then from a SAM click."""
    scribble(qtbot, panel)
    refine_and_wait(qtbot, panel)
    panel.set_tool("sam")
    qtbot.mouseClick(panel.canvas, Qt.MouseButton.LeftButton,
                     pos=panel.canvas.to_widget(QtCore.QPointF(32, 24)).toPoint())
    refine_and_wait(qtbot, panel)


def test_scribbles_widen_the_band_and_sam_does_not(host, qtbot):
    doc, adapter, client, panel = host
    _scribbles_then_sam(qtbot, panel)
    assert [c["op"] for c in client.calls if c["op"] != "trimap_from_mask"] == [
        "trimap_from_scribbles", "refine", "sam_trimap", "refine"]
    assert _widen_asked(client) == [True, False]


def test_the_worker_asks_the_shared_widen_rule(host, qtbot, monkeypatch):
    # one rule for every front end (refine_matte.widen_rule; the CLI and batch ask it too)
    from refine_matte import widen_rule

    doc, adapter, client, panel = host
    asked = []
    monkeypatch.setattr(widen_rule, "widens", lambda source, edge: asked.append(source) or source == "sam")
    _scribbles_then_sam(qtbot, panel)
    assert asked == ["scribbles", "sam"] and _widen_asked(client) == [False, True]


def test_refine_brush_over_a_selection_source(qtbot):
    doc, adapter, client, panel = selection_host(qtbot)
    assert panel.tool_buttons["bg"].isEnabled() and panel.tool_buttons["fg"].isEnabled()
    panel.set_tool("bg")
    assert panel.source() == "selection"  # the brush does not switch the source
    panel.canvas.set_brush_size(5)
    drag(qtbot, panel.canvas, [(30, 24), (34, 24)])      # inside the selection: "this is background"
    panel.set_tool("fg")
    drag(qtbot, panel.canvas, [(4, 40), (10, 40)])       # outside it: "this is foreground"
    panel.set_tool("unknown")
    drag(qtbot, panel.canvas, [(20, 14), (22, 14)])
    refine_and_wait(qtbot, panel)
    assert [c["op"] for c in client.calls][0] == "trimap_from_mask"
    tri, mask = panel.canvas.trimap(), doc.active_layer().masks[0].image
    assert pixel_grey(tri, 32, 24) == 0 and pixel_grey(mask, 32, 24) == 0
    assert pixel_grey(tri, 7, 40) == 255 and pixel_grey(mask, 7, 40) == 255
    assert pixel_grey(tri, 21, 14) == 128
    assert pixel_grey(tri, 40, 30) == 255 and pixel_grey(tri, 60, 4) == 0  # the selection elsewhere


def test_band_preview_shows_the_trimap_without_refining(qtbot):
    doc, adapter, client, panel = selection_host(qtbot)
    with qtbot.waitSignal(panel.jobFinished, timeout=10000):
        assert panel.preview_band()
    assert [c["op"] for c in client.calls] == ["trimap_from_mask"]
    assert panel.canvas.trimap() is not None and panel.canvas.view_mode() == "trimap"
    assert doc.active_layer().masks == []
    assert "band" in panel.status_label.text()


def test_band_preview_follows_scribbles_while_painting(host, qtbot):
    doc, adapter, client, panel = host
    panel.set_source("scribbles")
    assert panel.preview_band_button.isEnabled()
    panel.set_tool("fg")
    drag(qtbot, panel.canvas, [(20, 20), (30, 22)])
    panel.set_tool("bg")
    drag(qtbot, panel.canvas, [(2, 2), (10, 2)])
    with qtbot.waitSignal(panel.jobFinished, timeout=10000):
        assert panel.preview_band()
    ops = lambda: [c["op"] for c in client.calls]  # noqa: E731
    assert ops() == ["trimap_from_scribbles"] and panel.canvas.view_mode() == "trimap"
    with qtbot.waitSignal(panel.jobFinished, timeout=10000):  # one more stroke: a new preview
        drag(qtbot, panel.canvas, [(2, 40), (12, 40)])
    assert ops() == ["trimap_from_scribbles"] * 2
    refine_and_wait(qtbot, panel)
    assert doc.active_layer().masks
    panel.canvas.set_view_mode("alpha")  # the artist looks at the matte
    with qtbot.waitSignal(panel.jobFinished, timeout=10000):  # the next stroke: the band again
        drag(qtbot, panel.canvas, [(50, 40), (60, 40)])
    assert ops()[-1] == "trimap_from_scribbles" and panel.canvas.view_mode() == "trimap"
    panel.set_source("selection")  # another source ends the live preview
    panel.set_source("scribbles")
    n = len(client.calls)
    drag(qtbot, panel.canvas, [(50, 30), (60, 30)])
    qtbot.wait(600)
    assert len(client.calls) == n


def test_edge_controls_rerender_without_a_new_engine_job(qtbot):
    from refine_matte.editor.finish import LocalFinisher

    doc, adapter, client, panel = selection_host(qtbot, finisher=LocalFinisher())
    refine_and_wait(qtbot, panel)
    refines = sum(c["op"] == "refine" for c in client.calls)
    before = doc.active_layer().masks[0].image
    soft = lambda img: sum(0 < pixel_grey(img, x, 24) < 255 for x in range(W))  # noqa: E731
    with qtbot.waitSignal(panel.maskAdded, timeout=5000):
        panel.output_controls.spins["feather"].setValue(6.0)
    after = doc.active_layer().masks[0].image
    assert soft(after) > soft(before)
    with qtbot.waitSignal(panel.maskAdded, timeout=5000):
        panel.output_controls.spins["shift"].setValue(-4.0)
    assert sum(c["op"] == "refine" for c in client.calls) == refines  # no new engine job
    assert len(doc.active_layer().masks) == 1
    qtbot.waitUntil(lambda: panel.canvas.cutout() is not None, timeout=10000)
    assert panel.output_params()["edges"]["feather"] == 6.0


def test_edge_controls_are_off_when_the_engine_cannot_finish(qtbot):
    """No in-process finisher and an engine without /v1/cutout (the fake has none)."""
    doc, adapter, client, panel = selection_host(qtbot)
    assert not panel.output_controls.spins["feather"].isEnabled()
    assert "/v1/cutout" in panel.output_controls.spins["feather"].toolTip()
    assert panel.output_controls.variation_spin.isEnabled()
    refine_and_wait(qtbot, panel)
    assert panel.status_label.text().startswith("Done")  # no failing cut-out preview


class FakeSamSetup:
    def __init__(self):
        self.installed = False

    def available(self):
        return self.installed

    def download(self, progress, cancel):
        for done in (0, 100, 200):
            progress(done, 200)
        self.installed = True
        return "/tmp/sam_vit_b_01ec64.pth"


def test_sam_source_offers_the_download_when_no_checkpoint(qtbot):
    setup = FakeSamSetup()
    panel = RefinePanel(EditorAdapter(Document([Layer("l", sample_image())])),
                        client=FakeEngineClient(), sam_setup=setup)
    qtbot.addWidget(panel)
    panel.show()
    assert not panel.sam_row.isVisible()
    panel.set_source("sam")
    assert panel.sam_row.isVisible() and panel.sam_download_button.isEnabled()
    qtbot.mouseClick(panel.sam_download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: setup.installed and not panel.sam_row.isVisible(), timeout=5000)
    assert "SAM is ready" in panel.status_label.text()


def test_editor_sam_setup_looks_where_the_engine_looks(tmp_path, monkeypatch):
    from refine_matte.editor.sam_setup import EditorSamSetup

    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("REFINE_MATTE_SAM_CHECKPOINT", raising=False)
    setup = EditorSamSetup()
    assert not setup.available()
    assert setup.target_dir() == tmp_path / "sam"
    (tmp_path / "sam").mkdir()
    (tmp_path / "sam" / "sam_vit_b_01ec64.pth").write_bytes(b"x")
    assert setup.available()


def test_canvas_outlines_the_selection_and_refits_on_shrink(qtbot):
    canvas = MatteCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(sample_image())
    canvas.fit()
    big = canvas.zoom()
    canvas.resize(200, 150)
    qtbot.waitUntil(lambda: canvas.zoom() < big)
    assert canvas.zoom() * W <= 200
    sel = imaging.blank_mask(W, H)
    p = QtGui.QPainter(sel)
    p.fillRect(8, 6, 24, 30, QtGui.QColor(255, 255, 255))  # not the image's own rectangle
    p.end()
    canvas.set_selection(sel)
    assert canvas.selection_path().boundingRect() == QtCore.QRectF(8, 6, 24, 30)
    canvas.set_view_mode("alpha")  # no matte: the plain image; the outline is drawn over it
    shot = canvas.grab().toImage()
    edge = canvas.to_widget(QtCore.QPointF(8, 30)).toPoint()
    plain = {shot.pixel(canvas.to_widget(QtCore.QPointF(x, 30)).toPoint()) for x in (3, 12)}
    assert len(plain) == 1  # the image is one colour on both sides of that edge
    near = {shot.pixel(edge.x() + dx, edge.y()) for dx in range(-2, 3)}
    assert near - plain, "no outline drawn at the selection's edge"


def test_status_resets(qtbot):
    doc, adapter, client, panel = selection_host(qtbot)
    refine_and_wait(qtbot, panel)
    assert panel.status_label.text().startswith("Done")
    panel.reset_status()
    assert panel.status_label.text() == "Ready." and panel.error_text() == ""


def test_host_panel_outlines_the_selection_and_resets_on_a_new_document(qtbot):
    doc, adapter, client, panel = selection_host(qtbot)
    assert panel.canvas.selection_path().boundingRect() == QtCore.QRectF(16, 12, 32, 24)
    assert panel.band_label.text() == "±2 px" and "each side" in panel.band_slider.toolTip()
    refine_and_wait(qtbot, panel)
    assert panel.raw_alpha is not None
    adapter.document = Document([Layer("other", sample_image())])  # the host opened another file
    panel.refresh()
    assert panel.status_label.text() == "Ready." and panel.raw_alpha is None
    assert panel.canvas.selection_path() is None


def test_the_outline_follows_a_selection_the_host_replaced(qtbot):
    """Krita says nothing when the artist selects anew: the docker polls the selection's key
    (``panel_host.follow_selection``) and a refine shows the selection it refines."""
    from refine_matte import panel_host

    doc, adapter, client, panel = selection_host(qtbot)
    assert panel.canvas.selection_path().boundingRect() == QtCore.QRectF(16, 12, 32, 24)
    everything = imaging.blank_mask(W, H)
    everything.fill(QtGui.QColor(255, 255, 255))
    doc.selection = everything               # Select All, without a word to the panel
    keys = iter([("lasso",), ("lasso",), ("all",)])
    adapter.selection_key = lambda: next(keys)
    panel_host.follow_selection(panel)       # first poll: the outline is read again
    assert panel.canvas.selection_path().boundingRect() == QtCore.QRectF(0, 0, W, H)
    doc.selection = imaging.blank_mask(W, H)
    p = QtGui.QPainter(doc.selection)
    p.fillRect(4, 4, 10, 10, QtGui.QColor(255, 255, 255))
    p.end()
    panel_host.follow_selection(panel)       # the same key: not read again
    assert panel.canvas.selection_path().boundingRect() == QtCore.QRectF(0, 0, W, H)
    panel_host.follow_selection(panel)       # a new key: read
    assert panel.canvas.selection_path().boundingRect() == QtCore.QRectF(4, 4, 10, 10)
    doc.selection = everything               # and a refine reads what it refines
    refine_and_wait(qtbot, panel)
    assert panel.canvas.selection_path().boundingRect() == QtCore.QRectF(0, 0, W, H)


def test_editor_sam_download_uses_the_product_downloader(tmp_path, monkeypatch):
    import threading as th

    import diffmatte.weights.download as dl
    from refine_matte.editor.sam_setup import DownloadCancelled, EditorSamSetup

    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(tmp_path))
    seen = {}

    def fake_download(entry, dest_dir=None, progress=None, **kw):
        seen.update(name=entry.name, sha=entry.sha256, dest=dest_dir)
        for done in (0, 10, 20):
            progress(done, 20)
        return dest_dir / entry.filename

    monkeypatch.setattr(dl, "download", fake_download)
    got = []
    path = EditorSamSetup().download(lambda d, t: got.append((d, t)), th.Event())
    assert seen["name"] == "sam-vit-b" and seen["sha"] and seen["dest"] == tmp_path / "sam"
    assert path.endswith("sam_vit_b_01ec64.pth") and got[-1] == (20, 20)
    cancel = th.Event()
    cancel.set()
    with pytest.raises(DownloadCancelled):
        EditorSamSetup().download(lambda d, t: None, cancel)


def test_a_prior_only_engine_hides_the_diffusion_controls_and_shows_the_solve(qtbot):
    """Issue #23: the shipped model's matte is its prior: no diffusion runs, so Diffusion
    steps, Samples and Variation change nothing and are hidden once the engine says so
    (its info()), and the progress reads "Solving the matte… 42 % (about 1 s left)"."""
    import re

    doc = Document([Layer("layer", sample_image())])
    client = FakeEngineClient(step_delay=0.3, prior_only=True)
    panel = RefinePanel(EditorAdapter(doc), client=client)
    qtbot.addWidget(panel)
    panel.show()
    panel.refresh()
    diffusion = (panel.steps_spin, panel.samples_spin, panel.output_controls.variation_spin)
    assert not any(w.isHidden() for w in diffusion)      # nothing known about the engine yet
    texts = []
    orig = panel.canvas.set_progress_text
    panel.canvas.set_progress_text = lambda t: (texts.append(t), orig(t))
    scribble(qtbot, panel)
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        panel.refine()
        qtbot.waitUntil(lambda: re.fullmatch(r"Solving the matte… \d+ % \(about \d+ s left\)",
                                             panel.status_label.text()) is not None, timeout=5000)
    assert blocker.args == ["done"], panel.error_text()
    assert panel.prior_only and all(w.isHidden() for w in diffusion)
    labels = [panel._options_form.labelForField(w) for w in (panel.steps_spin, panel.samples_spin)]
    assert all(label.isHidden() for label in labels)
    solving = [t for t in texts if t]
    assert len(solving) >= 3 and all(re.fullmatch(r"Solving the matte… \d+ %", t) for t in solving)
    # the bar's per cent (the preparation filled its share first), up to the whole job's 100
    assert solving[0] != "Solving the matte… 0 %" and solving[-1] == "Solving the matte… 100 %"
    assert not any("step" in t for t in texts) and "step" not in panel.progress.text()
    assert panel.progress.value() == panel.progress.maximum()
    panel.set_engine_info({"prior_only": False})          # another model: they come back
    assert not any(w.isHidden() for w in diffusion) and not any(label.isHidden() for label in labels)


def test_solving_text_and_estimate():
    from refine_matte.progress_text import Estimate, solving_text, time_left

    assert solving_text(0.423) == "Solving the matte… 42 %"
    assert solving_text(0.5, 11.2) == "Solving the matte… 50 % (about 12 s left)"
    from refine_matte.progress_text import stage_text
    assert stage_text("Connecting… (once)", 0.216, 3) == "Connecting… 21 % (about 3 s left) (once)"
    assert stage_text("Refining", 1.5) == "Refining 100 %"
    assert [time_left(s) for s in (0, 59.5, 61, 95, 601)] == ["0 s", "1 min", "1 min 10 s", "1 min 40 s",
                                                             "11 min"]
    now = [100.0]
    est = Estimate(clock=lambda: now[0])
    assert est.update(0.1) is None                        # the first report only starts the clock
    now[0] = 104.0
    assert est.update(0.3) == pytest.approx(14.0)         # 0.2 in 4 s: 0.7 left takes 14 s
    assert est.text(0.3) == "Solving the matte… 30 % (about 14 s left)"
