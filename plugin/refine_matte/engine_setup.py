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
from typing import Callable, Iterable, List, Optional, Sequence

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


# ----------------------------------------------------------------------------- Qt dialog
def _dialog_class():
    from .qt import QtCore, QtWidgets, Signal

    class EngineSetupDialog(QtWidgets.QProgressDialog):
        """Runs ``installer/install.py`` of a Refine Matte folder with a progress dialog;
        emits ``done(python)`` (the recorded engine) or ``failed(message)``."""

        done = Signal(str)
        failed = Signal(str)

        def __init__(self, folder: str, python: str, package_dir: Optional[str] = None,
                     command: Optional[Sequence[str]] = None, parent: Optional["QtWidgets.QWidget"] = None,
                     works: Callable[[str], bool] = engine_works) -> None:
            super().__init__("Setting up the Refine Matte engine…", "Cancel", 0, 0, parent)
            self.setWindowTitle("Refine Matte: engine set-up")
            self.setMinimumWidth(480)
            self.setMinimumDuration(0)
            self.setAutoClose(False)
            self.setAutoReset(False)
            self.folder, self.package_dir, self._works = folder, package_dir, works
            self.output: List[str] = []
            self.result_python: Optional[str] = None
            self.error: Optional[str] = None
            self.proc = QtCore.QProcess(self)
            self.proc.setProcessChannelMode(QtCore.QProcess.ProcessChannelMode.MergedChannels)
            self.proc.setWorkingDirectory(folder)
            penv = QtCore.QProcessEnvironment.systemEnvironment()
            for key in ("PYTHONHOME", "PYTHONPATH"):
                penv.remove(key)
            penv.insert("PYTHONUNBUFFERED", "1")
            self.proc.setProcessEnvironment(penv)
            self.proc.readyRead.connect(self._read)
            self.proc.finished.connect(self._finished)
            self.proc.errorOccurred.connect(self._error)
            self.canceled.connect(self._cancel)
            self._argv = list(command or install_command(python, folder))

        def start(self) -> None:
            self.setLabelText(f"Setting up the engine in {self.folder}\n(downloads torch and the other "
                              "packages: a few minutes the first time)…")
            self.show()
            self.proc.start(self._argv[0], self._argv[1:])

        def _read(self) -> None:
            text = bytes(self.proc.readAll()).decode("utf-8", "replace")
            lines = [ln for ln in text.splitlines() if ln.strip()]
            self.output += lines
            if lines:
                self.setLabelText("Setting up the Refine Matte engine…\n" + lines[-1][-160:])

        def _cancel(self) -> None:
            if self.proc.state() != QtCore.QProcess.ProcessState.NotRunning:
                self.error = "The engine set-up was cancelled."
                self.proc.kill()

        def _error(self, _err) -> None:
            if self.proc.state() == QtCore.QProcess.ProcessState.NotRunning and self.error is None \
                    and self.proc.exitCode() == 0:
                self._fail(f"Could not run {' '.join(self._argv)}: {self.proc.errorString()}")

        def _fail(self, message: str) -> None:
            if self.result_python is None and (self.error is None or self.error == message):
                self.error = message
                self.hide()
                self.failed.emit(message)

        def _finished(self, code: int, _status=None) -> None:
            self._read()
            if self.error:
                self._fail(self.error)
                return
            python = venv_python(self.folder)
            if code != 0 or not os.path.isfile(python) or not self._works(python):
                tail = "\n".join(self.output[-8:])
                self._fail(f"The engine set-up failed (exit {code}). The installer said:\n{tail}")
                return
            record_engine(python, self.package_dir)
            self.result_python = python
            self.hide()
            self.done.emit(python)

    return EngineSetupDialog


