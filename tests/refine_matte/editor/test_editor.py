"""Standalone mask editor: file I/O, the main window, undo, settings, screenshots."""
from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(ROOT / "plugin"))

pytest.importorskip("pytestqt")
from refine_matte import imaging  # noqa: E402
from refine_matte.editor import io as edio  # noqa: E402
from refine_matte.editor.app import EditorWindow  # noqa: E402
from refine_matte.editor.document import Document, Layer, MaskNode  # noqa: E402
from refine_matte.qt import QtCore, QtGui  # noqa: E402
from doubles.plugin_fakes import FakeEngineClient  # noqa: E402

Qt = QtCore.Qt
Fmt = QtGui.QImage.Format
W, H = 40, 30


def rgb_image(color=(30, 90, 200)) -> "QtGui.QImage":
    img = QtGui.QImage(W, H, Fmt.Format_ARGB32)
    img.fill(QtGui.QColor(*color))
    p = QtGui.QPainter(img)
    p.fillRect(10, 8, 20, 14, QtGui.QColor(240, 200, 40))
    p.end()
    return img


def wide_image() -> "QtGui.QImage":
    img = QtGui.QImage(W, H, Fmt.Format_RGBA64)
    img.fill(QtGui.QColor.fromRgba64(0x1234, 0x8001, 0xFFFE, 0xFFFF))
    return img


def grey_mask(level_inside=255) -> "QtGui.QImage":
    m = imaging.blank_mask(W, H)
    m.fill(0)
    p = QtGui.QPainter(m)
    p.fillRect(10, 8, 20, 14, QtGui.QColor(level_inside, level_inside, level_inside))
    p.end()
    return m.convertToFormat(Fmt.Format_Grayscale8)


def grey(img, x, y) -> int:
    return QtGui.qGray(img.pixel(x, y))


@pytest.fixture
def settings(tmp_path):
    return QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    win = EditorWindow(client=FakeEngineClient(), settings=settings)
    qtbot.addWidget(win)
    win.resize(900, 600)
    win.show()
    qtbot.waitExposed(win)
    return win


# ------------------------------------------------------------------ reading
@pytest.mark.parametrize("ext,bits", [("png", 8), ("jpg", 8), ("tif", 8)])
def test_open_8_bit_formats(tmp_path, ext, bits):
    path = tmp_path / f"a.{ext}"
    assert rgb_image().save(str(path))
    doc = edio.load_document(str(path))
    layer = doc.active_layer()
    assert (doc.width, doc.height, layer.bits, len(doc.layers)) == (W, H, bits, 1)
    c = QtGui.QColor(layer.image.pixel(20, 15))
    if ext == "jpg":
        assert abs(c.red() - 240) < 24 and abs(c.blue() - 40) < 24
    else:
        assert c.getRgb()[:3] == (240, 200, 40)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_open_16_bit_keeps_precision(tmp_path, ext):
    path = tmp_path / f"w.{ext}"
    assert wide_image().save(str(path))
    doc = edio.load_document(str(path))
    layer = doc.active_layer()
    assert layer.bits == 16 and layer.image.format() == Fmt.Format_RGBA64
    px = layer.image.pixelColor(3, 3).rgba64()
    assert (px.red(), px.green(), px.blue()) == (0x1234, 0x8001, 0xFFFE)


def test_open_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        edio.load_document(str(tmp_path / "missing.png"))
    (tmp_path / "x.bmpx").write_bytes(b"zz")
    with pytest.raises(ValueError, match="unsupported file type"):
        edio.load_document(str(tmp_path / "x.bmpx"))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        edio.load_document(str(tmp_path / "bad.png"))
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(ValueError, match="cannot read image"):
        edio.load_document(str(tmp_path / "bad.tif"))
    (tmp_path / "bad.ora").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an OpenRaster file"):
        edio.load_document(str(tmp_path / "bad.ora"))
    with zipfile.ZipFile(tmp_path / "nostack.ora", "w") as zf:
        zf.writestr("mimetype", "image/openraster")
    with pytest.raises(ValueError, match="stack.xml"):
        edio.load_document(str(tmp_path / "nostack.ora"))


