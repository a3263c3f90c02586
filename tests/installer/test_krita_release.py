"""The Krita release zip, a zip of the whole repository, and the host scenario plugin.

Krita's *Tools > Scripts > Import Python Plugin from File* (plugin_importer.py, Krita
5.1-6.0) finds plugins in a zip like this: every ``*.desktop`` file anywhere in the
archive names a module (``X-KDE-Library``); the module is a *folder entry* ending in
``/<name>/`` that holds an ``__init__.py``; both are extracted into ``pykrita``.
``krita_importer_plugins`` below follows that strategy so the tests see what Krita sees.
"""
from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

_spec = importlib.util.spec_from_file_location("refine_matte_krita_installer_zip", ROOT / "installer" / "krita.py")
krita = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(krita)


def krita_importer_plugins(zip_path: Path) -> dict:
    """{module name: (desktop entry, module folder entry)} as Krita's importer finds them."""
    zf = zipfile.ZipFile(zip_path)
    names = zf.namelist()
    found = {}
    for desktop in (n for n in names if n.endswith(".desktop")):
        cfg = configparser.ConfigParser()
        cfg.read_string(zf.read(desktop).decode("utf-8"))
        name = cfg["Desktop Entry"]["X-KDE-Library"]
        assert cfg["Desktop Entry"]["Name"]
        for entry in names:
            if (entry.endswith("/%s/" % name) or entry == "%s/" % name) and entry + "__init__.py" in names:
                found[name] = (desktop, entry)
                break
    return found


def krita_importer_extract(zip_path: Path, pykrita: Path) -> None:
    """Extract every plugin found the way Krita's importer does."""
    zf = zipfile.ZipFile(zip_path)
    pykrita.mkdir(parents=True, exist_ok=True)
    for name, (desktop, module) in krita_importer_plugins(zip_path).items():
        (pykrita / f"{name}.desktop").write_bytes(zf.read(desktop))
        for entry in zf.namelist():
            if entry.startswith(module) and not entry.endswith("/"):
                dest = pykrita / name / entry[len(module):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(zf.read(entry))


def test_release_zip_is_one_plugin_at_the_top_without_test_code(tmp_path):
    out = tmp_path / "dist" / "refine-matte-krita.zip"
    assert krita.main(["--zip", str(out)]) == 0
    names = zipfile.ZipFile(out).namelist()
    assert krita_importer_plugins(out) == {"refine_matte": ("refine_matte.desktop", "refine_matte/")}
    assert {n.split("/")[0] for n in names} == {"refine_matte.desktop", "refine_matte"}
    assert "refine_matte/editor/" in names and "refine_matte/editor/__init__.py" in names
    assert not [n for n in names if "testing" in n or "screenshots" in n or "__pycache__" in n
                or n.endswith((".pyc", "engine.json")) or "rm_host_scenario" in n]
    with zipfile.ZipFile(out) as zf:  # no test double under any name (they live in tests/doubles)
        assert not [n for n in names if n.endswith(".py") and b"class Fake" in zf.read(n)]
    # What Krita's importer extracts is a complete bundle (the same check installer/krita.py makes)
    krita_importer_extract(out, tmp_path / "pykrita")
    package, desktop = krita.find_bundle(tmp_path / "pykrita")
    assert krita.bundle_version(package) == krita.bundle_version(ROOT / "plugin" / "refine_matte")
    assert sorted(p.name for p in (tmp_path / "pykrita").iterdir()) == ["refine_matte", "refine_matte.desktop"]


def test_release_zip_package_imports_without_the_test_doubles(tmp_path):
    out = tmp_path / "rm.zip"
    krita.build_zip(ROOT / "plugin", out, say=lambda _m: None)
    krita_importer_extract(out, tmp_path / "pykrita")
    code = ("import refine_matte, refine_matte.panel, refine_matte.krita_adapter, refine_matte.engine_setup;"
            "print(refine_matte.__file__)")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(tmp_path / "pykrita"))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().startswith(str(tmp_path / "pykrita"))


