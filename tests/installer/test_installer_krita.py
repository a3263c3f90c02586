"""Tests of installer/krita.py with a fake bundle and a temporary pykrita folder."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPT = ROOT / "installer" / "krita.py"

_spec = importlib.util.spec_from_file_location("refine_matte_krita_installer", SCRIPT)
krita = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(krita)

DESKTOP_TEXT = """[Desktop Entry]
Type=Service
ServiceTypes=Krita/PythonPlugin
X-KDE-Library=refine_matte
Name=Refine Matte
"""


def make_bundle(root: Path, version: str = "9.9.9") -> Path:
    pkg = root / "refine_matte"
    (pkg / "editor").mkdir(parents=True)
    (pkg / "__init__.py").write_text(f'__version__ = "{version}"\n')
    (pkg / "panel.py").write_text("PANEL = 1\n")
    (pkg / "editor" / "__init__.py").write_text("")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "panel.cpython-311.pyc").write_bytes(b"\0junk")
    (root / "refine_matte.desktop").write_text(DESKTOP_TEXT)
    return root


def make_other_plugin(pykrita: Path) -> None:
    (pykrita / "other_plugin").mkdir(parents=True)
    (pykrita / "other_plugin" / "__init__.py").write_text("OTHER = 1\n")
    (pykrita / "other_plugin.desktop").write_text("[Desktop Entry]\nX-KDE-Library=other_plugin\n")


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def quiet(_msg: str) -> None:
    pass


def test_fresh_install_copies_bundle_without_caches(tmp_path):
    src = make_bundle(tmp_path / "src")
    pykrita = tmp_path / "pykrita"  # does not exist yet: created
    target = krita.install(src, pykrita, say=quiet)
    assert target == pykrita / "refine_matte"
    assert (target / "panel.py").read_text() == "PANEL = 1\n"
    assert (target / "editor" / "__init__.py").exists()
    assert not (target / "__pycache__").exists()
    assert (pykrita / "refine_matte.desktop").read_text() == DESKTOP_TEXT
    assert sorted(p.name for p in pykrita.iterdir()) == ["refine_matte", "refine_matte.desktop"]


def test_reinstall_replaces_old_copy_and_leaves_other_plugins(tmp_path):
    pykrita = tmp_path / "pykrita"
    make_other_plugin(pykrita)
    before_other = {k: v for k, v in snapshot(pykrita).items() if k.startswith("other_plugin")}
    krita.install(make_bundle(tmp_path / "v1", "1.0"), pykrita, say=quiet)
    (pykrita / "refine_matte" / "stale_module.py").write_text("old\n")
    krita.install(make_bundle(tmp_path / "v2", "2.0"), pykrita, say=quiet)
    assert not (pykrita / "refine_matte" / "stale_module.py").exists()
    assert krita.bundle_version(pykrita / "refine_matte") == "2.0"
    after = snapshot(pykrita)
    assert {k: v for k, v in after.items() if k.startswith("other_plugin")} == before_other
    assert not [k for k in after if k.startswith(".")]  # no temporaries left


def test_failed_swap_restores_previous_install(tmp_path, monkeypatch):
    pykrita = tmp_path / "pykrita"
    krita.install(make_bundle(tmp_path / "v1", "1.0"), pykrita, say=quiet)
    before = snapshot(pykrita)
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(src).name.startswith(".refine_matte.tmp-") and Path(dst).name == "refine_matte":
            raise PermissionError("simulated: folder in use")
        return real_replace(src, dst)

    monkeypatch.setattr(krita.os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        krita.install(make_bundle(tmp_path / "v2", "2.0"), pykrita, say=quiet)
    monkeypatch.undo()
    assert snapshot(pykrita) == before


def test_dry_run_changes_nothing(tmp_path):
    pykrita = tmp_path / "pykrita"
    messages = []
    krita.install(make_bundle(tmp_path / "src"), pykrita, dry_run=True, say=messages.append)
    assert not pykrita.exists()
    assert any("would install Refine Matte 9.9.9" in m for m in messages)


def test_leftovers_of_an_interrupted_run_are_removed(tmp_path):
    pykrita = tmp_path / "pykrita"
    (pykrita / ".refine_matte.tmp-123" / "x").mkdir(parents=True)
    (pykrita / ".refine_matte.old-77").mkdir()
    (pykrita / ".other_hidden").mkdir()  # not ours: kept
    krita.install(make_bundle(tmp_path / "src"), pykrita, say=quiet)
    assert sorted(p.name for p in pykrita.iterdir()) == [".other_hidden", "refine_matte", "refine_matte.desktop"]


def test_symlinked_dev_install_is_replaced_without_touching_its_target(tmp_path):
    dev = make_bundle(tmp_path / "dev")
    pykrita = tmp_path / "pykrita"
    pykrita.mkdir()
    (pykrita / "refine_matte").symlink_to(dev / "refine_matte", target_is_directory=True)
    krita.install(make_bundle(tmp_path / "rel", "3.0"), pykrita, say=quiet)
    assert not (pykrita / "refine_matte").is_symlink()
    assert krita.bundle_version(pykrita / "refine_matte") == "3.0"
    assert (dev / "refine_matte" / "panel.py").exists()


def test_uninstall_removes_only_refine_matte(tmp_path):
    pykrita = tmp_path / "pykrita"
    make_other_plugin(pykrita)
    krita.install(make_bundle(tmp_path / "src"), pykrita, say=quiet)
    assert krita.uninstall(pykrita, say=quiet) is True
    assert sorted(p.name for p in pykrita.iterdir()) == ["other_plugin", "other_plugin.desktop"]
    assert krita.uninstall(pykrita, say=quiet) is False


def test_missing_or_bad_bundle_is_a_clear_error(tmp_path, capsys):
    assert krita.main(["--source", str(tmp_path / "nowhere"), "--pykrita", str(tmp_path / "pk")]) == 2
    err = capsys.readouterr().err
    assert "bundle is incomplete" in err and "refine_matte.desktop" in err
    assert not (tmp_path / "pk").exists()
    src = make_bundle(tmp_path / "src")
    (src / "refine_matte.desktop").write_text("[Desktop Entry]\nName=x\n")
    with pytest.raises(krita.BundleError, match="X-KDE-Library"):
        krita.install(src, tmp_path / "pk", say=quiet)


def test_main_installs_enables_and_records_the_engine(tmp_path, capsys):
    src = make_bundle(tmp_path / "src")
    rc = tmp_path / "config" / "kritarc"
    assert krita.main(["--source", str(src), "--pykrita", str(tmp_path / "pk"), "--kritarc", str(rc),
                       "--engine-python", sys.executable]) == 0
    out = capsys.readouterr().out
    assert f"Enabled Refine Matte in {rc}" in out and (tmp_path / "pk" / "refine_matte.desktop").exists()
    assert rc.read_text() == "[python]\nenable_refine_matte=true\n"
    recorded = json.loads((tmp_path / "pk" / "refine_matte" / "engine.json").read_text())
    assert recorded == {"python": os.path.abspath(sys.executable)}
    assert not (src / "refine_matte" / "engine.json").exists()  # only the installed copy
    assert krita.main(["--pykrita", str(tmp_path / "pk"), "--kritarc", str(rc), "--uninstall"]) == 0
    assert rc.read_text() == "[python]\n" and not (tmp_path / "pk" / "refine_matte").exists()


def test_main_without_enabling_explains_the_manual_way(tmp_path, capsys):
    src = make_bundle(tmp_path / "src")
    rc = tmp_path / "kritarc"
    assert krita.main(["--source", str(src), "--pykrita", str(tmp_path / "pk"), "--kritarc", str(rc),
                       "--no-enable", "--engine-python", sys.executable]) == 0
    assert "Python Plugin Manager" in capsys.readouterr().out and not rc.exists()
    assert krita.main(["--source", str(src), "--pykrita", str(tmp_path / "pk"),
                       "--engine-python", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


KRITARC = """[General]
LastPreset=b) Basic-5 Size Opacity