def two_layer_doc() -> Document:
    bottom = Layer("background", rgb_image((10, 10, 10)))
    top = Layer("subject", rgb_image())
    top.masks.append(MaskNode("Refine Matte", grey_mask()))
    return Document([bottom, top], active=1)


def test_openraster_round_trip_keeps_layers_and_mask(tmp_path):
    doc = two_layer_doc()
    path = tmp_path / "out.ora"
    edio.save_layered(str(path), doc)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "mimetype" and zf.read("mimetype") == b"image/openraster"
        assert zf.getinfo("mimetype").compress_type == zipfile.ZIP_STORED
        assert "mergedimage.png" in names and "Thumbnails/thumbnail.png" in names
        assert b"svg:dst-in" in zf.read("stack.xml")
    back = edio.load_document(str(path))
    assert [l.name for l in back.layers] == ["background", "subject"]
    assert back.layers[0].masks == []
    assert back.layers[1].image.convertToFormat(Fmt.Format_ARGB32) == doc.layers[1].image
    mask = back.layers[1].mask().image
    assert grey(mask, 20, 15) == 255 and grey(mask, 2, 2) == 0
    # merged image: masked-out part of the top layer shows the bottom layer
    merged = doc.composite()
    assert QtGui.QColor(merged.pixel(2, 2)).getRgb()[:3] == (10, 10, 10)
    assert QtGui.QColor(merged.pixel(20, 15)).getRgb()[:3] == (240, 200, 40)


def test_openraster_with_offsets_and_nested_stacks(tmp_path):
    small = QtGui.QImage(4, 4, Fmt.Format_ARGB32)
    small.fill(QtGui.QColor(255, 0, 0))
    full = rgb_image()
    stack = ('<?xml version="1.0"?><image w="40" h="30"><stack>'
             '<stack name="g" x="2" y="1"><layer name="red" src="data/r.png" x="3" y="4"/></stack>'
             '<layer name="base" src="data/b.png" visibility="hidden"/></stack></image>')
    path = tmp_path / "in.ora"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "image/openraster")
        zf.writestr("stack.xml", stack)
        zf.writestr("data/r.png", imaging.qimage_to_png(small))
        zf.writestr("data/b.png", imaging.qimage_to_png(full))
    doc = edio.load_document(str(path))
    assert [l.name for l in doc.layers] == ["base", "red"]
    assert doc.layers[0].visible is False
    red = doc.layers[1].image
    assert red.size() == QtCore.QSize(W, H)
    assert red.pixelColor(5, 5).getRgb() == (255, 0, 0, 255)
    assert red.pixelColor(4, 5).alpha() == 0 and red.pixelColor(5, 4).alpha() == 0


def test_layered_tiff_round_trip(tmp_path):
    pytest.importorskip("tifffile")
    doc = two_layer_doc()
    path = tmp_path / "out.tif"
    edio.save_layered(str(path), doc)
    back = edio.load_document(str(path))
    assert [l.name for l in back.layers] == ["background", "subject"]
    assert back.layers[1].image.convertToFormat(Fmt.Format_ARGB32) == doc.layers[1].image
    assert back.layers[1].mask().image.convertToFormat(Fmt.Format_Grayscale8) == grey_mask()


def test_save_alpha_8_and_16_bit(tmp_path):
    np = pytest.importorskip("numpy")
    alpha = edio.array_to_qimage(np.full((H, W), 0x1234, np.uint16))
    edio.save_alpha(str(tmp_path / "a16.png"), alpha, bits=16)
    edio.save_alpha(str(tmp_path / "a8.tif"), alpha, bits=8)
    a16 = QtGui.QImage(str(tmp_path / "a16.png"))
    a8 = QtGui.QImage(str(tmp_path / "a8.tif"))
    assert a16.format() == Fmt.Format_Grayscale16
    assert a16.pixelColor(1, 1).rgba64().red() == 0x1234
    assert a8.depth() == 8 and grey(a8, 1, 1) == 0x12
    with pytest.raises(ValueError, match="use .png or .tif"):
        edio.save_alpha(str(tmp_path / "a.gif"), alpha)
    with pytest.raises(ValueError, match="no matte"):
        edio.save_alpha(str(tmp_path / "a.png"), QtGui.QImage())


