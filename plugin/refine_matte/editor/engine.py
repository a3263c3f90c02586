"""The engine service the editor talks to: connecting to one (starting one with this
Python if none runs), and stopping the one the editor started when it has been unused
for a while or the editor closes.  Qt + stdlib."""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional, Sequence

from ..qt import QtCore

ENGINE_IDLE_MINUTES = 15       # an engine the editor started is stopped after this long unused


def engine_client_factory(serve_args: Sequence[str] = ()) -> Any:
    """Connect to the engine service, starting one with this Python if none runs.

    ``serve_args`` (e.g. ``["--weights", path]``) are used only when a new service
    has to be started; a running one is used as it is.
    """
    from ..client import EngineClient
    return EngineClient.ensure_running(python=sys.executable, args=list(serve_args))


class StartedEngine:
    """The client this editor's factory made (maybe starting an engine), and the idle timer
    after which that engine is stopped.  An engine the editor merely found or was given is
    never stopped."""

    def __init__(self, factory: Callable[[], Any], parent: "QtCore.QObject") -> None:
        self._factory = factory
        self.client: Any = None
        self.idle = QtCore.QTimer(parent)
        self.idle.setSingleShot(True)
        self.idle.setInterval(ENGINE_IDLE_MINUTES * 60_000)

    def make_client(self) -> Any:
        """The panel's client factory: a client, remembered as this editor's own."""
        self.client = self._factory()
        return self.client

    def stop(self, reason: str, current: Any, busy: bool) -> Optional[str]:
        """Stop the engine service behind ``current`` (the panel's client) if this editor
        started it and neither this editor (``busy``) nor another front end uses it.
        Returns what to tell the artist, or None when nothing was stopped."""
        if current is None or current is not self.client or getattr(current, "process", None) is None or busy:
            return None
        try:
            queue = current.info().get("queue", {})
            if queue.get("running") or queue.get("queued"):
                return None  # another front end is using it
            current.shutdown()
        except Exception:  # noqa: BLE001 - already gone is fine
            pass
        self.client = None
        why = (f"after {ENGINE_IDLE_MINUTES} minutes unused" if reason == "idle"
               else "because the editor closed")
        msg = f"Stopped the engine service this editor started {why}, to free its memory."
        if reason == "idle":
            msg += " The next Refine Matte starts it again."
        return msg
