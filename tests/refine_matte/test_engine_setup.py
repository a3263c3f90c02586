"""First run inside Krita: the docker finds an installed engine, or sets one up from a
Refine Matte folder with a progress dialog (refine_matte.engine_setup)."""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from conftest import ROOT

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(ROOT / "plugin"))
pytest.importorskip("pytestqt")

from refine_matte import client as client_mod  # noqa: E402
from refine_matte import engine_setup  # noqa: E402
from refine_matte import service_files  # noqa: E402

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX shell scripts stand in for pythons")


def script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_candidates_come_from_env_path_command_and_usual_folders(tmp_path):
    home = tmp_path / "home"
    venv_py = script(home / "Downloads" / "refine-matte-main" / ".venv" / "bin" / "python", "exit 0")
    forced = script(tmp_path / "forced" / "python", "exit 0")
    cmd_py = script(tmp_path / "venv2" / "bin" / "python", "exit 0")
    cmd = tmp_path / "venv2" / "bin" / "diffmatte"
    cmd.write_text(f"#!{cmd_py}\nimport sys\n")
    got = engine_setup.candidate_pythons(env={"REFINE_MATTE_PYTHON": str(forced)}, home=str(home),
                                         which=lambda name: str(cmd) if name == "diffmatte" else None)
    assert got == [str(forced), str(cmd_py), str(venv_py)]


def test_find_engine_takes_the_first_that_works_and_record_is_what_the_client_reads(tmp_path, monkeypatch):
    bad = script(tmp_path / "a" / "python", "exit 1")
    good = script(tmp_path / "b" / "python", "exit 0")
    assert engine_setup.find_engine([str(bad), str(good)]) == str(good)
    assert engine_setup.find_engine([str(bad)]) is None
    monkeypatch.delenv("REFINE_MATTE_PYTHON", raising=False)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    assert client_mod.engine_python(str(pkg)) is None
    path = engine_setup.record_engine(str(good), str(pkg))
    assert json.loads(Path(path).read_text()) == {"python": str(good)}
    assert client_mod.engine_python(str(pkg)) == str(good)


def _bar(qtbot, tmp_path, **kw):
    kw.setdefault("discover", lambda: (_ for _ in ()).throw(client_mod.EngineNotRunning("none")))
    bar = engine_setup.EngineBar(package_dir=str(tmp_path / "pkg"), **kw)
    (tmp_path / "pkg").mkdir(exist_ok=True)
    qtbot.addWidget(bar)
    return bar


def test_first_run_records_a_found_engine_without_asking(qtbot, tmp_path, monkeypatch):
    monkeypatch.delenv("REFINE_MATTE_PYTHON", raising=False)
    found = script(tmp_path / "venv" / "bin" / "python", "exit 0")
    messages = []
    bar = _bar(qtbot, tmp_path, finder=lambda: str(found),
               ask_folder=lambda: pytest.fail("must not ask when an engine was found"))
    bar.message.connect(messages.append)
    assert bar.check() == str(found)
    assert not bar.isVisibleTo(bar.parentWidget() or bar) and "Found" in messages[-1]
    assert client_mod.engine_python(str(tmp_path / "pkg")) == str(found)


def _fake_release(tmp_path: Path) -> Path:
    """A Refine Matte folder whose installer makes .venv/bin/python (a stand-in)."""
    folder = tmp_path / "Refine-Matte"
    (folder / "diffmatte").mkdir(parents=True)
    (folder / "pyproject.toml").write_text("[project]\n")
    (folder / "installer").mkdir()
    (folder / "installer" / "install.py").write_text(
        "import os, sys, time\n"
        "print('creating virtual environment .venv', flush=True)\n"
        "os.makedirs('.venv/bin', exist_ok=True)\n"
        "open('.venv/bin/python', 'w').write('#!/bin/sh\\nexit 0\\n')\n"
        "os.chmod('.venv/bin/python', 0o755)\n"
        "print('+ pip install -e .', flush=True)\n")
    return folder