def test_save_replaces_atomically_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.png"
    target.write_bytes(b"old")
    edio.save_alpha(str(target), grey_mask(), bits=8)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    # a failing write leaves the old file alone and no temp file behind
    doc = two_layer_doc()
    with pytest.raises(ValueError):
        edio.save_layered(str(tmp_path / "a.gif"), doc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_array_bridge_round_trip():
    np = pytest.importorskip("numpy")
    arr = (np.arange(W * H * 4, dtype=np.uint32).reshape(H, W, 4) * 37 % 65536).astype(np.uint16)
    back = edio.qimage_to_array(edio.array_to_qimage(arr), 4)
    assert back.dtype == np.uint16 and (back == arr).all()
    g8 = (np.arange(W * H).reshape(H, W) % 256).astype(np.uint8)
    assert (edio.qimage_to_array(edio.array_to_qimage(g8), 1) == g8).all()


def test_psd_layers_when_psd_tools_is_installed(tmp_path):
    pytest.importorskip("psd_tools")
    PIL = pytest.importorskip("PIL.Image")
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer

    psd = PSDImage.new("RGB", (W, H))
    psd.append(PixelLayer.frompil(PIL.new("RGB", (W, H), (10, 20, 30)), psd, "bg"))
    psd.append(PixelLayer.frompil(PIL.new("RGBA", (8, 6), (200, 40, 40, 255)), psd, "red",
                                  top=5, left=7))
    psd.save(str(tmp_path / "a.psd"))
    doc = edio.load_document(str(tmp_path / "a.psd"))
    assert [l.name for l in doc.layers] == ["bg", "red"] and doc.active == 1
    red = doc.layers[1].image
    assert red.size() == QtCore.QSize(W, H)
    assert red.pixelColor(7, 5).getRgb() == (200, 40, 40, 255)
    assert red.pixelColor(6, 5).alpha() == 0 and red.pixelColor(15, 11).alpha() == 0
    assert doc.layers[0].image.pixelColor(0, 0).getRgb() == (10, 20, 30, 255)


# ------------------------------------------------------------------ window
def drag(qtbot, canvas, points):
    wp = [canvas.to_widget(QtCore.QPointF(x, y)).toPoint() for x, y in points]
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=wp[0])
    for pt in wp[1:]:
        qtbot.mouseMove(canvas, pos=pt)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=wp[-1])


def undo_action(win):
    edit = [a for a in win.menuBar().actions() if a.text() == "&Edit"][0].menu()
    return [a for a in edit.actions() if "undo" in a.text().lower()][0]