def test_a_zip_of_the_whole_repository_imports_only_refine_matte(tmp_path):
    """What GitHub's "Download ZIP" gives: every tracked file under one top folder, with
    folder entries. The host scenario's description is a .desktop.in, so it is no plugin."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    res = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip("git ls-files failed: " + res.stderr)
    files = [f for f in res.stdout.splitlines() if (ROOT / f).is_file()]
    assert "tests/hosts/scenario/rm_host_scenario/__init__.py" in files
    out = tmp_path / "repo.zip"
    with zipfile.ZipFile(out, "w") as zf:
        dirs = set()
        for f in files:
            parts = f.split("/")[:-1]
            for i in range(len(parts) + 1):
                dirs.add("refine-matte-main/" + "".join(p + "/" for p in parts[:i]))
        for d in sorted(dirs):
            zf.writestr(d, b"")
        for f in files:
            zf.write(ROOT / f, "refine-matte-main/" + f)
    assert list(krita_importer_plugins(out)) == ["refine_matte"]


def _load_scenario(monkeypatch, calls):
    """tests/hosts/scenario/rm_host_scenario with a stand-in ``krita`` module."""
    class Notifier:
        class _Sig:
            def connect(self, fn):
                calls.append(("windowCreated.connect", fn))
        windowCreated = _Sig()

    class FakeKrita:
        @staticmethod
        def instance():
            return FakeKrita()

        def notifier(self):
            return Notifier()

        def addExtension(self, ext):
            calls.append(("addExtension", ext))

    class Extension:
        def __init__(self, parent):
            pass

    monkeypatch.setitem(sys.modules, "krita", types.SimpleNamespace(Extension=Extension, Krita=FakeKrita))
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "hosts" / "scenario"))
    for mod in [m for m in sys.modules if m.startswith("rm_host_scenario")]:
        monkeypatch.delitem(sys.modules, mod)
    import rm_host_scenario
    return rm_host_scenario


def test_host_scenario_enabled_in_an_ordinary_krita_stays_idle(monkeypatch):
    """Enabled outside tests/hosts/krita.sh it used to raise KeyError: 'RM_PHOTO' and end Krita
    at every start (the scenario calls os._exit)."""
    monkeypatch.delenv("RM_PHOTO", raising=False)
    monkeypatch.delenv("RM_OUT", raising=False)
    calls = []
    pkg = _load_scenario(monkeypatch, calls)
    ext = [c[1] for c in calls if c[0] == "addExtension"][0]
    ext.setup()
    assert not [c for c in calls if c[0] == "windowCreated.connect"]
    exits = []
    monkeypatch.setattr(os, "_exit", exits.append)
    assert pkg.main() is None and exits == []
    # started by the host script, it does run
    monkeypatch.setenv("RM_PHOTO", "/x/photo.png")
    monkeypatch.setenv("RM_OUT", "/x/out")
    ext.setup()
    assert [c for c in calls if c[0] == "windowCreated.connect"]


def test_repository_has_no_desktop_file_but_the_plugins():
    desktops = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.desktop")
                      if ".git" not in p.parts and ".venv" not in p.parts)
    assert desktops == ["plugin/refine_matte.desktop"]


_ANSWER_DIALOGS = r"""
import os, sys, types
class _K:  # the package's __init__ registers an extension; the scenario module needs no Krita
    @staticmethod
    def instance():
        return types.SimpleNamespace(addExtension=lambda ext: None)
class _E:
    def __init__(self, parent):
        pass
sys.modules["krita"] = types.SimpleNamespace(Extension=_E, Krita=_K)
sys.path.insert(0, sys.argv[1])
os.environ.update(RM_OUT=sys.argv[2], RM_PHASE="import")
from rm_host_scenario import scenario as sc
QtCore, QtWidgets = sc.QtCore, sc.QtWidgets
app = QtWidgets.QApplication([])
zip_path = os.path.join(sys.argv[2], "refine-matte-krita.zip")
open(zip_path, "wb").close()
answerer = sc.DialogAnswerer(zip_path)
answerer.timer.start()
# what Krita 5.1's importer does (Krita 6's FileDialog wraps a QFileDialog too)
picked = QtWidgets.QFileDialog.getOpenFileName(None, "Import Plugin", os.path.expanduser("~"), "Zip Archives (*.zip)",
                                               options=QtWidgets.QFileDialog.Option.DontUseNativeDialog)[0]
B = QtWidgets.QMessageBox.StandardButton
reply = QtWidgets.QMessageBox.question(None, "Activate Plugins?", "<ul><li>Refine Matte</li></ul>"
                                       "<p><strong>Enable plugins now? (Requires restart)</strong></p>", B.Yes | B.No)
other = QtWidgets.QMessageBox.question(None, "Overwrite Plugin", 'The plugin "Refine Matte" already exists.',
                                       B.Yes | B.No, B.No)
print(picked == zip_path, reply == B.Yes, [d[0] for d in answerer.seen], other == B.No)
"""


def test_the_import_phase_answers_the_importers_dialogs_as_a_user_would(tmp_path):
    """tests/hosts/krita.sh --zip's first Krita start (RM_PHASE=import) types the zip into the
    importer's file dialog, answers Yes to "Enable plugins now?" and records any other box (here
    against plain Qt dialogs, offscreen)."""
    code = subprocess.run([sys.executable, "-c", _ANSWER_DIALOGS, str(ROOT / "tests" / "hosts" / "scenario"),
                           str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path)))
    assert code.returncode == 0, code.stderr[-2000:]
    assert code.stdout.split("\n")[-2] == "True True ['file dialog', 'enable question', 'unexpected'] True", code.stdout
