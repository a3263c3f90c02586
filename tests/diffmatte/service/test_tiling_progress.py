"""Tile-level progress (#11): the engine's real work (encoder tiles, tile x step decodes)
reaches the service's events, the client and the panel's progress bar."""
from __future__ import annotations

import io
import os
import sys

import numpy as np
import pytest
from PIL import Image

from diffmatte.service import jobs
from diffmatte.service.server import RunningService
from conftest import ROOT

sys.path.insert(0, str(ROOT / "plugin"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from refine_matte.client import EngineClient  # noqa: E402
from refine_matte.panel_progress import BAR_MAX  # noqa: E402

TOKEN = "tile-progress-token"


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _inputs(h: int = 96, w: int = 256):
    """A vertical band across the border of two 128-px tiles."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    tri = np.zeros((h, w), np.uint8)
    tri[:, 128:] = 255
    tri[:, 122:134] = 128
    return image, tri


@pytest.fixture()
def service(tiny_engine, monkeypatch):
    monkeypatch.setenv("DIFFMATTE_TILE_SIZE", "64")
    tiny_engine.tile_size = 64          # several tiles, so that work != steps
    svc = RunningService(tiny_engine, TOKEN)
    try:
        yield svc
    finally:
        svc.stop()
        tiny_engine.tile_size = None


def test_progress_events_carry_the_engines_tile_work(service, tiny_engine):
    client = EngineClient(service.host, service.port, TOKEN, timeout=30)
    image, tri = _inputs()
    work, steps = [], []
    client.refine(_png(image), _png(tri), steps=3, seed=0, preview=False,
                  on_progress=lambda s, t, p: steps.append((s, t)), on_work=lambda d, t: work.append((d, t)))
    stats = tiny_engine.last_stats
    total = stats.encoder_tiles + stats.tiles * 3
    assert stats.tiles > 1 and total > 3
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert work[-1] == (total, total)                  # the last step's event: all work done
    assert all(t == total for _, t in work) and [d for d, _ in work] == sorted(d for d, _ in work)


def test_a_long_step_sends_work_events_between_steps(service, tiny_engine, monkeypatch):
    monkeypatch.setattr(jobs, "WORK_EVENT_INTERVAL", 0.0)  # every tile counts as "long"
    client = EngineClient(service.host, service.port, TOKEN, timeout=30)
    image, tri = _inputs()
    job = client.submit_refine(_png(image), _png(tri), steps=2, preview=False)
    events = list(client.events(job))
    work = [(e["done"], e["total"]) for e in events if e["type"] == "work"]
    stats = tiny_engine.last_stats
    total = stats.encoder_tiles + stats.tiles * 2
    assert len(work) >= stats.tiles and all(t == total and d < total for d, t in work)
    progress = [e for e in events if e["type"] == "progress"]
    assert [e["step"] for e in progress] == [1, 2] and progress[-1]["work_done"] == total


def test_panel_bar_follows_the_reported_work(qtbot):
    pytest.importorskip("pytestqt")
    from refine_matte.editor.adapter import EditorAdapter
    from refine_matte.editor.document import Document, Layer
    from refine_matte.panel import RefinePanel
    from refine_matte.qt import QtGui
    from doubles.plugin_fakes import FakeEngineClient

    class WorkClient(FakeEngineClient):
        """Reports 7 units of engine work per refine, like a service with tiles."""

        def refine(self, *args, on_work=None, **kw):
            for done in range(1, 8):
                if on_work is not None:
                    on_work(done, 7)
            return super().refine(*args, **kw)

    img = QtGui.QImage(64, 48, QtGui.QImage.Format.Format_ARGB32)
    img.fill(QtGui.QColor(30, 90, 200))
    panel = RefinePanel(EditorAdapter(Document([Layer("layer", img)])), client=WorkClient())
    qtbot.addWidget(panel)
    panel.show()
    panel.refresh()
    panel.set_source("scribbles")
    panel.canvas.strokes.clear()
    from refine_matte.canvas import Stroke

    panel.canvas.strokes.append(Stroke("fg", 6.0, [(28.0, 20.0), (36.0, 28.0)]))
    panel.canvas.strokes.append(Stroke("bg", 6.0, [(4.0, 4.0), (58.0, 4.0)]))
    panel.steps_spin.setValue(3)
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        panel.refine()
    assert blocker.args == ["done"], panel.error_text()
    assert panel.progress.value() == panel.progress.maximum() == BAR_MAX  # the work's 7 of 7: full


def _disc(h: int = 120, w: int = 160):
    """A disc on a textured background with a 12-px unknown ring (uint8 image and trimap)."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    rng = np.random.default_rng(1)
    image = np.where((r < 36)[..., None], [200, 80, 40], [30, 120, 210]) + rng.integers(0, 30, (h, w, 3))
    tri = np.where(r < 30, 255, np.where(r > 42, 0, 128)).astype(np.uint8)
    return image.astype(np.uint8), tri


def test_a_prior_only_refine_sends_the_solves_progress_as_work_events(monkeypatch):
    """Issue #23: the shipped model is prior-only, so its refine is one solve and no step
    event comes until the end; the solve's progress (thousandths) reaches the client as
    "work" events, from 0, rising through many values."""
    import diffmatte
    import diffmatte.prior.flows as flows

    engine = diffmatte.load_engine("default", device="cpu", precision="fp32")
    assert engine.info()["prior_only"]
    monkeypatch.setattr(jobs, "WORK_EVENT_INTERVAL", 0.0)
    monkeypatch.setattr(flows, "QUERY_CHUNK", 500)   # a large photo's chunks, on a small image
    svc = RunningService(engine, TOKEN)
    try:
        client = EngineClient(svc.host, svc.port, TOKEN, timeout=60)
        image, tri = _disc()
        job = client.submit_refine(_png(image), _png(tri), steps=10, preview=False)
        events = list(client.events(job))
    finally:
        svc.stop()
    work = [(e["done"], e["total"]) for e in events if e["type"] == "work"]
    from diffmatte.engine import PRIOR_UNITS

    assert work[0] == (0, PRIOR_UNITS) and all(t == PRIOR_UNITS for _, t in work)
    done = [d for d, _ in work]
    assert done == sorted(done) and len(set(done)) >= 20
    assert events[-1]["type"] == "done"
