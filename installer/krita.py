#!/usr/bin/env python3
"""Install the Refine Matte plugin bundle into Krita's ``pykrita`` folder.

    python installer/krita.py                     # install into Krita's default folder
    python installer/krita.py --pykrita DIR       # ... into another pykrita folder
    python installer/krita.py --dry-run           # only say what would happen
    python installer/krita.py --uninstall         # remove Refine Matte (and nothing else)
    python installer/krita.py --zip dist/refine-matte-krita.zip
                                                  # the release zip for Krita's own importer
                                                  # (Tools > Scripts > Import Python Plugin from File)

It also enables the plugin (``enable_refine_matte=true`` in the ``[python]`` section
of Krita's ``kritarc``; ``--no-enable`` skips that) and records the engine
environment (``refine_matte/engine.json``: the Python that runs ``diffmatte serve``)
so the docker can start the engine itself when none is running.

The bundle is ``plugin/refine_matte/`` plus ``plugin/refine_matte.desktop``. An older
install is replaced atomically: the new copy is assembled in a hidden folder beside
the target, then swapped in by renames, so Krita never sees a half-copied plugin.
Only ``refine_matte``, ``refine_matte.desktop`` and our own hidden temporaries are
ever touched; other plugins in the folder are left alone.

The bundle itself (finding it, its version, the release zip) is krita_bundle.py.

Standard library only and Python >= 3.8, so it runs with any Python, Krita's included.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Optional


def _load_sibling(name: str):
    """``installer/<name>.py``, loaded by its path: this file runs as a script (and tests load
    it by path), so the folder is no package; it is not put on sys.path either, where this
    file's name would shadow Krita's own ``krita`` module."""
    path = Path(__file__).resolve().with_name(name + ".py")
    spec = importlib.util.spec_from_file_location("refine_matte_installer_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_bundle = _load_sibling("krita_bundle")
PLUGIN, DESKTOP, ENGINE_FILE, ZIP_EXCLUDE = _bundle.PLUGIN, _bundle.DESKTOP, _bundle.ENGINE_FILE, _bundle.ZIP_EXCLUDE
BundleError, Say, _IGNORE = _bundle.BundleError, _bundle.Say, _bundle.IGNORE
find_bundle, bundle_version, build_zip = _bundle.find_bundle, _bundle.bundle_version, _bundle.build_zip

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT / "plugin"
ENABLE_KEY = "enable_" + PLUGIN  # Krita's Python Plugin Manager tick, in kritarc [python]
_TMP_PREFIX = "." + PLUGIN + ".tmp-"
_OLD_PREFIX = "." + PLUGIN + ".old-"


def default_pykrita_dir(platform: str = sys.platform, env: Optional[Mapping[str, str]] = None,
                        home: Optional[Path] = None) -> Path:
    """Krita's per-user Python plugin folder for this platform.

    Linux ``$XDG_DATA_HOME/krita/pykrita`` (default ``~/.local/share/krita/pykrita``;
    the Flatpak location when only Flatpak Krita's data exists), Windows
    ``%APPDATA%\\krita\\pykrita``, macOS ``~/Library/Application Support/Krita/pykrita``.
    """
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    if platform.startswith("win"):
        appdata = env.get("APPDATA")
        base = Path(appdata) if appdata else home / "AppData" / "Roaming"
        return base / "krita" / "pykrita"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "Krita" / "pykrita"
    xdg = env.get("XDG_DATA_HOME")
    native = (Path(xdg) if xdg else home / ".local" / "share") / "krita"
    flatpak = home / ".var" / "app" / "org.kde.krita" / "data" / "krita"
    if not native.exists() and flatpak.exists():
        return flatpak / "pykrita"
    return native / "pykrita"


def default_kritarc(platform: str = sys.platform, env: Optional[Mapping[str, str]] = None,
                    home: Optional[Path] = None) -> Path:
    """Krita's settings file: ``$XDG_CONFIG_HOME/kritarc`` (Flatpak: its own config),
    ``%LOCALAPPDATA%\\kritarc`` on Windows, ``~/Library/Preferences/kritarc`` on macOS."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    if platform.startswith("win"):
        local = env.get("LOCALAPPDATA")
        return (Path(local) if local else home / "AppData" / "Local") / "kritarc"
    if platform == "darwin":
        return home / "Library" / "Preferences" / "kritarc"
    pykrita = default_pykrita_dir(platform, env, home)
    if ".var/app/org.kde.krita" in pykrita.as_posix():
        return home / ".var" / "app" / "org.kde.krita" / "config" / "kritarc"
    xdg = env.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else home / ".config") / "kritarc"