def test_editor_open_scribble_refine_undo(tmp_path, window, qtbot):
    path = tmp_path / "img.png"
    rgb_image().save(str(path))
    win = window
    win.open_path(str(path))
    before = win.document.active_layer().image.copy()
    assert win.canvas.image() is not None and "img.png" in win.windowTitle()
    win.panel.set_source("scribbles")
    win.panel.set_tool("fg")
    win.canvas.set_brush_size(4)
    drag(qtbot, win.canvas, [(15, 12), (20, 15), (25, 18)])
    win.panel.set_tool("bg")
    drag(qtbot, win.canvas, [(2, 2), (38, 2)])
    assert win.undo_stack.count() == 2  # strokes are undoable too
    with qtbot.waitSignal(win.panel.jobFinished, timeout=10000) as blocker:
        qtbot.mouseClick(win.panel.refine_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["done"], win.panel.error_text()
    layer = win.document.active_layer()
    assert len(layer.masks) == 1 and layer.image == before
    assert "[1 mask]" in win.layer_list.item(0).text()
    assert win.canvas.alpha() is not None
    undo = undo_action(win)
    undo.trigger()  # one undo takes the mask node away
    assert layer.masks == [] and layer.image == before and win.canvas.alpha() is None
    assert len(win.canvas.strokes) == 2
    undo.trigger()
    assert [s.kind for s in win.canvas.strokes] == ["fg"]
    win.undo_stack.redo()
    assert [s.kind for s in win.canvas.strokes] == ["fg", "bg"]
    # saving: alpha needs a matte
    with pytest.raises(ValueError, match="no matte yet"):
        win.save_alpha(str(tmp_path / "x.png"))
    win.undo_stack.redo()
    win.save_alpha(str(tmp_path / "alpha.png"))
    win.save_cutout(str(tmp_path / "cut.png"))
    win.save_layered(str(tmp_path / "layered.ora"))
    assert QtGui.QImage(str(tmp_path / "alpha.png")).format() == Fmt.Format_Grayscale16
    assert len(edio.load_document(str(tmp_path / "layered.ora")).active_layer().masks) == 1


def test_editor_shortcut_keys_work_window_wide(tmp_path, window, qtbot):
    path = tmp_path / "img.png"
    rgb_image().save(str(path))
    window.open_path(str(path))
    window.activateWindow()
    window.layer_list.setFocus()  # not the canvas: keys still reach the panel
    qtbot.keyClicks(window.layer_list, "t")
    assert window.canvas.view_mode() == "trimap"
    qtbot.keyClicks(window.layer_list, "5")
    assert window.canvas.view_mode() == "alpha"


def test_editor_selection_sources(tmp_path, window, qtbot):
    path = tmp_path / "img.png"
    img = rgb_image()
    img.save(str(path))
    window.open_path(str(path))
    grey_mask().save(str(tmp_path / "sel.png"))
    window.load_selection(str(tmp_path / "sel.png"))
    assert window.document.selection is not None
    window.panel.set_source("selection")
    with qtbot.waitSignal(window.panel.jobFinished, timeout=10000) as blocker:
        window.panel.refine()
    assert blocker.args == ["done"]
    small = QtGui.QImage(5, 5, Fmt.Format_Grayscale8)
    small.fill(0)
    small.save(str(tmp_path / "small.png"))
    with pytest.raises(ValueError, match="5×5"):
        window.load_selection(str(tmp_path / "small.png"))
    window.clear_selection()
    assert window.document.selection is None
    window.selection_from_mask()
    assert grey(window.document.selection, 20, 15) == 255


def test_editor_layers_target_the_active_layer(tmp_path, window, qtbot):
    path = tmp_path / "two.ora"
    doc = two_layer_doc()
    doc.layers[1].masks.clear()
    edio.save_layered(str(path), doc)
    window.open_path(str(path))
    assert window.layer_list.count() == 2
    window.layer_list.setCurrentRow(1)  # bottom layer ("background")
    assert window.document.active == 0
    assert QtGui.QColor(window.canvas.image().pixel(2, 2)).getRgb()[:3] == (10, 10, 10)
    window.document.selection = grey_mask()
    window.panel.set_source("selection")
    with qtbot.waitSignal(window.panel.jobFinished, timeout=10000):
        window.panel.refine()
    assert len(window.document.layers[0].masks) == 1
    assert window.document.layers[1].masks == []


def test_settings_are_remembered(tmp_path, qtbot):
    ini = str(tmp_path / "s.ini")
    a = EditorWindow(client=FakeEngineClient(),
                     settings=QtCore.QSettings(ini, QtCore.QSettings.Format.IniFormat))
    qtbot.addWidget(a)
    a.panel.steps_spin.setValue(23)
    a.panel.samples_spin.setValue(3)
    a.canvas.set_view_mode("alpha")
    a.panel.set_source("mask")
    a.close()
    b = EditorWindow(client=FakeEngineClient(),
                     settings=QtCore.QSettings(ini, QtCore.QSettings.Format.IniFormat))
    qtbot.addWidget(b)
    assert b.panel.steps_spin.value() == 23
    assert b.panel.samples_spin.value() == 3
    assert b.canvas.view_mode() == "alpha"
    assert b.panel.source() == "mask"


def test_help_lists_shortcuts(window):
    text = window.shortcuts_text()
    for needed in ("[ / ]", "Esc", "Ctrl+Z", "On black", "Split before/after", "Ctrl+Return"):
        assert needed in text


def test_screenshots_one_per_view_mode(tmp_path, qtbot):
    from editor_screenshots import capture, capture_panel

    shots = capture(str(tmp_path), FakeEngineClient(step_delay=0.01), size=(700, 450))
    running = shots.pop("running")
    assert not QtGui.QImage(running).isNull()
    workflow = ("band_preview", "refine_brush", "refine_brush_trimap", "output_controls")
    assert sorted(shots) == sorted([m for m, _, _ in imaging.VIEW_MODES] + list(workflow))
    images = {m: QtGui.QImage(p) for m, p in shots.items()}
    assert all(not im.isNull() and im.width() == 700 for im in images.values())
    modes = list(images)
    for i, a in enumerate(modes):
        for b in modes[i + 1:]:
            assert images[a] != images[b], (a, b)
    docked = QtGui.QImage(capture_panel(str(tmp_path), FakeEngineClient(), size=(360, 900)))
    assert (docked.width(), docked.height()) == (360, 900)


def test_editor_main_opens_file_and_rejects_bad_args():
    from refine_matte.editor.app import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0


# ------------------------------------------------------------------ #13
def test_both_redo_shortcuts_and_status_reset_on_undo_and_open(tmp_path, window, qtbot):
    redo = window.redo_action
    keys = [k.toString() for k in redo.shortcuts()]
    assert "Ctrl+Shift+Z" in keys and "Ctrl+Y" in keys
    path = tmp_path / "img.png"
    rgb_image().save(str(path))
    window.open_path(str(path))
    window.load_selection(str(_sel_file(tmp_path)))
    window.panel.set_source("selection")
    with qtbot.waitSignal(window.panel.jobFinished, timeout=10000):
        window.panel.refine()
    assert window.panel.status_label.text().startswith("Done")
    undo_action(window).trigger()
    assert window.panel.status_label.text() == "Ready."
    window.panel.show_error("Error from before")
    window.open_path(str(path))
    assert window.panel.error_text() == "" and window.panel.status_label.text() == "Ready."
    assert window.canvas.selection_path() is None  # the new document has no selection


def _sel_file(tmp_path):
    p = tmp_path / "sel.png"
    grey_mask().save(str(p))
    return p


def test_selection_is_outlined_on_the_canvas(tmp_path, window):
    path = tmp_path / "img.png"
    rgb_image().save(str(path))
    window.open_path(str(path))
    window.load_selection(str(_sel_file(tmp_path)))
    assert window.canvas.selection_path().boundingRect() == QtCore.QRectF(10, 8, 20, 14)
    window.clear_selection()
    assert window.canvas.selection_path() is None


def test_settings_live_in_the_config_dir(tmp_path, monkeypatch, qtbot):
    from refine_matte.editor.app import default_settings

    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(tmp_path))
    s = default_settings()
    assert Path(s.fileName()) == tmp_path / "editor.ini"
    win = EditorWindow(client=FakeEngineClient())
    qtbot.addWidget(win)
    win.panel.output_controls.variation_spin.setValue(5)
    win.panel.output_controls.spins["feather"].setValue(2.5)
    win.close()
    assert (tmp_path / "editor.ini").is_file()
    again = EditorWindow(client=FakeEngineClient())
    qtbot.addWidget(again)
    assert again.panel.output_controls.seed() == 5
    assert again.panel.output_controls.edges()["feather"] == 2.5


