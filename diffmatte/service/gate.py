"""Outermost ASGI layer: bearer-token check, body limits, request cap, last-resort answer.

It sits outside FastAPI so that unauthenticated or oversized requests are refused
before any body is parsed, and so that the limit is enforced on the bytes actually
received (a lying or missing Content-Length does not get around it). Only requests
that carry the token count against ``max_active``: connections without it cannot
take the slots of the artist's front end (see ``guard.py`` for idle connections).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any, Awaitable, Callable, Dict, List, Tuple

log = logging.getLogger("diffmatte.service")

Scope = Dict[str, Any]
Receive = Callable[[], Awaitable[Dict[str, Any]]]
Send = Callable[[Dict[str, Any]], Awaitable[None]]


async def send_json(send: Send, status: int, detail: str, headers: List[tuple] | None = None) -> None:
    """Send a complete JSON error answer ``{"detail": ...}``."""
    body = json.dumps({"detail": detail}).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw.extend(headers or [])
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def is_json_text(body: bytes) -> bool:
    """True when ``body`` is UTF-8 without NUL bytes, the only JSON text we accept.

    ``json.loads`` on bytes silently accepts UTF-16/32, and UTF-16 of ASCII text is
    valid UTF-8 apart from its NUL bytes (which JSON text never holds unescaped).
    """
    if b"\x00" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# Largest request head (request line + headers); docs/SERVICE.md. h11 enforces it only
# while a head is incomplete, so a larger head that arrives at once is refused here.
MAX_HEAD_BYTES = 16 * 1024


def head_size(scope: Scope) -> int:
    """Bytes of the request line and headers as sent (CRLFs and ': ' included)."""
    line = len(scope.get("method", "")) + len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + 12
    return line + sum(len(n) + len(v) + 4 for n, v in scope.get("headers", [])) + 2


def host_of(authority: str) -> str:
    """'Host: [::1]:8000' -> '::1', 'localhost:80' -> 'localhost', lower case; path dropped."""
    a = authority.split("/", 1)[0].strip().lower()
    if a.startswith("["):
        return a[1:a.find("]")] if "]" in a else ""
    return a.rsplit(":", 1)[0] if a.count(":") == 1 else a


def is_loopback_name(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1 (also in IPv4-mapped form)."""
    import ipaddress

    if host in ("localhost", "localhost."):
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return addr.is_loopback or bool(mapped and mapped.is_loopback)


class Gate:
    """Wrap ``app`` with token auth, a ``max_body`` byte cap and ``max_active`` requests.

    ``body_timeout``: seconds the client may pause while sending the body (a stalled
    upload gets 408 instead of holding a request slot for ever).
    """

    def __init__(self, app: Any, token: str, max_body: int, max_active: int = 64,
                 body_timeout: float = 30.0, hosts: Tuple[str, ...] = ()) -> None:
        self.app = app
        #: Host / Origin names served besides loopback ones; "*" serves any
        self.hosts = {h.lower().strip("[]") for h in hosts}
        self._token = token.encode("utf-8")
        self.max_body = max_body
        self.max_active = max_active
        self.body_timeout = body_timeout
        self.active = 0

    def _foreign(self, headers: List[tuple]) -> str:
        """Why the request's Host or Origin is not a name this service answers to ('' if it is)."""
        if "*" in self.hosts:
            return ""
        for name, value in headers:
            key = name.lower()
            if key not in (b"host", b"origin"):
                continue
            text = value.decode("latin-1").strip()
            if key == b"host":
                host = host_of(text)
                if not self._ours(host):
                    return (f"Host {text!r} is not a loopback name (localhost, 127.0.0.1, [::1]); "
                            "the service answers only requests addressed to this machine")
            else:
                host = host_of(text.split("://", 1)[1]) if "://" in text else ""
                if not self._ours(host):
                    return f"Origin {text!r} is not a loopback origin; requests from web pages are refused"
        return ""

    def _ours(self, host: str) -> bool:
        return bool(host) and (is_loopback_name(host) or host in self.hosts)

    def _authorised(self, headers: List[tuple]) -> bool:
        for name, value in headers:
            if name.lower() == b"authorization":
                scheme, _, given = value.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token):
                    return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            # No websocket endpoints: refuse the handshake.
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = scope.get("headers", [])
        head = head_size(scope)
        if head > MAX_HEAD_BYTES:
            await send_json(send, 400, f"the request head is {head} bytes; the limit is {MAX_HEAD_BYTES} "
                            f"bytes (16 KiB)", [(b"connection", b"close")])
            return
        refused = self._foreign(headers)
        if refused:
            # Before the token: a web page that learned the token still cannot reach the
            # service through DNS rebinding (its requests carry its own Host / Origin).
            await send_json(send, 403, refused)
            return
        if not self._authorised(headers):
            await send_json(send, 401, "missing or wrong token: send 'Authorization: Bearer <token>' "
                            "with the token from the service config directory",
                            [(b"www-authenticate", b"Bearer")])
            return
        if self.active >= self.max_active:
            await send_json(send, 503, f"{self.active} requests are in progress (the limit is "
                            f"{self.max_active}); retry in a moment", [(b"retry-after", b"1")])
            return
        self.active += 1
        try:
            await self._checked(scope, receive, send)
        finally:
            self.active -= 1

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = scope.get("headers", [])
        limit_text = f"the request body limit is {self.max_body} bytes ({self.max_body / 2**20:.1f} MiB, --max-body-mb)"
        for name, value in headers:
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_json(send, 400, "invalid Content-Length header")
                    return
                if declared > self.max_body:
                    await send_json(send, 413, f"body of {declared} bytes is too large; {limit_text}")
                    return
        chunks: List[bytes] = []
        size = 0
        more = True
        while more:
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except asyncio.TimeoutError:
                await send_json(send, 408, f"the request body stalled for {self.body_timeout:.0f} s; "
                                f"received {size} bytes", [(b"connection", b"close")])
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await send_json(send, 413, f"body is too large; {limit_text}")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        del chunks
        if body and not is_json_text(body):
            await send_json(send, 400, "the body could not be parsed: send UTF-8 JSON with "
                            "Content-Type: application/json (found bytes that are not UTF-8, "
                            "or NUL bytes as in UTF-16/UTF-32)")
            return
        replayed = False

        async def replay() -> Dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        started = False

        async def tracked_send(message: Dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, replay, tracked_send)
        except Exception:  # noqa: BLE001 - the service must outlive any handler bug
            log.exception("unhandled error for %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await send_json(send, 500, "internal error in the service; see its log")
