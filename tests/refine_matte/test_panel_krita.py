"""KritaAdapter, the docker's engine discovery and the panel against the Krita stand-in.

The stand-in (tests/doubles/plugin_fakes.py: FakeKrita) reproduces what tests/hosts/krita.sh
observed in the real Krita 5.1.5, 5.3.4 and 6.0.4; those real hosts are tested by
that script, not here.
"""
from __future__ import annotations

import json
import os
import struct
import sys
import types

import pytest
from conftest import ROOT

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(ROOT / "plugin"))

pytest.importorskip("pytestqt")
from refine_matte import client as client_mod  # noqa: E402
from refine_matte.adapter import HostError, NoImageError  # noqa: E402
from refine_matte.krita_adapter import KritaAdapter  # noqa: E402
from refine_matte.krita_plugin import _dock_right  # noqa: E402
from refine_matte.panel import RefinePanel  # noqa: E402
from refine_matte.qt import QtGui  # noqa: E402
from doubles.plugin_fakes import (FakeDocument, FakeEngineClient, FakeKrita,  # noqa: E402
                                  FakeSelection)

W, H = 6, 4
Grey8 = QtGui.QImage.Format.Format_Grayscale8


def bgra8(rgb_of):
    return b"".join(bytes((b, g, r, 255)) for y in range(H) for x in range(W)
                    for r, g, b in [rgb_of(x, y)])


def subject(x, y):
    return (240, 200, 40) if 1 <= x <= 3 and 1 <= y <= 2 else (30, 90, 200)


def box(x0, y0, x1, y1):
    return bytes(255 if x0 <= x <= x1 and y0 <= y <= y1 else 0 for y in range(H) for x in range(W))


def grey(data: bytes) -> "QtGui.QImage":
    return QtGui.QImage(data, W, H, W, Grey8).copy()


def doc_and_adapter(version="5.3", **kw):
    doc = FakeDocument(W, H, bgra8(subject), version=version, **kw)
    return doc, KritaAdapter(FakeKrita(doc), selection_factory=FakeSelection)


def masks(doc):
    return [c for c in doc.layer.children if c.type() == "transparencymask"]


def test_reads_8_bit_bgra_pixels():
    _, adapter = doc_and_adapter()
    img = adapter.active_image()
    assert (img.width(), img.height()) == (W, H)
    assert img.pixelColor(2, 1).getRgb() == (240, 200, 40, 255)
    assert img.pixelColor(0, 0).getRgb() == (30, 90, 200, 255)


def test_reads_16_bit_pixels():
    data = b"".join(struct.pack("<4H", 0x1200, 0x3400, 0xAB00, 0xFFFF) for _ in range(W * H))
    doc = FakeDocument(W, H, data, depth="U16")
    img = KritaAdapter(FakeKrita(doc)).active_image()
    assert img.pixelColor(0, 0).getRgb() == (0xAB, 0x34, 0x12, 255)


def test_clear_errors_for_unusable_documents():
    with pytest.raises(NoImageError, match="open a document"):
        KritaAdapter(FakeKrita(None)).active_image()
    doc, adapter = doc_and_adapter()
    doc.layer.kind = "grouplayer"
    with pytest.raises(NoImageError, match="paint layer"):
        adapter.active_image()
    doc, adapter = doc_and_adapter(model="CMYKA")
    with pytest.raises(HostError, match="CMYKA U8"):
        adapter.active_image()


@pytest.mark.parametrize("version", ["5.1", "5.3"])
def test_first_refine_adds_one_mask_in_one_undo_step(version):
    doc, adapter = doc_and_adapter(version)
    doc.setSelection(FakeSelection(box(0, 0, 2, 2)))  # the artist's rough selection
    before = bytes(doc.layer.data)
    alpha = box(1, 1, 3, 2)
    assert adapter.add_layer_mask(grey(alpha)) is None
    assert [(m.name(), m.data) for m in masks(doc)] == [("Refine Matte", alpha)]
    assert bytes(doc.layer.data) == before
    assert doc.selection().data == box(0, 0, 2, 2)  # 5.1's action used it; it is put back
    assert len(doc.undo_stack) == 1
    doc.undo()
    assert masks(doc) == [] and bytes(doc.layer.data) == before


