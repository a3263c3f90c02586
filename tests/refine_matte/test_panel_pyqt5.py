"""The same panel (editor window, Krita adapter) under PyQt5, as embedded by Krita 5.x.

Both bindings cannot live in one process, so the check runs in a subprocess with
REFINE_MATTE_QT=pyqt5.  Skipped only when PyQt5 is not installed.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT


pytestmark = pytest.mark.skipif(importlib.util.find_spec("PyQt5") is None,
                                reason="PyQt5 is not installed")

SCRIPT = textwrap.dedent(r"""
    import sys, time
    from refine_matte.qt import API, QtCore, QtGui, QtWidgets
    assert API == "PyQt5", API
    assert "PyQt6.QtCore" not in sys.modules
    app = QtWidgets.QApplication(sys.argv[:1])
    from refine_matte import imaging
    from refine_matte.canvas import Stroke
    from refine_matte.editor.adapter import EditorAdapter
    from refine_matte.editor.document import Document, Layer
    from refine_matte.editor.app import EditorWindow
    from refine_matte.panel import RefinePanel
    from doubles.plugin_fakes import FakeEngineClient

    img = QtGui.QImage(64, 48, QtGui.QImage.Format.Format_ARGB32)
    img.fill(QtGui.QColor(30, 90, 200))
    doc = Document([Layer("layer", img)])
    adapter = EditorAdapter(doc)
    panel = RefinePanel(adapter, client=FakeEngineClient())
    panel.show()
    panel.refresh()
    for mode, _, _ in imaging.VIEW_MODES:
        panel.canvas.set_view_mode(mode)
        assert panel.canvas.display_image() is not None
    panel.set_source("scribbles")
    panel.canvas.add_stroke(Stroke("fg", 6, [(30, 20), (34, 26)]))
    panel.canvas.add_stroke(Stroke("bg", 6, [(4, 4), (60, 4)]))
    before = doc.active_layer().image.copy()
    outcome = []
    panel.jobFinished.connect(outcome.append)
    assert panel.refine(), panel.error_text()
    deadline = time.monotonic() + 20
    while not outcome and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    assert outcome == ["done"], (outcome, panel.error_text())
    assert len(doc.active_layer().masks) == 1 and doc.active_layer().image == before
    adapter.undo_stack.undo()
    assert doc.active_layer().masks == []
    shot = panel.grab()
    assert shot.width() > 0

    # editor file I/O under Qt 5: layered OpenRaster round trip and a 16-bit PNG
    import os
    from refine_matte.editor import io as edio
    adapter.undo_stack.redo()
    folder = os.path.dirname(sys.argv[1])
    ora = os.path.join(folder, "x.ora")
    edio.save_layered(ora, doc)
    back = edio.load_document(ora)
    assert len(back.active_layer().masks) == 1
    assert back.active_layer().image.convertToFormat(img.format()) == img
    wide = QtGui.QImage(8, 6, QtGui.QImage.Format.Format_RGBA64)
    wide.fill(QtGui.QColor.fromRgba64(0x1234, 0x8001, 0xFFFE, 0xFFFF))
    assert wide.save(os.path.join(folder, "w.png"))
    layer = edio.load_document(os.path.join(folder, "w.png")).active_layer()
    assert layer.bits == 16 and layer.image.pixelColor(1, 1).rgba64().red() == 0x1234

    # the Krita docker's adapter under Krita 5's binding, on the Krita 5.1 stand-in
    # (no createTransparencyMask: the selection + action route)
    from refine_matte.krita_adapter import KritaAdapter
    from doubles.plugin_fakes import FakeDocument, FakeKrita, FakeSelection
    kdoc = FakeDocument(8, 6, bytes((200, 90, 30, 255)) * 48, version="5.1")
    kdoc.setSelection(FakeSelection(bytes(255 if 2 <= i % 8 <= 5 else 0 for i in range(48))))
    kpanel = RefinePanel(KritaAdapter(FakeKrita(kdoc), selection_factory=FakeSelection),
                         client=FakeEngineClient())
    kpanel.set_source("selection")
    kpanel.band_slider.setValue(1)
    outcome = []
    kpanel.jobFinished.connect(outcome.append)
    assert kpanel.refine(), kpanel.error_text()
    deadline = time.monotonic() + 20
    while not outcome and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    assert outcome == ["done"], (outcome, kpanel.error_text())
    assert [m.name() for m in kdoc.layer.childNodes()] == ["Refine Matte"]

    win = EditorWindow(client=FakeEngineClient(),
                       settings=QtCore.QSettings(sys.argv[1], QtCore.QSettings.Format.IniFormat))
    win.show()
    win.close()
    print("PYQT5-OK", QtCore.PYQT_VERSION_STR)
""")


def test_panel_constructs_and_refines_under_pyqt5(tmp_path):
    env = dict(os.environ, REFINE_MATTE_QT="pyqt5", QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join([str(ROOT / "plugin"), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "s.ini")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PYQT5-OK 5." in proc.stdout
