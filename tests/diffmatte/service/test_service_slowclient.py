"""Idle, half-open and slow clients must not lock the artist out of the service.

A real server on an ephemeral 127.0.0.1 port; hostile connections are raw sockets
opened by the test (no token, as any local process could).
"""
from __future__ import annotations

import http.client
import json
import socket
import time
from contextlib import ExitStack

import pytest

from diffmatte.service.app import ServiceConfig
from diffmatte.service.server import RunningService

TOKEN = "slow-client-test-token-0123456789abcdef"


class FakeEngine:
    """Answers info only; these tests never refine."""

    def info(self):
        return {"device": "cpu", "variant": "fake"}

    def refine(self, *args, **kwargs):  # pragma: no cover - never reached
        raise AssertionError("not used")


def info(svc: RunningService, timeout: float = 10.0):
    """One authenticated GET /v1/info; returns (status, body, seconds)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(svc.host, svc.port, timeout=timeout)
    try:
        conn.request("GET", "/v1/info", headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
    return resp.status, body, time.monotonic() - t0


def open_idle(svc: RunningService, n: int, stack: ExitStack, partial: bool = False):
    socks = []
    for _ in range(n):
        s = stack.enter_context(socket.create_connection((svc.host, svc.port), timeout=10))
        if partial:  # half a request head, never finished
            s.sendall(b"POST /v1/jobs/refine HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        socks.append(s)
    return socks


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


@pytest.fixture()
def service():
    svc = RunningService(FakeEngine(), TOKEN, ServiceConfig())
    yield svc
    svc.stop()


def test_100_idle_connections_do_not_block_a_valid_request(service):
    with ExitStack() as stack:
        open_idle(service, 70, stack)
        open_idle(service, 30, stack, partial=True)
        time.sleep(0.2)
        status, body, seconds = info(service)
        assert status == 200
        assert seconds < 3.0
        # They were all still open (not timed out yet): the request got in beside them.
        assert body["connections"]["open"] >= 101
        assert body["connections"]["refused"] == 0


def test_a_flood_over_the_connection_limits_evicts_the_oldest_waiting(tmp_path):
    cfg = ServiceConfig(max_connections=48, max_connections_per_client=32)
    svc = RunningService(FakeEngine(), TOKEN, cfg)
    try:
        with ExitStack() as stack:
            socks = open_idle(svc, 300, stack)
            time.sleep(0.3)
            status, body, seconds = info(svc)
            assert status == 200 and seconds < 3.0
            stats = body["connections"]
            assert stats["open"] <= 32
            assert stats["evicted"] >= 300 - 32
            # The oldest ones went first.
            assert closed_by_server(socks[0], 2.0)
            assert not closed_by_server(socks[-1], 0.2)
    finally:
        svc.stop()


def test_silent_and_slowloris_connections_are_closed_after_the_head_timeout():
    svc = RunningService(FakeEngine(), TOKEN, ServiceConfig(head_timeout=1.0))
    try:
        with ExitStack() as stack:
            silent = open_idle(svc, 1, stack)[0]
            slow = open_idle(svc, 1, stack)[0]
            t0 = time.monotonic()
            for ch in b"GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\n":  # one byte every 0.1 s
                try:
                    slow.sendall(bytes([ch]))
                except OSError:
                    break
                time.sleep(0.1)
                if time.monotonic() - t0 > 3:
                    break
            assert closed_by_server(silent, 3.0)
            assert closed_by_server(slow, 3.0)
            assert time.monotonic() - t0 < 4.0
        status, body, _ = info(svc)
        assert status == 200 and body["connections"]["head_timeouts"] >= 2
    finally:
        svc.stop()


def test_a_stalled_body_with_the_token_gets_408():
    svc = RunningService(FakeEngine(), TOKEN, ServiceConfig(body_timeout=0.5))
    try:
        with socket.create_connection((svc.host, svc.port), timeout=10) as s:
            s.sendall(f"POST /v1/trimap/mask HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mask\": ".encode())
            s.settimeout(5)
            answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408")
        assert info(svc)[0] == 200
    finally:
        svc.stop()


def test_requests_without_the_token_never_take_request_slots():
    svc = RunningService(FakeEngine(), TOKEN, ServiceConfig(max_active_requests=1))
    try:
        with socket.create_connection((svc.host, svc.port), timeout=10) as held:
            # One authorised request holds the only slot (its body never completes).
            held.sendall(f"POST /v1/trimap/mask HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                         "Content-Length: 100\r\n\r\n{".encode())
            time.sleep(0.3)
            status, body, _ = info(svc)
            assert status == 503 and "limit is 1" in body["detail"]
            conn = http.client.HTTPConnection(svc.host, svc.port, timeout=10)
            conn.request("GET", "/v1/info")
            assert conn.getresponse().status == 401
            conn.close()
        time.sleep(0.3)
        assert info(svc)[0] == 200
    finally:
        svc.stop()


def test_an_endless_request_head_is_refused_with_400():
    svc = RunningService(FakeEngine(), TOKEN, ServiceConfig())
    try:
        with socket.create_connection((svc.host, svc.port), timeout=10) as s:
            # An endless header: h11 stops buffering at 16 KiB instead of waiting for its end.
            s.sendall(b"GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20000)
            time.sleep(0.2)
            s.sendall(b"a" * 20000)
            s.settimeout(5)
            assert s.recv(4096).startswith(b"HTTP/1.1 400")
        assert info(svc)[0] == 200
    finally:
        svc.stop()