@pytest.mark.parametrize("version", ["5.1", "5.3"])
def test_active_mask_means_its_layer_and_a_second_refine_replaces_ours(version):
    doc, adapter = doc_and_adapter(version)
    adapter.add_layer_mask(grey(box(1, 1, 3, 2)))
    assert doc.activeNode().type() == "transparencymask"  # Krita activates the new mask
    assert adapter.active_image().pixelColor(2, 1).getRgb() == (240, 200, 40, 255)
    assert adapter.layer_mask() == grey(box(1, 1, 3, 2))
    note = adapter.add_layer_mask(grey(box(0, 0, 4, 3)))
    assert "Replaced the earlier 'Refine Matte' mask" in note
    assert [(m.name(), m.data) for m in masks(doc)] == [("Refine Matte", box(0, 0, 4, 3))]
    doc.undo()  # the new mask goes, then the earlier one comes back
    assert masks(doc) == []
    doc.undo()
    assert [m.data for m in masks(doc)] == [box(1, 1, 3, 2)]


def test_other_masks_are_switched_off_not_multiplied():
    doc, adapter = doc_and_adapter()
    own = doc.createTransparencyMask("Hand mask")
    own.setPixelData(box(0, 0, 5, 3), 0, 0, W, H)
    doc.layer.addChildNode(own, None)
    assert adapter.layer_mask() == grey(box(0, 0, 5, 3))  # the source for "Active layer's mask"
    note = adapter.add_layer_mask(grey(box(1, 1, 3, 2)))
    assert "Switched off the mask 'Hand mask'" in note
    assert [(m.name(), m.visible()) for m in masks(doc)] == [("Hand mask", False), ("Refine Matte", True)]
    doc.setActiveNode(doc.layer)
    assert adapter.layer_mask() == grey(box(1, 1, 3, 2))  # the topmost visible one


def test_without_any_mask_route_nothing_changes():
    doc, adapter = doc_and_adapter("5.1")
    adapter.add_layer_mask(grey(box(1, 1, 2, 2)))
    adapter._krita.action = lambda name: None  # kritarunner: no window, no actions
    with pytest.raises(HostError, match="neither createTransparencyMask nor"):
        adapter.add_layer_mask(grey(box(0, 0, 1, 1)))
    assert [m.data for m in masks(doc)] == [box(1, 1, 2, 2)]


def test_a_mask_that_did_not_take_the_matte_is_removed_again():
    doc, adapter = doc_and_adapter()
    make = doc.createTransparencyMask
    mask = make("x")
    mask.setSelection = lambda sel: None  # pixels silently dropped
    doc.__dict__["createTransparencyMask"] = lambda name: mask
    with pytest.raises(HostError, match="did not store the matte"):
        adapter.add_layer_mask(grey(box(1, 1, 2, 2)))
    assert masks(doc) == []


def test_size_mismatch_is_refused():
    _, adapter = doc_and_adapter()
    with pytest.raises(HostError, match="3x3"):
        adapter.add_layer_mask(QtGui.QImage(3, 3, Grey8))


def test_docker_position_under_both_enum_styles():
    qt6 = types.SimpleNamespace(DockPosition=types.SimpleNamespace(DockRight="right6"))
    qt5 = types.SimpleNamespace(DockRight="right5")
    assert _dock_right(qt6) == "right6" and _dock_right(qt5) == "right5"


def _refine(qtbot, panel):
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        assert panel.refine(), panel.error_text()
    return blocker.args[0]


def test_panel_refines_into_a_krita_mask_and_again_from_it(qtbot):
    doc, adapter = doc_and_adapter("5.1")
    doc.setSelection(FakeSelection(box(1, 1, 3, 2)))
    panel = RefinePanel(adapter, client=FakeEngineClient())
    qtbot.addWidget(panel)
    panel.set_source("selection")
    panel.band_slider.setValue(1)
    assert _refine(qtbot, panel) == "done"
    assert [m.name() for m in masks(doc)] == ["Refine Matte"]
    panel.set_source("mask")  # the new mask is active now: it means its layer
    assert _refine(qtbot, panel) == "done", panel.error_text()
    assert [m.name() for m in masks(doc)] == ["Refine Matte"]
    assert "Replaced the earlier" in panel.status_label.text()


