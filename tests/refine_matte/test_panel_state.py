"""PanelState, the panel's model, without any widget (no QApplication is created)."""
from __future__ import annotations

import os
import sys
import threading
from typing import Any, Dict, List, Optional

import pytest
from conftest import ROOT

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(ROOT / "plugin"))

from refine_matte.panel_state import (BAND_RANGE, SAMPLES_RANGE, STEPS_RANGE, PanelState,  # noqa: E402
                                      band_text)
from refine_matte.qt import QtCore, QtWidgets  # noqa: E402


class DictSettings:
    """The two QSettings methods the state uses, over a dict."""

    def __init__(self, values: Optional[Dict[str, Any]] = None) -> None:
        self.values = dict(values or {})

    def setValue(self, key: str, value: Any) -> None:  # noqa: N802 (QSettings API)
        self.values[key] = value

    def value(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def recorder(signal: Any) -> List[Any]:
    seen: List[Any] = []
    signal.connect(seen.append)
    return seen


def test_the_state_needs_no_widgets():
    state = PanelState()
    assert not isinstance(state, QtWidgets.QWidget)
    assert (state.source(), state.steps(), state.samples(), state.band()) == ("sam", 10, 1, 0)
    assert state.band_or_none() is None and not state.is_busy()


def test_each_source_keeps_its_own_edge_mode():
    state = PanelState()
    edges = recorder(state.edgeChanged)
    sources = recorder(state.sourceChanged)
    state.set_source("selection")
    assert state.edge() == "rough" and state.has_edge_choice() and state.job_edge() == "rough"
    state.set_edge("auto")
    state.set_source("mask")
    assert state.edge() == "exact"
    state.set_source("selection")
    assert state.edge() == "auto" and state.job_edge() == "auto"
    state.set_source("scribbles")  # no choice: the mode shown stays, jobs get "exact"
    assert not state.has_edge_choice() and state.edge() == "auto" and state.job_edge() == "exact"
    state.set_edge("rough")  # shown, but not remembered for a source without a choice
    assert state.edges() == {"selection": "auto", "mask": "exact"}
    assert sources == ["selection", "mask", "selection", "scribbles"]
    assert edges == ["auto", "rough"]  # set_source changes the mode silently: the panel renders it
    state.set_source("scribbles")
    assert len(sources) == 4  # no signal for the same source


def test_unknown_source_and_edge_are_refused():
    state = PanelState()
    with pytest.raises(ValueError):
        state.set_source("lasso")
    with pytest.raises(ValueError):
        state.set_edge("soft")


@pytest.mark.parametrize("name, bounds", [("steps", STEPS_RANGE), ("samples", SAMPLES_RANGE),
                                          ("band", BAND_RANGE)])
def test_numbers_are_clamped_to_their_controls_range_and_signal_once(name, bounds):
    state = PanelState()
    seen = recorder(getattr(state, f"{name}Changed"))
    setter, getter = getattr(state, f"set_{name}"), getattr(state, name)
    setter(bounds[1] + 50)
    assert getter() == bounds[1]
    setter(bounds[1])  # unchanged: no signal
    setter(bounds[0] - 5)
    assert getter() == bounds[0]
    assert seen == [bounds[1], bounds[0]]


def test_band_text():
    assert band_text(0) == "auto" and band_text(12) == "±12 px"


def test_settings_round_trip_and_bad_values_are_ignored(tmp_path):
    state = PanelState()
    state.set_source("mask")
    state.set_edge("auto")
    state.set_steps(7)
    state.set_samples(3)
    state.set_band(25)
    saved = DictSettings()
    state.save_settings(saved)
    assert saved.values == {"source": "mask", "edge_selection": "rough", "edge_mask": "auto",
                            "steps": 7, "samples": 3, "band": 25}

    other = PanelState()
    other.restore_edges_and_source(saved)
    other.restore_numbers(saved)
    assert (other.source(), other.edge(), other.steps(), other.samples(), other.band()) == \
        ("mask", "auto", 7, 3, 25)

    bad = DictSettings({"source": "lasso", "edge_selection": "soft", "steps": "many",
                        "samples": 99, "band": None})
    third = PanelState()
    third.restore_edges_and_source(bad)
    third.restore_numbers(bad)
    assert (third.source(), third.edges()["selection"], third.steps(), third.samples(), third.band()) == \
        ("sam", "rough", 10, SAMPLES_RANGE[1], 0)

    # a real QSettings file (values come back as strings)
    qs = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    state.save_settings(qs)
    qs.sync()
    back = PanelState()
    back.restore_edges_and_source(QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat))
    back.restore_numbers(QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat))
    assert (back.source(), back.edge(), back.steps(), back.samples(), back.band()) == ("mask", "auto", 7, 3, 25)


class _Client:
    def __init__(self, alive: bool = True) -> None:
        self.is_alive = alive

    def alive(self) -> bool:
        return self.is_alive


def test_a_found_client_is_found_again_when_its_engine_died():
    made: List[_Client] = []

    def factory() -> _Client:
        made.append(_Client())
        return made[-1]

    state = PanelState(client_factory=factory)
    first = state.get_client()
    assert state.get_client() is first and len(made) == 1
    first.is_alive = False
    assert state.get_client() is made[1]
    state.drop_client()
    assert state.client is None and state.get_client() is made[2]


def test_an_injected_client_is_kept_even_when_it_says_it_is_dead():
    given = _Client(alive=False)
    state = PanelState(client=given, client_factory=lambda: pytest.fail("not called"))
    assert state.get_client() is given


class _Job:
    def __init__(self) -> None:
        self.cancel_event = threading.Event()
        self.running = True

    def is_running(self) -> bool:
        return self.running


def test_job_lifecycle_and_late_reports():
    state = PanelState()
    assert state.job_cancelled()  # no job: reports are dropped
    job = _Job()
    state.job_warning, state.work_seen = "old", True
    state.begin_job(job, spec="spec", target="doc-1")
    assert state.is_busy() and state.job is job and state.job_target == "doc-1"
    assert state.job_warning == "" and not state.work_seen and not state.job_cancelled()
    job.cancel_event.set()
    assert state.job_cancelled()
    state.end_job()
    assert not state.is_busy() and state.old_jobs == [job]  # kept alive while its thread runs
    job.running = False
    second = _Job()
    state.begin_job(second, spec="spec", target="doc-1")
    state.end_job()
    assert state.old_jobs == [second]


def test_engine_info():
    state = PanelState()
    assert state.prior_only is None
    assert not state.set_engine_info("not a dict") and state.prior_only is None
    assert state.set_engine_info({"prior_only": True}) and state.prior_only is True
    assert state.set_engine_info({}) and state.prior_only is False


def test_results_and_cutout_tokens():
    state = PanelState()
    token = state.next_cutout()
    state.remember_raw("alpha", "image", "doc-1")
    assert (state.raw_alpha, state.raw_image, state.raw_target) == ("alpha", "image", "doc-1")
    state.forget_result()  # a stale cut-out (token) is dropped, the raw matte forgotten
    assert state.raw_alpha is None and state.raw_image is None and state.cutout_token == token + 1
    assert state.next_cutout() == token + 2


def test_host_target_changes():
    state = PanelState()
    assert not state.note_host_target("doc-1")  # the first one is no change
    assert not state.note_host_target("doc-1")
    assert state.note_host_target("doc-2")
    assert not state.note_host_target("doc-2")
