"""Krita test plugin for tests/hosts/krita.sh: runs the scenario once the window exists.

``edit_undo`` needs a main window, which ``kritarunner`` does not have, so the
scenario runs inside the GUI ``krita`` (under Xvfb), started by a QTimer.
"""
from krita import Extension, Krita  # type: ignore[import-not-found]

from .scenario import QtCore, log, main, scenario_requested


class HostScenario(Extension):
    def __init__(self, parent):
        super().__init__(parent)
        self._started = False

    def setup(self):
        if not scenario_requested():
            # Enabled in an ordinary Krita (not by tests/hosts/krita.sh): do nothing, and
            # above all do not end Krita (the scenario quits Krita when it is done).
            log("RM_PHOTO / RM_OUT not set: the host scenario stays idle")
            return
        Krita.instance().notifier().windowCreated.connect(self._start)

    def _start(self):
        if not self._started:
            self._started = True
            QtCore.QTimer.singleShot(3000, main)  # let Krita finish building the window

    def createActions(self, window):
        pass


Krita.instance().addExtension(HostScenario(Krita.instance()))
log("scenario plugin loaded")