def test_matte_is_kept_and_can_be_saved_when_krita_refuses_it(qtbot, tmp_path):
    doc, adapter = doc_and_adapter("5.1")
    adapter._krita.action = lambda name: None
    doc.setSelection(FakeSelection(box(1, 1, 3, 2)))
    panel = RefinePanel(adapter, client=FakeEngineClient())
    qtbot.addWidget(panel)
    panel.set_source("selection")
    panel.band_slider.setValue(1)
    assert _refine(qtbot, panel) == "failed"
    assert "Save matte" in panel.error_text() and panel.save_matte_button.isVisibleTo(panel)
    assert panel.last_alpha is not None and masks(doc) == []
    out = tmp_path / "matte.png"
    panel.save_matte(str(out))
    saved = QtGui.QImage(str(out))
    assert (saved.width(), saved.height()) == (W, H)
    assert saved.convertToFormat(Grey8) == panel.last_alpha.convertToFormat(Grey8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matte.png"]


class _Client(FakeEngineClient):
    def __init__(self, port):
        super().__init__()
        self.port, self.up = port, True

    def alive(self, timeout=2.0):
        return self.up


def test_panel_finds_the_engine_again_after_a_restart(qtbot):
    doc, adapter = doc_and_adapter()
    doc.setSelection(FakeSelection(box(1, 1, 3, 2)))
    made = []
    panel = RefinePanel(adapter, client_factory=lambda: made.append(_Client(len(made))) or made[-1])
    qtbot.addWidget(panel)
    panel.set_source("selection")
    assert _refine(qtbot, panel) == "done"
    assert _refine(qtbot, panel) == "done" and len(made) == 1  # alive: reused
    made[0].up = False  # the service went away (restarted on another port)
    assert _refine(qtbot, panel) == "done"
    assert len(made) == 2 and panel.state.client is made[1]


def test_engine_python_prefers_the_variable_then_the_recorded_file(tmp_path, monkeypatch):
    monkeypatch.delenv("REFINE_MATTE_PYTHON", raising=False)
    assert client_mod.engine_python(str(tmp_path)) is None
    (tmp_path / "engine.json").write_text(json.dumps({"python": str(tmp_path / "gone")}))
    assert client_mod.engine_python(str(tmp_path)) is None  # a removed venv is not used
    (tmp_path / "engine.json").write_text(json.dumps({"python": sys.executable}))
    assert client_mod.engine_python(str(tmp_path)) == sys.executable
    monkeypatch.setenv("REFINE_MATTE_PYTHON", "/opt/engine/bin/python")
    assert client_mod.engine_python(str(tmp_path)) == "/opt/engine/bin/python"


def test_default_factory_starts_the_recorded_engine_or_only_connects(monkeypatch):
    from refine_matte import panel as panel_mod
    calls = []
    monkeypatch.setattr(client_mod.EngineClient, "ensure_running",
                        classmethod(lambda cls, python=None, **kw: calls.append(("start", python))))
    monkeypatch.setattr(client_mod.EngineClient, "discover",
                        classmethod(lambda cls, *a, **kw: calls.append(("discover",))))
    monkeypatch.setattr(client_mod, "engine_python", lambda: "/venv/bin/python")
    panel_mod._default_client_factory()
    monkeypatch.setattr(client_mod, "engine_python", lambda: None)
    panel_mod._default_client_factory()
    assert calls == [("start", "/venv/bin/python"), ("discover",)]


def test_started_engine_does_not_inherit_the_hosts_python_settings(tmp_path, monkeypatch):
    seen = tmp_path / "env.json"
    monkeypatch.setenv("PYTHONHOME", "/usr/lib/krita-python")
    monkeypatch.setenv("PYTHONPATH", "/usr/lib/krita-python-libs")
    code = ("import json, os, sys; json.dump({k: os.environ.get(k) for k in "
            "('PYTHONHOME', 'PYTHONPATH')}, open(sys.argv[1], 'w')); sys.exit(3)")
    with pytest.raises(client_mod.EngineNotRunning, match="exited with code 3"):
        client_mod.EngineClient.ensure_running(command=[sys.executable, "-c", code, str(seen)],
                                               config=str(tmp_path / "cfg"), timeout=30)
    assert json.loads(seen.read_text()) == {"PYTHONHOME": None, "PYTHONPATH": None}


# ------------------------------------------------------------ issue 24: docker defects
def test_empty_or_tiny_selection_is_a_clear_error_and_adds_no_mask(qtbot):
    doc, adapter = doc_and_adapter()
    doc.setSelection(FakeSelection(bytes(W * H)))  # all zero
    panel = RefinePanel(adapter, client=FakeEngineClient())
    qtbot.addWidget(panel)
    panel.set_source("selection")
    assert not panel.refine()
    assert "selection is empty" in panel.error_text() and masks(doc) == []
    # a 4 x 4 px selection on a 100 x 100 photo
    big_w = big_h = 100
    doc = FakeDocument(big_w, big_h, bytes([40, 90, 200, 255]) * (big_w * big_h))
    adapter = KritaAdapter(FakeKrita(doc), selection_factory=FakeSelection)
    doc.setSelection(FakeSelection(bytes(255 if 10 <= x < 14 and 10 <= y < 14 else 0
                                         for y in range(big_h) for x in range(big_w))))
    panel = RefinePanel(adapter, client=FakeEngineClient())
    qtbot.addWidget(panel)
    panel.set_source("selection")
    assert not panel.refine()
    assert "only 16 px" in panel.error_text()
    assert [c for c in doc.layer.children] == []


class _EmptyMatteClient(FakeEngineClient):
    def refine(self, image_png, trimap_png, *args, **kwargs):
        super().refine(image_png, trimap_png, *args, **kwargs)
        from refine_matte import imaging
        return imaging.qimage_to_png(imaging.blank_mask(W, H))


def test_an_empty_matte_is_not_added_as_a_mask(qtbot):
    doc, adapter = doc_and_adapter()
    doc.setSelection(FakeSelection(box(1, 1, 3, 2)))
    panel = RefinePanel(adapter, client=_EmptyMatteClient())
    qtbot.addWidget(panel)
    panel.set_source("selection")
    assert _refine(qtbot, panel) == "failed"
    assert "matte is empty" in panel.error_text() and masks(doc) == []


def test_a_mask_switched_off_for_the_refine_comes_back_on_undo():
    doc, adapter = doc_and_adapter()
    own = doc.createTransparencyMask("Hand mask")
    own.setPixelData(box(0, 0, 5, 3), 0, 0, W, H)
    doc.layer.addChildNode(own, None)
    doc.undo_stack.clear()
    assert "Undo switches it back on" in adapter.add_layer_mask(grey(box(1, 1, 3, 2)))
    assert own.visible() is False
    assert adapter.sync_masks() is None  # nothing changed yet
    doc.undo()  # removes the Refine Matte mask (setVisible was no undo step)
    assert "'Hand mask' back on" in adapter.sync_masks()
    assert own.visible() is True and [m.name() for m in masks(doc)] == ["Hand mask"]
    # a second refine replacing the first keeps the hand mask off until that is undone
    adapter.add_layer_mask(grey(box(1, 1, 3, 2)))
    adapter.add_layer_mask(grey(box(0, 0, 3, 2)))
    assert own.visible() is False
    doc.undo()
    adapter.sync_masks()
    assert own.visible() is True


def test_selection_source_uses_krita_s_word_and_keeps_its_id(qtbot):
    _, adapter = doc_and_adapter()
    panel = RefinePanel(adapter, client=FakeEngineClient())
    qtbot.addWidget(panel)
    labels = [panel.source_combo.itemText(i) for i in range(panel.source_combo.count())]
    assert "Selection" in labels and "Host selection" not in labels
    panel.set_source("selection")
    assert panel.source() == "selection" and panel.source_combo.currentText() == "Selection"


def _max_text_contrast(label) -> float:
    from refine_matte.hint import contrast_ratio
    img = label.grab().toImage()
    bg = label.palette().color(QtGui.QPalette.ColorRole.Window)
    best = 1.0
    for y in range(0, img.height()):
        for x in range(0, img.width()):
            best = max(best, contrast_ratio(img.pixelColor(x, y), bg))
    return best


@pytest.mark.parametrize("window", [(49, 49, 49), (239, 239, 239)])  # Krita's dark theme, a light one
def test_trimap_source_hint_is_legible_on_dark_and_light_themes(qtbot, window):
    panel = RefinePanel(None, client=FakeEngineClient())
    qtbot.addWidget(panel)
    panel.setPalette(QtGui.QPalette(QtGui.QColor(*window)))  # Qt derives Mid, Text, ... from it
    panel.resize(360, 900)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.hint_label.text()
    assert _max_text_contrast(panel.hint_label) >= 4.5


def test_the_selection_key_follows_krita_selection():
    """Krita has no selection signal: the docker polls the selection's bounds."""
    doc, adapter = doc_and_adapter()
    assert adapter.selection_key() is None
    doc.setSelection(FakeSelection(box(1, 1, 3, 2)))
    first = adapter.selection_key()
    assert first == (1, 1, 3, 2)
    doc.setSelection(FakeSelection(box(0, 0, W - 1, H - 1)))   # Select All
    assert adapter.selection_key() == (0, 0, W, H) != first