def test_set_up_runs_the_folders_installer_in_a_progress_dialog_and_records_the_venv(qtbot, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.delenv("REFINE_MATTE_PYTHON", raising=False)
    folder = _fake_release(tmp_path)
    bar = _bar(qtbot, tmp_path, finder=lambda: None, ask_folder=lambda: str(folder),
               system_python=lambda: sys.executable)
    assert bar.check() is None and bar.isVisibleTo(bar.parentWidget() or bar)
    ready = []
    bar.engineReady.connect(ready.append)
    assert bar.setup_engine()
    dialog = bar.dialog
    assert dialog.isVisible() and dialog.maximum() == 0  # a busy bar while the installer runs
    qtbot.waitUntil(lambda: bool(ready), timeout=30000)
    venv_py = str(folder / ".venv" / "bin" / "python")
    assert ready == [venv_py]
    assert client_mod.engine_python(str(tmp_path / "pkg")) == venv_py
    assert any("pip install" in line for line in dialog.output)
    assert not dialog.isVisible() and not bar.isVisibleTo(bar.parentWidget() or bar)


def test_set_up_failures_say_why(qtbot, tmp_path, monkeypatch):
    monkeypatch.delenv("REFINE_MATTE_PYTHON", raising=False)
    messages = []
    not_ours = tmp_path / "photos"
    not_ours.mkdir()
    bar = _bar(qtbot, tmp_path, finder=lambda: None, ask_folder=lambda: str(not_ours),
               system_python=lambda: sys.executable)
    bar.message.connect(messages.append)
    assert not bar.setup_engine() and "not a Refine Matte folder" in messages[-1]
    folder = _fake_release(tmp_path)
    (folder / "installer" / "install.py").write_text("import sys\nprint('no network', flush=True)\nsys.exit(1)\n")
    bar._ask_folder = lambda: str(folder)
    assert bar.setup_engine()
    qtbot.waitUntil(lambda: "failed" in messages[-1], timeout=30000)
    assert "no network" in messages[-1] and "exit 1" in messages[-1]
    assert client_mod.engine_python(str(tmp_path / "pkg")) is None
    bar._system_python = lambda: None
    assert not bar.setup_engine() and "No Python 3.10" in messages[-1]


def test_the_krita_docker_shows_the_engine_bar_when_no_engine_is_found(qtbot, tmp_path, monkeypatch):
    """krita_plugin.register() with a stand-in `krita` module: the docker holds the bar
    above the panel and checks for an engine once it exists."""
    import types

    from refine_matte import krita_plugin
    from refine_matte.qt import QtWidgets
    from doubles.plugin_fakes import FakeKrita

    made = {}

    class Factory:
        def __init__(self, ident, where, cls):
            made["cls"] = cls

    class Instance:
        def addDockWidgetFactory(self, factory):  # noqa: N802
            made["factory"] = factory

    fake_krita = FakeKrita(None)
    fake = types.SimpleNamespace(
        DockWidget=QtWidgets.QDockWidget, DockWidgetFactory=Factory,
        DockWidgetFactoryBase=types.SimpleNamespace(DockRight=2),
        Krita=types.SimpleNamespace(instance=lambda: made.get("krita", Instance())))
    monkeypatch.setitem(sys.modules, "krita", fake)
    monkeypatch.delenv("REFINE_MATTE_PYTHON", raising=False)
    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setattr(engine_setup, "find_engine", lambda: None)
    monkeypatch.setattr(service_files, "ENGINE_FILE", "engine-absent-in-tests.json")
    krita_plugin.register()
    made["krita"] = fake_krita  # KritaAdapter() asks Krita.instance() for documents
    docker = made["cls"]()
    qtbot.addWidget(docker)
    docker.show()
    qtbot.waitUntil(lambda: docker.engine_bar.isVisible(), timeout=5000)
    assert docker.engine_bar.setup_button.text() == "Set up the engine…"
    assert docker.panel.isVisible()