def _bar_class():
    from .qt import QtWidgets, Signal
    from .client import EngineClient, EngineNotRunning, engine_python

    class EngineBar(QtWidgets.QFrame):
        """Shown above the docker's panel while no engine is known: finds one on the first
        show (no dialog when that works), else offers "Set up the engine…"."""

        engineReady = Signal(str)
        message = Signal(str)

        def __init__(self, package_dir: Optional[str] = None, parent: Optional["QtWidgets.QWidget"] = None,
                     finder: Optional[Callable[[], Optional[str]]] = None,
                     ask_folder: Optional[Callable[[], str]] = None,
                     system_python: Optional[Callable[[], Optional[str]]] = None,
                     discover: Optional[Callable[[], object]] = None) -> None:
            super().__init__(parent)
            self.setObjectName("engineBar")
            self.package_dir = package_dir
            module = sys.modules[__name__]  # looked up late, so tests can replace them
            self._finder = finder or (lambda: module.find_engine())
            self._system_python = system_python or (lambda: module.find_system_python())
            self._ask_folder = ask_folder or self._ask_folder_dialog
            self._discover = discover or (lambda: EngineClient.discover(probe_timeout=0.5))
            self.dialog = None
            lay = QtWidgets.QVBoxLayout(self)
            lay.setContentsMargins(0, 0, 0, 4)
            self.label = QtWidgets.QLabel("No Refine Matte engine was found on this computer.")
            self.label.setWordWrap(True)
            self.setup_button = QtWidgets.QPushButton("Set up the engine…")
            self.setup_button.setToolTip("Pick the Refine Matte folder (a release or a checkout); its "
                                         "installer sets up the engine there, with progress shown here")
            self.setup_button.clicked.connect(self.setup_engine)
            lay.addWidget(self.label)
            lay.addWidget(self.setup_button)
            self.hide()

        def check(self) -> Optional[str]:
            """Known, running or found engine: hide (recording a found one); else show."""
            known = engine_python(self.package_dir)
            if known:
                self.hide()
                return known
            try:
                self._discover()
                self.hide()
                return "running"
            except EngineNotRunning:
                pass
            found = self._finder()
            if found:
                record_engine(found, self.package_dir)
                self.hide()
                self.message.emit(f"Found the Refine Matte engine: {found}")
                self.engineReady.emit(found)
                return found
            self.show()
            return None

        def _ask_folder_dialog(self) -> str:
            return QtWidgets.QFileDialog.getExistingDirectory(
                self, "The Refine Matte folder (a release or a checkout) to set the engine up in")

        def setup_engine(self) -> bool:
            folder = self._ask_folder()
            if not folder:
                return False
            if not is_refine_matte_folder(folder):
                self._say_error(f"{folder} is not a Refine Matte folder (it has no installer/install.py, "
                                "pyproject.toml and diffmatte/). Pick the folder you downloaded or unpacked.")
                return False
            python = self._system_python()
            if not python:
                self._say_error("No Python 3.10 or newer was found to set up the engine with. Install "
                                "Python from python.org (or your system's packages), then try again.")
                return False
            self.setup_button.setEnabled(False)
            self.dialog = __getattr__("EngineSetupDialog")(folder, python, self.package_dir, parent=self.window())
            self.dialog.done.connect(self._done)
            self.dialog.failed.connect(self._failed)
            self.dialog.start()
            return True

        def _done(self, python: str) -> None:
            self.setup_button.setEnabled(True)
            self.hide()
            self.message.emit(f"The Refine Matte engine is set up: {python}")
            self.engineReady.emit(python)

        def _failed(self, message: str) -> None:
            self.setup_button.setEnabled(True)
            self._say_error(message)

        def _say_error(self, message: str) -> None:
            self.label.setText(message)
            self.show()
            self.message.emit(message)

    return EngineBar


_CLASSES: dict = {}


def __getattr__(name: str):
    makers = {"EngineSetupDialog": _dialog_class, "EngineBar": _bar_class}
    if name in makers:
        if name not in _CLASSES:
            _CLASSES[name] = makers[name]()
        return _CLASSES[name]
    raise AttributeError(name)
