"""Issue #25: service faults found with real files and hostile requests (LAB TIFF alpha,
memory amplification by a small PNG of a huge canvas, foreign Host / Origin, an
oversized request head)."""
from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffmatte.service.app import ServiceConfig
from diffmatte.service.server import RunningService
from test_service import TOKEN, b64, png, request


@pytest.fixture(scope="module")
def svc(tiny_engine):
    service = RunningService(tiny_engine, TOKEN, ServiceConfig())   # the default limits
    yield service
    service.stop()


def _tiff(mode: str, size=(16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "TIFF")
    return buf.getvalue()


@pytest.mark.parametrize("output", ["alpha", "rgba"])
def test_a_lab_tiff_alpha_is_a_4xx_not_a_500(svc, output):
    """Was: Pillow's ValueError 'conversion from LAB to ... not supported' escaped as a 500."""
    body = {"alpha": b64(_tiff("LAB")), "output": output}
    if output == "rgba":
        body["image"] = b64(png(np.zeros((12, 16, 3), np.uint8)))
    status, answer = request(svc, "POST", "/v1/cutout", body=body)
    assert status in (400, 422) and "'alpha'" in answer["detail"], answer


def test_no_image_field_answers_500_for_a_lab_tiff(svc):
    """The same class of fault on every route: a LAB TIFF where grey or RGB is needed is
    decoded or refused with a 4xx, never a 500."""
    lab = b64(_tiff("LAB"))
    mask = b64(png(np.zeros((12, 16), np.uint8)))
    for path, body in [("/v1/trimap/mask", {"mask": lab}),
                       ("/v1/trimap/mask", {"mask": mask, "image": lab}),
                       ("/v1/refine", {"image": lab, "trimap": mask}),
                       ("/v1/trimap/scribbles", {"image": b64(png(np.zeros((12, 16, 3), np.uint8))), "fg": lab})]:
        status, answer = request(svc, "POST", path, body=body)
        assert status < 500, (path, status, answer)


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_a_small_png_of_a_huge_canvas_is_answered_at_once(svc):
    """Was: a 62 KB PNG of 7999 x 7999 zeros took 88 s on /v1/trimap/mask and raised the
    server from 0.82 to 4.4 GB. The service runs in this process: its RSS is ours."""
    buf = io.BytesIO()
    Image.new("L", (7999, 7999), 0).save(buf, "PNG")
    body = {"mask": b64(buf.getvalue())}
    del buf
    base = _rss_mb()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.005)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    try:
        status, answer = request(svc, "POST", "/v1/trimap/mask", body=body)
    finally:
        took = time.perf_counter() - t0
        stop.set()
        watcher.join()
    assert 400 <= status < 500, answer
    assert took <= 1.0, f"answered in {took:.2f} s"
    assert peak[0] - base <= 100, f"RSS rose by {peak[0] - base:.0f} MB"


@pytest.mark.parametrize("headers,ok", [
    ({"Host": "evil.example"}, False),
    ({"Host": "evil.example:80"}, False),
    ({"Origin": "http://evil.example"}, False),
    ({"Origin": "null"}, False),
    ({"Host": "localhost"}, True),
    ({"Host": "127.0.0.1:9"}, True),
    ({"Host": "[::1]:9"}, True),
    ({"Origin": "http://localhost:3000"}, True),
    ({"Origin": "http://127.0.0.1"}, True),
])
def test_host_and_origin_must_be_loopback_names(svc, headers, ok):
    """Was: with the token, a foreign Host or Origin was served (DNS rebinding)."""
    status, answer = request(svc, "GET", "/v1/info", headers=headers)
    if ok:
        assert status == 200, answer
    else:
        assert status in (400, 403) and ("Host" in answer["detail"] or "Origin" in answer["detail"]), answer


def _raw(svc, head: bytes) -> bytes:
    with socket.create_connection((svc.host, svc.port), timeout=10) as s:
        s.sendall(head)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
            if b"\r\n\r\n" in data:
                return data


def test_a_request_head_over_16_kib_gets_400(svc):
    """docs/SERVICE.md: a head larger than 16 KiB is refused; a 17 KB head delivered at once
    was accepted."""
    filler = b"X-Fill: " + b"a" * 5600 + b"\r\n"
    head = (b"GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
            + filler * 3 + b"Connection: close\r\n\r\n")
    assert 16 * 1024 < len(head) < 17 * 1024 + 200
    assert _raw(svc, head).startswith(b"HTTP/1.1 400")
    small = (b"GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
             + filler + b"Connection: close\r\n\r\n")
    assert _raw(svc, small).startswith(b"HTTP/1.1 200")