class StartedClient(FakeEngineClient):
    """A fake client that looks like one the editor started (it has a process)."""

    def __init__(self, busy=False):
        super().__init__()
        self.process = object()
        self.busy = busy
        self.shut = False

    def info(self):
        return {"queue": {"running": "job1" if self.busy else None, "queued": 0}}

    def shutdown(self):
        self.shut = True


def test_editor_stops_the_engine_it_started(qtbot, settings, capsys):
    client = StartedClient()
    win = EditorWindow(client_factory=lambda: client, settings=settings)
    qtbot.addWidget(win)
    assert not win.stop_started_engine("idle")  # nothing connected yet
    win.panel.state.get_client()
    assert win.stop_started_engine("idle")
    assert client.shut and win.panel.state.client is None
    assert "unused" in win.statusBar().currentMessage() and "Stopped" in capsys.readouterr().err
    busy = StartedClient(busy=True)
    win2 = EditorWindow(client_factory=lambda: busy, settings=settings)
    qtbot.addWidget(win2)
    win2.panel.state.get_client()
    win2.close()
    assert not busy.shut  # another front end's job is running: left alone
    given = StartedClient()  # a client handed to the editor belongs to its caller: never stopped
    win3 = EditorWindow(client=given, settings=settings)
    qtbot.addWidget(win3)
    win3.close()
    assert not given.shut