[python]
enable_comics_project_management_tools=true
enable_refine_matte=false
enable_zzz=true

[theme]
Theme=Krita dark
"""


def test_kritarc_flag_is_set_in_place_and_everything_else_kept(tmp_path):
    rc = tmp_path / "kritarc"
    rc.write_text(KRITARC)
    assert krita.set_python_flag(rc, True, say=quiet) is True
    assert rc.read_text() == KRITARC.replace("enable_refine_matte=false", "enable_refine_matte=true")
    assert krita.set_python_flag(rc, True, say=quiet) is False  # already enabled: untouched
    assert krita.set_python_flag(rc, None, say=quiet) is True
    assert rc.read_text() == KRITARC.replace("enable_refine_matte=false\n", "")
    assert not [p.name for p in tmp_path.iterdir() if p.name != "kritarc"]  # no temporaries


def test_kritarc_without_a_python_section_gets_one(tmp_path):
    rc = tmp_path / "kritarc"
    rc.write_text("[General]\nx=1\n")
    messages = []
    assert krita.set_python_flag(rc, True, dry_run=True, say=messages.append) is True
    assert rc.read_text() == "[General]\nx=1\n" and "would update" in messages[0]
    krita.set_python_flag(rc, True, say=quiet)
    assert rc.read_text() == "[General]\nx=1\n\n[python]\nenable_refine_matte=true\n"
    rc.write_text("[python]\nenable_other=true\n[General]\nx=1\n")
    krita.set_python_flag(rc, True, say=quiet)
    assert rc.read_text() == "[python]\nenable_other=true\nenable_refine_matte=true\n[General]\nx=1\n"


def test_default_kritarc_per_platform(tmp_path):
    home = tmp_path / "home"
    assert krita.default_kritarc("linux", {}, home) == home / ".config/kritarc"
    assert krita.default_kritarc("linux", {"XDG_CONFIG_HOME": "/c"}, home) == Path("/c/kritarc")
    assert krita.default_kritarc("win32", {"LOCALAPPDATA": "C:/L"}, home) == Path("C:/L/kritarc")
    assert krita.default_kritarc("darwin", {}, home) == home / "Library/Preferences/kritarc"
    (home / ".var/app/org.kde.krita/data/krita").mkdir(parents=True)
    assert krita.default_kritarc("linux", {}, home) == home / ".var/app/org.kde.krita/config/kritarc"


def test_engine_python_is_the_first_that_imports_diffmatte(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    assert krita.find_engine_python([str(tmp_path / "nope"), str(fake)]) is None
    if os.name == "posix":
        good = tmp_path / "good"
        good.write_text("#!/bin/sh\nexit 0\n")
        good.chmod(0o755)
        assert krita.find_engine_python([str(fake), str(good)]) == str(good)


def test_default_pykrita_dir_per_platform(tmp_path):
    home = tmp_path / "home"
    assert krita.default_pykrita_dir("linux", {}, home) == home / ".local/share/krita/pykrita"
    assert krita.default_pykrita_dir("linux", {"XDG_DATA_HOME": "/x"}, home) == Path("/x/krita/pykrita")
    (home / ".var/app/org.kde.krita/data/krita").mkdir(parents=True)
    assert krita.default_pykrita_dir("linux", {}, home) == home / ".var/app/org.kde.krita/data/krita/pykrita"
    assert krita.default_pykrita_dir("win32", {"APPDATA": "C:/Users/u/AppData/Roaming"}, home) == \
        Path("C:/Users/u/AppData/Roaming/krita/pykrita")
    assert krita.default_pykrita_dir("darwin", {}, home) == \
        home / "Library/Application Support/Krita/pykrita"


@pytest.mark.skipif(not (ROOT / "plugin" / "refine_matte.desktop").exists(), reason="real bundle not present")
def test_script_dry_run_on_the_real_bundle(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--pykrita", str(tmp_path / "pk"), "--dry-run"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "would install Refine Matte" in result.stdout
    assert not (tmp_path / "pk").exists()
