"""The panel's bar over a whole refine (panel_progress.JobProgress, worker.PREP; issue #23):
it moves from the start (the layer read and encoded, the trimap's own progress), the
engine's refine fills the rest, and it never goes back."""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
from refine_matte.client import JobCancelled  # noqa: E402
from refine_matte.panel import RefinePanel  # noqa: E402
from refine_matte.panel_progress import BAR_MAX, PREP_SHARE  # noqa: E402
from refine_matte.progress_text import PREPARING, SOLVING, TRIMAP, stage_text  # noqa: E402
from refine_matte.worker import PREP, JobSpec, RefineJob  # noqa: E402
from doubles.plugin_fakes import FakeEngineClient  # noqa: E402
from test_panel import Document, EditorAdapter, Layer, sample_image, scribble  # noqa: E402


@pytest.mark.parametrize("prior_only", [True, False])
def test_the_bar_rises_from_the_preparation_on_and_never_goes_back(qtbot, prior_only):
    panel = RefinePanel(EditorAdapter(Document([Layer("layer", sample_image())])),
                        client=FakeEngineClient(step_delay=0.05, prior_only=prior_only))
    qtbot.addWidget(panel)
    panel.show()
    panel.refresh()
    scribble(qtbot, panel)
    values, stages, texts = [], [], []
    panel.progress.valueChanged.connect(values.append)
    panel.progress.valueChanged.connect(lambda v: texts.append((v, panel.status_label.text())))
    panel.jobStarted.connect(lambda: panel.job.signals.stage.connect(stages.append))
    with qtbot.waitSignal(panel.jobFinished, timeout=10000) as blocker:
        panel.refine()
    assert blocker.args == ["done"], panel.error_text()
    assert values == sorted(values) and values[-1] == panel.progress.maximum() == BAR_MAX
    prep = [v for v in values if v <= BAR_MAX * PREP_SHARE]
    # the layer read, its encoding, the trimap's progress (the fake reports half), the upload
    assert prep[0] == int(BAR_MAX * PREP_SHARE * PREP["start"]) and len(prep) >= 5
    assert int(BAR_MAX * PREP_SHARE * (PREP["trimap"][0] + PREP["trimap"][1]) / 2) in prep
    assert stages[:1] == [PREPARING] and TRIMAP in stages
    # the status names the work with the bar's per cent (issue #23: "Solving… 0 %" under a bar at 10 %)
    half = int(BAR_MAX * PREP_SHARE * (PREP["trimap"][0] + PREP["trimap"][1]) / 2)
    assert (half, stage_text(TRIMAP, half / BAR_MAX)) in texts
    named = [(v, t) for v, t in texts if "step" not in t]
    assert named and all(f"… {100 * v // BAR_MAX} %" in t for v, t in named), named
    if prior_only:
        assert any(t.startswith(SOLVING) for _, t in named)
        assert not any(t.startswith(SOLVING + " 0 %") for _, t in named)


def test_a_cancel_stops_the_encoding_of_a_large_layer(qtbot):
    from refine_matte.qt import QtGui

    image = QtGui.QImage(64, 4000, QtGui.QImage.Format.Format_RGB888)
    image.fill(0)
    job = RefineJob(JobSpec(image_png=image, source="selection"), FakeEngineClient)
    job.cancel_event.set()
    with pytest.raises(JobCancelled):
        job._encode()
    job = RefineJob(JobSpec(image_png=image, source="selection"), FakeEngineClient)
    job.cancel()
    with qtbot.waitSignal(job.signals.cancelled, timeout=5000):
        job.start()
    assert job.wait(5)


def test_the_preview_text_line_keeps_the_progress_in_a_narrow_panel(qtbot):
    """The preview's text line: view name and progress where they fit; in a narrow docker the
    progress alone, elided at its end only when even that is too wide (it was cut off at the
    view's name: "Result · Solving the m")."""
    from refine_matte.canvas_paint import hud_line
    from refine_matte.qt import QtGui, QtWidgets

    metrics = QtGui.QFontMetrics(QtWidgets.QApplication.font())
    view, progress = "Result over checkerboard", "Solving the matte… 42 % (about 12 s left)"
    wide = hud_line(metrics, view, progress, 2000)
    assert wide.startswith(view) and wide.endswith(progress)
    just_progress = metrics.horizontalAdvance(progress) + 2
    assert hud_line(metrics, view, progress, just_progress) == progress
    tight = hud_line(metrics, view, progress, just_progress // 2)
    assert tight.startswith("Solving") and tight.endswith("…") and metrics.horizontalAdvance(tight) <= just_progress // 2
    assert hud_line(metrics, view, "", 2000) == view