def test_editor_cutout_is_the_cli_cutout(tmp_path, window, qtbot):
    """The editor's saved cut-out is diffmatte.finish.cutout's, pixel for pixel, 8 and 16 bit."""
    import numpy as np
    from PIL import Image

    from diffmatte.finish.cutout import finish
    from diffmatte.io.cutout_files import read_params

    for name, img in (("c8", rgb_image()), ("c16", wide_image())):
        path = tmp_path / f"{name}.png"
        img.save(str(path))
        window.open_path(str(path))
        layer = window.document.active_layer()
        mask = QtGui.QImage(W, H, Fmt.Format_Grayscale16)
        ramp = np.tile(np.linspace(0, 65535, W).astype(np.uint16), (H, 1))
        mask = edio.array_to_qimage(ramp)
        window.adapter.add_layer_mask(mask)
        out = tmp_path / f"{name}_cut.png"
        window.save_cutout(str(out))
        rgb = edio.qimage_to_array(layer.image, 4)[..., :3]
        _, expect = finish(rgb, ramp)
        if name == "c8":
            got = np.array(Image.open(out))
        else:
            got = edio.qimage_to_array(QtGui.QImage(str(out)), 4)
        assert got.dtype == expect.dtype and np.array_equal(got, expect), name
        assert read_params(out)["decontaminate"] == 1.0


def test_editor_cutout_keeps_the_icc_profile(tmp_path, window):
    import numpy as np
    from PIL import Image, ImageCms

    from diffmatte.io.cutout_files import read_icc

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "icc.png"
    Image.fromarray(np.full((H, W, 3), 120, np.uint8)).save(path, icc_profile=icc)
    window.open_path(str(path))
    window.adapter.add_layer_mask(grey_mask())
    window.save_cutout(str(tmp_path / "cut.png"))
    assert read_icc(tmp_path / "cut.png") == icc


def test_editor_premultiplied_cutout_option(tmp_path, window):
    import numpy as np
    from PIL import Image

    from diffmatte.io.cutout_files import read_params

    path = tmp_path / "img.png"
    rgb_image().save(str(path))
    window.open_path(str(path))
    window.adapter.add_layer_mask(grey_mask(level_inside=128))
    window.premultiplied_action.setChecked(True)
    window.panel.output_controls.decontaminate_check.setChecked(False)  # raw colours x alpha
    window.save_cutout(str(tmp_path / "pre.png"))
    got = np.array(Image.open(tmp_path / "pre.png")).astype(int)
    assert read_params(tmp_path / "pre.png")["premultiplied"] is True
    assert (got[..., :3] <= got[..., 3:4] + 1).all()
    assert abs(got[15, 20, 0] - round(240 * 128 / 255)) <= 2  # colour x alpha


# ----------------------------------------------------------- issue 24: editor defects
def _hue_distance(a: "QtGui.QColor", b: "QtGui.QColor") -> int:
    d = abs(a.hsvHue() - b.hsvHue()) % 360
    return min(d, 360 - d)


