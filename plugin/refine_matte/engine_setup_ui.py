"""The engine set-up's Qt side (kept out of engine_setup.py, whose lookups are stdlib only):

- :class:`EngineSetupDialog` runs a Refine Matte folder's ``installer/install.py`` with a
  progress dialog and records the new engine;
- :class:`EngineBar` sits above the docker's panel while no engine is known: it finds one
  on the first show, else offers "Set up the engine…".

Imported on first use of ``engine_setup.EngineSetupDialog`` / ``engine_setup.EngineBar``;
the engine_setup functions are looked up there at call time (tests replace them).
"""

from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence

from . import engine_setup as setup
from .client import EngineClient, EngineNotRunning, engine_python
from .qt import QtCore, QtWidgets, Signal


class EngineSetupDialog(QtWidgets.QProgressDialog):
    """Runs ``installer/install.py`` of a Refine Matte folder with a progress dialog;
    emits ``done(python)`` (the recorded engine) or ``failed(message)``."""

    done = Signal(str)
    failed = Signal(str)

    def __init__(self, folder: str, python: str, package_dir: Optional[str] = None,
                 command: Optional[Sequence[str]] = None, parent: Optional["QtWidgets.QWidget"] = None,
                 works: Callable[[str], bool] = setup.engine_works) -> None:
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
        self._argv = list(command or setup.install_command(python, folder))

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
        python = setup.venv_python(self.folder)
        if code != 0 or not os.path.isfile(python) or not self._works(python):
            tail = "\n".join(self.output[-8:])
            self._fail(f"The engine set-up failed (exit {code}). The installer said:\n{tail}")
            return
        setup.record_engine(python, self.package_dir)
        self.result_python = python
        self.hide()
        self.done.emit(python)


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
        # looked up late in engine_setup, so tests can replace them
        self._finder = finder or (lambda: setup.find_engine())
        self._system_python = system_python or (lambda: setup.find_system_python())
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
            setup.record_engine(found, self.package_dir)
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
        if not setup.is_refine_matte_folder(folder):
            self._say_error(f"{folder} is not a Refine Matte folder (it has no installer/install.py, "
                            "pyproject.toml and diffmatte/). Pick the folder you downloaded or unpacked.")
            return False
        python = self._system_python()
        if not python:
            self._say_error("No Python 3.10 or newer was found to set up the engine with. Install "
                            "Python from python.org (or your system's packages), then try again.")
            return False
        self.setup_button.setEnabled(False)
        self.dialog = setup.EngineSetupDialog(folder, python, self.package_dir, parent=self.window())
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