def set_python_flag(kritarc: Path, value: Optional[bool], *, dry_run: bool = False,
                    say: Say = print) -> bool:
    """Set (True/False) or remove (None) ``enable_refine_matte`` in kritarc's [python].

    Every other line is kept as it is; the file is replaced atomically. Returns
    whether the file changed.
    """
    kritarc = Path(kritarc)
    try:
        text = kritarc.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    lines = text.splitlines()
    out, section, done = [], None, False
    line_for = None if value is None else f"{ENABLE_KEY}={'true' if value else 'false'}"
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if section == "[python]" and not done and line_for:
                out.append(line_for)
                done = True
            section = stripped
        elif section == "[python]" and stripped.split("=", 1)[0].strip() == ENABLE_KEY:
            if line_for and not done:
                out.append(line_for)
                done = True
            continue
        out.append(line)
    if section == "[python]" and not done and line_for:
        out.append(line_for)
        done = True
    if not done and line_for:
        if out and out[-1].strip():
            out.append("")
        out += ["[python]", line_for]
    new = "\n".join(out) + ("\n" if out else "")
    if new == text:
        return False
    say(f"{'would update' if dry_run else 'updating'} {kritarc}: "
        + (f"[python] {line_for}" if line_for else f"removing [python] {ENABLE_KEY}"))
    if not dry_run:
        kritarc.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".kritarc.refine-matte-", dir=str(kritarc.parent))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(new)
            if kritarc.exists():
                shutil.copymode(kritarc, tmp)
            os.replace(tmp, kritarc)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return True


def find_engine_python(candidates: Optional[list] = None) -> Optional[str]:
    """The first interpreter that can import ``diffmatte``: this checkout's .venv, then
    the Python running the installer. None when neither can."""
    if candidates is None:
        venv = ROOT / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        candidates = [str(venv), sys.executable]
    for python in candidates:
        if not python or not os.path.isfile(python):
            continue
        try:
            ok = subprocess.run([python, "-c", "import diffmatte"], capture_output=True,
                                timeout=120).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return os.path.abspath(python)
    return None


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _clean_leftovers(pykrita: Path, say: Say, dry_run: bool) -> None:
    """Remove hidden temporaries that an interrupted earlier run of ours left behind."""
    if not pykrita.is_dir():
        return
    for child in pykrita.iterdir():
        if child.name.startswith((_TMP_PREFIX, _OLD_PREFIX)):
            say(f"removing leftover {child}")
            if not dry_run:
                _remove(child)


def install(source: Path, pykrita: Path, *, dry_run: bool = False, say: Say = print,
            engine_python: Optional[str] = None) -> Path:
    """Copy the bundle into ``pykrita``, replacing an older Refine Matte atomically.

    ``engine_python`` (the interpreter of the engine's environment) is recorded in the
    installed bundle's ``engine.json`` so the docker can start ``diffmatte serve``.

    Returns the installed package folder. Raises :class:`BundleError` for a bad bundle
    and ``OSError`` when copying fails (an older install is then restored).
    """
    package, desktop = find_bundle(Path(source))
    pykrita = Path(pykrita)
    target, target_desktop = pykrita / PLUGIN, pykrita / DESKTOP
    if pykrita.exists() and not pykrita.is_dir():
        raise NotADirectoryError(f"{pykrita} exists and is not a folder")
    if not target.is_symlink() and target.exists() and target.resolve() == package.resolve():
        raise BundleError(f"source and destination are the same folder: {package}")
    tag = str(os.getpid())
    staging, desktop_tmp = pykrita / (_TMP_PREFIX + tag), pykrita / (_TMP_PREFIX + tag + ".desktop")
    aside = pykrita / (_OLD_PREFIX + tag)
    verb = "replace" if target.exists() or target.is_symlink() else "install"
    say(f"{'would ' if dry_run else ''}{verb} Refine Matte {bundle_version(package)}: {package} -> {target}")
    _clean_leftovers(pykrita, say, dry_run)
    if dry_run:
        say(f"would write {target_desktop}")
        if engine_python:
            say(f"would record the engine environment {engine_python}")
        return target

    pykrita.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(package, staging, ignore=_IGNORE)
        shutil.copy2(desktop, desktop_tmp)
        if engine_python:
            (staging / ENGINE_FILE).write_text(json.dumps({"python": engine_python}) + "\n",
                                               encoding="utf-8")
    except BaseException:
        _remove(staging)
        _remove(desktop_tmp)
        raise
    # Two renames (a folder cannot be renamed over another on Windows); on failure the
    # old copy goes back, so the user is never left without a working plugin.
    had_old = target.exists() or target.is_symlink()
    if had_old:
        os.replace(target, aside)
    try:
        os.replace(staging, target)
    except BaseException:
        if had_old:
            os.replace(aside, target)
        _remove(staging)
        _remove(desktop_tmp)
        raise
    # The .desktop goes last: Krita lists a plugin by its .desktop file.
    os.replace(desktop_tmp, target_desktop)
    if had_old:
        _remove(aside)
    say(f"installed {target_desktop}")
    if engine_python:
        say(f"recorded the engine environment {engine_python} in {target / ENGINE_FILE}")
    return target