def test_strokes_are_visible_on_foliage_and_over_the_red_overlay(qtbot):
    """Foreground green vanished on foliage, background red in the overlay's red tint:
    now distinct hues, each far from green and red, with a dark outline."""
    from refine_matte.canvas import MatteCanvas, Stroke
    from refine_matte.strokes import COLORS as _COLORS, STROKE_OUTLINE

    foliage, overlay_red = QtGui.QColor(60, 140, 50), QtGui.QColor(230, 30, 40)
    assert _hue_distance(_COLORS["fg"], foliage) >= 60  # fg strokes go on the subject (foliage)
    assert _hue_distance(_COLORS["bg"], overlay_red) >= 60  # bg strokes lie in the red tint
    assert _hue_distance(_COLORS["bg"], foliage) >= 60 and _hue_distance(_COLORS["fg"], overlay_red) >= 45
    assert _hue_distance(_COLORS["fg"], _COLORS["bg"]) >= 90
    canvas = MatteCanvas()
    qtbot.addWidget(canvas)
    canvas.set_image(rgb_image((60, 140, 50)))
    canvas.add_stroke(Stroke("fg", 6, [(5, 15), (35, 15)]))
    over = canvas.scribble_overlay()
    edge = over.pixelColor(20, 15 - 4)  # just outside the 6 px brush: the outline
    assert edge.alpha() == 255 and max(edge.red(), edge.green(), edge.blue()) <= STROKE_OUTLINE.red() + 10
    assert over.pixelColor(20, 15).rgb() == _COLORS["fg"].rgb()


def test_view_label_says_what_is_shown_after_a_relaunch(tmp_path, qtbot):
    ini = str(tmp_path / "s.ini")
    a = EditorWindow(client=FakeEngineClient(), settings=QtCore.QSettings(ini, QtCore.QSettings.Format.IniFormat))
    qtbot.addWidget(a)
    a.canvas.set_view_mode("alpha")
    a.close()
    b = EditorWindow(client=FakeEngineClient(), settings=QtCore.QSettings(ini, QtCore.QSettings.Format.IniFormat))
    qtbot.addWidget(b)
    path = tmp_path / "img.png"
    rgb_image().save(str(path))
    b.open_path(str(path))
    assert b.canvas.view_mode() == "alpha"
    # no matte yet: the canvas shows the photo, and the label says so
    assert b.canvas.display_image() == b.canvas.image().convertToFormat(Fmt.Format_RGB32)
    assert b.panel.view_label.text() == "Alpha: no matte yet, showing the photo"
    assert b.canvas.hud_text == b.panel.view_label.text()
    b.canvas.set_alpha(grey_mask())
    assert b.panel.view_label.text() == "Alpha"


def test_saving_confirms_where_and_alpha_gets_the_cutouts_mode(tmp_path, window, qtbot, monkeypatch):
    import stat

    from refine_matte.qt import QtWidgets

    path = tmp_path / "img.png"
    rgb_image().save(str(path))
    window.open_path(str(path))
    window.document.active_layer().masks.append(MaskNode("m", grey_mask()))
    window._on_doc_changed()
    old = os.umask(0o022)
    try:
        for kind, name in (("alpha", "a.png"), ("cutout", "c.png")):
            monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                                staticmethod(lambda *a, n=name, **k: (str(tmp_path / n), "")))
            window._save_dialog(kind)
            assert window.panel.status_label.text().startswith("Saved the ")
            assert str(tmp_path / name) in window.panel.status_label.text()
            assert str(tmp_path / name) in window.statusBar().currentMessage()
    finally:
        os.umask(old)
    modes = {n: stat.S_IMODE((tmp_path / n).stat().st_mode) for n in ("a.png", "c.png")}
    assert modes == {"a.png": 0o644, "c.png": 0o644}


def test_an_error_does_not_move_the_panel_and_the_status_says_it(tmp_path, window, qtbot):
    path = tmp_path / "img.png"
    rgb_image().save(str(path))
    window.open_path(str(path))
    panel = window.panel
    combo_y = lambda: panel.source_combo.mapTo(panel, QtCore.QPoint(0, 0)).y()  # noqa: E731
    qtbot.wait(10)
    before = combo_y()
    panel.set_source("scribbles")
    assert not panel.refine()  # no scribbles: an error
    qtbot.wait(10)
    assert panel.error_label.isVisible()
    assert combo_y() == before
    assert panel.status_label.text().startswith("Error: Paint at least one foreground")
