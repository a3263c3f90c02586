"""The editor's SAM set-up: is a checkpoint installed, and a one-click download.

The checkpoint goes where the engine service looks for it (``<config dir>/sam``,
see ``trimap.sam.find_checkpoint``), fetched by the product's own downloader
(``diffmatte.weights.download``: resumes, checks size and sha256), the same
code as ``diffmatte download sam-vit-b``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Optional

MODEL_TYPE = "vit_b"
REGISTRY_NAME = "sam-vit-b"


class DownloadCancelled(Exception):
    """Raised from the progress callback to stop a download (the part file stays for resuming)."""


class EditorSamSetup:
    """SamSetup (see refine_matte.panel_output) for the engine venv."""

    def available(self) -> bool:
        from trimap.sam import SamCheckpointError, find_checkpoint

        try:
            find_checkpoint(MODEL_TYPE)
            return True
        except SamCheckpointError:
            return False

    def target_dir(self) -> Path:
        from trimap.sam import config_dir

        return config_dir() / "sam"

    def download(self, progress: Callable[[int, Optional[int]], None], cancel: threading.Event) -> str:
        from diffmatte.weights import registry
        from diffmatte.weights.download import download

        entry = registry.get(REGISTRY_NAME)

        def report(done: int, total: Optional[int]) -> None:
            if cancel.is_set():
                raise DownloadCancelled("cancelled")
            progress(done, total)

        return str(download(entry, self.target_dir(), progress=report))
