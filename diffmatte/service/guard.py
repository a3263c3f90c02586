"""Connection guard: idle and half-open connections cannot lock the artist out.

uvicorn's ``limit_concurrency`` counts open *connections*, and h11 waits for an
incomplete request head for ever, so a local process that opens a few dozen idle
sockets (no token needed) used to make every valid request answer 503. Here:

* a connection must deliver a complete request head within ``head_timeout``
  seconds of connecting (or of sending the first byte of a later request), else
  it is closed: slowloris headers and silent sockets cannot stay;
* at most ``max_connections`` connections in all and ``max_per_client`` per peer
  address; when a limit is reached, the connection that has waited longest for a
  request head is closed to make room (a fresh connection is refused only when no
  waiting one is left), so a flood of idle sockets never blocks a new request;
* requests in progress are capped by :class:`~diffmatte.service.gate.Gate`, which
  counts only requests that carry the token.

The protocol subclass is created per server by :func:`guarded_protocol`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, Optional, Set

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("diffmatte.service")


class ConnectionGuard:
    """Book-keeping shared by all connections of one server (event-loop thread only)."""

    def __init__(self, max_connections: int = 256, max_per_client: int = 128,
                 head_timeout: float = 10.0) -> None:
        if max_per_client < 2 or max_connections < max_per_client:
            raise ValueError("need max_connections >= max_per_client >= 2")
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.head_timeout = head_timeout
        self.connections: Set["GuardedH11Protocol"] = set()
        self.per_client: Dict[Any, int] = {}
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def admit(self, conn: "GuardedH11Protocol") -> bool:
        """Register ``conn``; make room by closing waiting connections; False: refuse it."""
        self.connections.add(conn)
        self.per_client[conn.client_key] = self.per_client.get(conn.client_key, 0) + 1
        if self.per_client[conn.client_key] > self.max_per_client:
            if not self._evict(conn, same_client=True):
                return False
        if len(self.connections) > self.max_connections:
            if not self._evict(conn, same_client=False):
                return False
        return True

    def _evict(self, newcomer: "GuardedH11Protocol", same_client: bool) -> bool:
        waiting = [c for c in self.connections
                   if c is not newcomer and c.waiting_for_head()
                   and (not same_client or c.client_key == newcomer.client_key)]
        if not waiting:
            self.refused += 1
            return False
        victim = min(waiting, key=lambda c: c.waiting_since)
        self.evicted += 1
        victim.drop("closed to make room for a new connection")
        return True

    def discard(self, conn: "GuardedH11Protocol") -> None:
        """Forget ``conn`` (idempotent)."""
        if conn in self.connections:
            self.connections.discard(conn)
            left = self.per_client.get(conn.client_key, 1) - 1
            if left > 0:
                self.per_client[conn.client_key] = left
            else:
                self.per_client.pop(conn.client_key, None)

    def stats(self) -> Dict[str, int]:
        """Counters for ``/v1/info`` and tests."""
        return {"open": len(self.connections), "evicted": self.evicted,
                "refused": self.refused, "head_timeouts": self.timed_out}


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and the guard's limits."""

    guard: ConnectionGuard  # set on the per-server subclass made by guarded_protocol()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: Optional[asyncio.TimerHandle] = None
        self._dropped = False
        self.waiting_since = time.monotonic()
        self.client_key = self.client[0] if self.client else None
        if not self.guard.admit(self):
            self.drop("refused: too many connections are busy")
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.guard.discard(self)
        self._cancel_head_timer()
        super().connection_lost(exc)

    def waiting_for_head(self) -> bool:
        """True while no request is being served on this connection."""
        return self.cycle is None or self.cycle.response_complete

    def data_received(self, data: bytes) -> None:
        if self.waiting_for_head() and self._head_timer is None:
            self._arm_head_timer()  # a later request on a kept-alive connection
        super().data_received(data)
        if not self.waiting_for_head():
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        self.waiting_since = time.monotonic()
        super().on_response_complete()

    def drop(self, why: str) -> None:
        """Close the connection without an answer (it has no request in progress)."""
        if self._dropped:
            return
        self._dropped = True
        self._cancel_head_timer()
        self.guard.discard(self)
        log.debug("connection from %s %s", self.client, why)
        if not self.transport.is_closing():
            self.transport.close()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.guard.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.waiting_for_head():
            self.guard.timed_out += 1
            self.drop(f"sent no complete request head within {self.guard.head_timeout:g} s")


def guarded_protocol(guard: ConnectionGuard) -> type:
    """A :class:`GuardedH11Protocol` subclass bound to ``guard`` (uvicorn's ``http=``)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": guard})
