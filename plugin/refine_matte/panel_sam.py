"""The SAM source's one-click checkpoint download in the panel: the row that offers it
(shown while SAM is picked and its checkpoint is missing, or a download runs), the
download on a thread and its progress.

:class:`SamDownload` is owned by :class:`refine_matte.panel.RefinePanel` (``panel.sam``);
the download itself is an injected :class:`SamSetup`, which the editor implements with the
product's downloader.  Qt + stdlib.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional, Protocol

from .qt import QtCore, QtWidgets, Signal

SAM_HINT = ("SAM needs its checkpoint (vit_b, 375 MB, downloaded once). Or run "
            "`diffmatte download sam-vit-b --dest <config dir>/sam`.")


class SamSetup(Protocol):
    """Whether SAM can run here, and how to fetch its checkpoint (one click)."""

    def available(self) -> bool:
        """True when a checkpoint is installed where the engine looks."""

    def download(self, progress: Callable[[int, Optional[int]], None], cancel: threading.Event) -> str:
        """Fetch the checkpoint (resumable, verified); return where it went."""


class _DownloadSignals(QtCore.QObject):
    progress = Signal(object, object)   # done, total (bytes; may exceed int32)
    done = Signal(str)
    failed = Signal(str)


class SamDownload(QtCore.QObject):
    """The checkpoint row and its download.  ``wanted()`` says whether the panel's source
    is SAM; ``show_status`` / ``show_error`` report the outcome in the panel."""

    def __init__(self, setup: Optional[SamSetup], wanted: Callable[[], bool],
                 show_status: Callable[[str], None], show_error: Callable[[str], None],
                 parent: Optional[QtCore.QObject] = None) -> None:
        super().__init__(parent)
        self.setup = setup
        self._wanted, self._show_status, self._show_error = wanted, show_status, show_error
        self._cancel: Optional[threading.Event] = None
        self._signals: Optional[_DownloadSignals] = None

    def build_row(self) -> "QtWidgets.QWidget":
        """The row (hint, button, progress bar), hidden until :meth:`sync` shows it."""
        self.row = QtWidgets.QWidget()
        row = QtWidgets.QVBoxLayout(self.row)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QtWidgets.QLabel(SAM_HINT)
        self.label.setWordWrap(True)
        self.button = QtWidgets.QPushButton("Download SAM (375 MB)")
        self.button.setToolTip("Download the Segment Anything vit_b checkpoint with the "
                               "product's downloader (resumes, checks sha256)")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        row.addWidget(self.label)
        row.addWidget(self.button)
        row.addWidget(self.progress)
        self.row.hide()
        self.button.clicked.connect(self.download)
        return self.row

    def sync(self) -> None:
        """Show the row while SAM is wanted and missing, or a download runs."""
        want = self._wanted() and self.setup is not None
        try:
            missing = want and not self.setup.available()
        except Exception:  # noqa: BLE001 - a broken check must not hide the panel
            missing = False
        downloading = self._cancel is not None
        self.row.setVisible(bool(missing or downloading))
        self.button.setText("Cancel download" if downloading else "Download SAM (375 MB)")

    def download(self) -> bool:
        """Start (or cancel) the SAM checkpoint download; progress shows in the row."""
        if self.setup is None:
            return False
        if self._cancel is not None:
            self._cancel.set()
            return False
        cancel = threading.Event()
        sig = _DownloadSignals()
        sig.progress.connect(self._on_progress)
        sig.done.connect(self._on_done)
        sig.failed.connect(self._on_failed)
        self._cancel, self._signals = cancel, sig
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.progress.show()
        self.sync()
        setup = self.setup

        def run() -> None:
            try:
                path = setup.download(lambda d, t: sig.progress.emit(d, t), cancel)
                sig.done.emit(str(path))
            except BaseException as exc:  # noqa: BLE001 - reported in the panel
                sig.failed.emit("Download cancelled (it resumes where it stopped)." if cancel.is_set()
                                else f"SAM download failed: {exc}")

        threading.Thread(target=run, name="refine-matte-sam-download", daemon=True).start()
        return True

    def _on_progress(self, done: Any, total: Any) -> None:
        if total:
            self.progress.setValue(int(1000 * int(done) / int(total)))
            self.progress.setFormat(f"{int(done) / 1e6:.0f} / {int(total) / 1e6:.0f} MB")
        else:
            self.progress.setFormat(f"{int(done) / 1e6:.0f} MB")

    def _on_done(self, path: str) -> None:
        self._cancel = None
        self.progress.hide()
        self._show_status(f"SAM is ready ({path}). Click the subject to start.")
        self.sync()

    def _on_failed(self, message: str) -> None:
        self._cancel = None
        self.progress.hide()
        self._show_error(message)
        self.sync()