def uninstall(pykrita: Path, *, dry_run: bool = False, say: Say = print) -> bool:
    """Remove Refine Matte from ``pykrita``; returns whether anything was there."""
    pykrita = Path(pykrita)
    found = False
    # .desktop first, so Krita stops listing the plugin before its code goes.
    for path in (pykrita / DESKTOP, pykrita / PLUGIN):
        if path.exists() or path.is_symlink():
            found = True
            say(f"{'would remove' if dry_run else 'removing'} {path}")
            if not dry_run:
                _remove(path)
    _clean_leftovers(pykrita, say, dry_run)
    if not found:
        say(f"Refine Matte is not installed in {pykrita}")
    return found


ENABLED_HELP = """
Next: (re)start Krita (quit it first if it is running), then show the docker with
Settings > Dockers > Refine Matte."""
MANUAL_HELP = """
To enable it in Krita:
  1. Start (or restart) Krita.
  2. Settings > Configure Krita... > Python Plugin Manager: tick "Refine Matte", press OK.
  3. Restart Krita, then show the docker with Settings > Dockers > Refine Matte."""
ENGINE_HELP = """
The docker talks to the Refine Matte engine (`python -m diffmatte serve`). It uses a
running one, else starts one with {engine}. REFINE_MATTE_PYTHON (the engine
environment's python) overrides that. Problems are listed in Settings > Dockers >
Log Viewer and in the Python Plugin Manager (a greyed-out entry shows the import error)."""


def main(argv=None) -> int:
    """Command-line entry; returns the exit status (0 ok, 1 failed, 2 bad bundle/arguments)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pykrita", metavar="DIR", help="Krita's pykrita folder (default: %s)" % default_pykrita_dir())
    ap.add_argument("--source", metavar="DIR", default=str(DEFAULT_SOURCE),
                    help="folder holding refine_matte/ and refine_matte.desktop (default: %(default)s)")
    ap.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    ap.add_argument("--uninstall", action="store_true", help="remove Refine Matte from the pykrita folder")
    ap.add_argument("--kritarc", metavar="FILE",
                    help="Krita's settings file to enable the plugin in (default: %s)" % default_kritarc())
    ap.add_argument("--no-enable", action="store_true", help="do not enable the plugin in kritarc")
    ap.add_argument("--zip", metavar="PATH",
                    help="only write the release zip for Krita's Import Python Plugin from File (e.g. "
                         "dist/refine-matte-krita.zip); installs nothing")
    ap.add_argument("--engine-python", metavar="PYTHON",
                    help="the engine environment's python, recorded for the docker (default: this "
                         "checkout's .venv, else this python, whichever can import diffmatte)")
    args = ap.parse_args(argv)
    pykrita = Path(args.pykrita).expanduser() if args.pykrita else default_pykrita_dir()
    kritarc = Path(args.kritarc).expanduser() if args.kritarc else default_kritarc()
    try:
        if args.zip:
            build_zip(Path(args.source).expanduser(), Path(args.zip).expanduser())
            return 0
        if args.uninstall:
            uninstall(pykrita, dry_run=args.dry_run)
            if not args.no_enable:
                set_python_flag(kritarc, None, dry_run=args.dry_run)
            return 0
        engine = args.engine_python or find_engine_python()
        if args.engine_python and not os.path.isfile(args.engine_python):
            print(f"error: --engine-python {args.engine_python} does not exist", file=sys.stderr)
            return 2
        install(Path(args.source).expanduser(), pykrita, dry_run=args.dry_run,
                engine_python=os.path.abspath(engine) if engine else None)
        if not args.no_enable:
            set_python_flag(kritarc, True, dry_run=args.dry_run)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: could not install into {pykrita} / {kritarc}: {exc}", file=sys.stderr)
        return 1
    if not args.dry_run:
        if args.no_enable:
            print(MANUAL_HELP)
        else:
            print(f"Enabled Refine Matte in {kritarc} ([python] {ENABLE_KEY}=true).")
            print(ENABLED_HELP)
        print(ENGINE_HELP.format(engine=engine if engine else
                                 "nothing: no engine environment was found, so start "
                                 "`diffmatte serve` yourself or set REFINE_MATTE_PYTHON"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
