"""First run inside a host (Krita): find the engine, or set it up, without a terminal.

The docker needs an engine environment: a Python that can ``import diffmatte`` (it
runs ``python -m diffmatte serve``). ``installer/krita.py`` records one in
``engine.json``; a plugin imported with Krita's *Import Python Plugin from File* has
none. Then the docker

1. looks for an installed engine (:func:`find_engine`: ``REFINE_MATTE_PYTHON``, a
   ``diffmatte`` command on PATH, the ``.venv`` of a Refine Matte folder in the usual
   places) and records the first that works (:func:`record_engine`);
2. else offers :class:`EngineSetupDialog`: the artist picks the Refine Matte folder (a
   release or a checkout), and its ``installer/install.py`` runs with the system's
   Python >= 3.10 in a progress dialog; the new ``.venv`` is then recorded.

The lookup functions are stdlib only; Qt is imported by the dialog alone.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from typing import Callable, Iterable, List, Optional

from .client import ENGINE_FILE, PYTHON_ENV
from .fsutil import atomic_path

_VENV_PY = os.path.join("Scripts", "python.exe") if os.name == "nt" else os.path.join("bin", "python")
#: Where a Refine Matte folder usually is (relative to the home folder; globs allowed).
CHECKOUT_GLOBS = ("refine-matte", "Refine-Matte", "refine_matte", "src/refine-matte", "src/Refine-Matte",
                  "Downloads/refine-matte*", "Downloads/Refine-Matte*", "Documents/refine-matte*",
                  "Documents/Refine-Matte*", "*/refine-matte", "*/Refine-Matte")


def clean_env(env: Optional[dict] = None) -> dict:
    """The environment for another interpreter: the host's own Python settings removed
    (Krita sets PYTHONHOME / PYTHONPATH for its embedded Python)."""
    env = dict(os.environ if env is None else env)
    env.pop("PYTHONHOME", None)
    env.pop("PYTHONPATH", None)
    return env


def _shebang_python(script: str) -> Optional[str]:
    try:
        with open(script, "rb") as fh:
            first = fh.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if first.startswith("#!"):
        cmd = first[2:].strip().split()
        if cmd and os.path.isabs(cmd[0]) and os.path.basename(cmd[0]).startswith("python"):
            return cmd[0]
    return None


def candidate_pythons(env: Optional[dict] = None, home: Optional[str] = None,
                      which: Callable[[str], Optional[str]] = shutil.which) -> List[str]:
    """Interpreters that may hold the engine, most likely first (existing files only)."""
    env = os.environ if env is None else env
    home = os.path.expanduser("~") if home is None else home
    found: List[str] = []

    def add(path: Optional[str]) -> None:
        if path and os.path.isfile(path) and path not in found:
            found.append(path)

    add(env.get(PYTHON_ENV, "").strip() or None)
    command = which("diffmatte")
    if command:
        add(_shebang_python(command))
        add(os.path.join(os.path.dirname(command), os.path.basename(_VENV_PY)))
    for pattern in CHECKOUT_GLOBS:
        for folder in sorted(glob.glob(os.path.join(home, pattern))):
            add(os.path.join(folder, ".venv", _VENV_PY))
    return found


def engine_works(python: str, timeout: float = 60.0) -> bool:
    """Whether ``python`` is Python >= 3.10 and imports ``diffmatte`` (cheap: no torch)."""
    try:
        res = subprocess.run([python, "-c", "import sys, diffmatte; sys.exit(sys.version_info < (3, 10))"],
                             env=clean_env(), stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return False
    return res.returncode == 0


def find_engine(candidates: Optional[Iterable[str]] = None,
                works: Callable[[str], bool] = engine_works) -> Optional[str]:
    """The first candidate interpreter that can run the engine, or None."""
    for python in (candidate_pythons() if candidates is None else candidates):
        if works(python):
            return os.path.abspath(python)
    return None


def record_engine(python: str, package_dir: Optional[str] = None) -> str:
    """Write ``engine.json`` beside the plugin (what ``client.engine_python`` reads);
    returns its path. Written atomically."""
    folder = package_dir or os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(folder, ENGINE_FILE)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"python": os.path.abspath(python)}, fh)
        fh.write("\n")
    return path


def is_refine_matte_folder(folder: str) -> bool:
    """A release or checkout of Refine Matte: its installer and engine are there."""
    return (os.path.isfile(os.path.join(folder, "installer", "install.py"))
            and os.path.isfile(os.path.join(folder, "pyproject.toml"))
            and os.path.isdir(os.path.join(folder, "diffmatte")))


def find_system_python(which: Callable[[str], Optional[str]] = shutil.which,
                       check: Optional[Callable[[str], bool]] = None) -> Optional[str]:
    """A Python >= 3.10 to run ``installer/install.py`` with (never the host's own
    executable: Krita's ``sys.executable`` is Krita)."""
    def new_enough(python: str) -> bool:
        try:
            return subprocess.run([python, "-c", "import sys; sys.exit(sys.version_info < (3, 10))"],
                                  env=clean_env(), capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False
    check = check or new_enough
    names = ("python3.13", "python3.12", "python3.11", "python3.10", "python3", "python", "py")
    for name in names:
        path = which(name)
        if path and os.path.abspath(path) != os.path.abspath(sys.executable) and check(path):
            return path
    return None


def venv_python(folder: str) -> str:
    return os.path.join(folder, ".venv", _VENV_PY)


def install_command(python: str, folder: str) -> List[str]:
    return [python, os.path.join(folder, "installer", "install.py")]


def __getattr__(name: str):
    """EngineSetupDialog and EngineBar, from engine_setup_ui (Qt) on first use."""
    if name in ("EngineSetupDialog", "EngineBar"):
        from . import engine_setup_ui

        return getattr(engine_setup_ui, name)
    raise AttributeError(name)
