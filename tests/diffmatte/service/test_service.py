"""The engine service against a real server on an ephemeral 127.0.0.1 port.

The server runs in a background thread of the test process with the tiny random-weight
DiffMatte engine (tests/doubles/checkpoints.py), and is driven through raw HTTP and through the
stdlib client ``refine_matte.client``.
"""
from __future__ import annotations

import base64
import http.client
import io
import json
import struct
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from diffmatte.service.app import ServiceConfig
from diffmatte.service.server import RunningService
from refine_matte.client import EngineClient, EngineError, EngineNotRunning, JobCancelled

TOKEN = "test-token-123"
H, W = 40, 56


# -- helpers ------------------------------------------------------------------------------
def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sample(h: int = H, w: int = W, seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    tri = np.zeros((h, w), np.uint8)
    tri[h // 4: 3 * h // 4, :] = 128
    tri[3 * h // 8: 5 * h // 8, w // 4: 3 * w // 4] = 255
    return image, tri


def request(svc: RunningService, method: str, path: str, body=None, token=TOKEN, headers=None,
            raw_body: bytes | None = None):
    """One HTTP request; returns (status, parsed JSON or raw bytes)."""
    conn = http.client.HTTPConnection(svc.host, svc.port, timeout=30)
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    data = raw_body
    if raw_body is not None and "Content-Type" not in hdrs:
        hdrs["Content-Type"] = "application/json"
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
    finally:
        conn.close()
    if resp.getheader("Content-Type", "").startswith("application/json"):
        return resp.status, json.loads(payload)
    return resp.status, payload


class SlowEngine:
    """The real engine, slowed down per step so that jobs overlap in time."""

    def __init__(self, engine, delay: float) -> None:
        self.engine = engine
        self.delay = delay
        self.calls = 0

    def info(self):
        return self.engine.info()

    def refine(self, image, trimap, steps=10, seed=None, callback=None, cancel=None, **kw):
        self.calls += 1

        def slow(step):
            time.sleep(self.delay)
            if callback is not None:
                callback(step)

        return self.engine.refine(image, trimap, steps=steps, seed=seed, callback=slow, cancel=cancel, **kw)


@pytest.fixture(scope="module")
def svc(tiny_engine):
    cfg = ServiceConfig(max_body_mb=1.0, max_megapixels=0.25, max_queue=4)
    service = RunningService(tiny_engine, TOKEN, cfg)
    yield service
    service.stop()
    assert not service.thread.is_alive()


@pytest.fixture()
def client(svc) -> EngineClient:
    return EngineClient(svc.host, svc.port, TOKEN, timeout=30)


def slow_service(engine, delay=0.05, **cfg) -> RunningService:
    return RunningService(SlowEngine(engine, delay), TOKEN, ServiceConfig(**cfg))


# -- auth and info ------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "wrong-token", ""])
@pytest.mark.parametrize("method,path", [("GET", "/v1/info"), ("POST", "/v1/jobs/refine"),
                                         ("POST", "/v1/trimap/mask"), ("GET", "/v1/nothing")])
def test_requests_without_the_token_get_401(svc, token, method, path):
    status, body = request(svc, method, path, body={} if method == "POST" else None, token=token)
    assert status == 401
    assert "token" in body["detail"]


def test_401_comes_before_the_body_is_read(svc):
    # An unauthenticated client cannot make the service buffer a large body.
    status, _ = request(svc, "POST", "/v1/jobs/refine", raw_body=b"x" * (3 << 20), token=None)
    assert status == 401


def test_info_reports_model_device_memory_and_queue(client):
    info = client.info()
    assert info["engine"]["variant"] == "tiny"
    assert info["engine"]["device"] == "cpu"
    assert info["memory"]["rss_bytes"] > 10 * 2**20
    assert info["queue"]["max_queue"] == 4
    assert info["limits"]["max_megapixels"] == 0.25


# -- refine -------------------------------------------------------------------------------
def test_refine_returns_16bit_alpha_that_respects_the_trimap(client):
    image, tri = sample()
    out = client.refine(png(image), png(tri), steps=3, seed=7)
    img = Image.open(io.BytesIO(out))
    assert img.mode.startswith("I;16") and img.size == (W, H)
    alpha = np.asarray(img)
    assert (alpha[tri == 0] == 0).all()
    assert (alpha[tri == 255] == 65535).all()
    unknown = alpha[tri == 128]
    assert unknown.min() < unknown.max()  # a real model output, not a constant
    # Same seed, same result: the service passes the seed through.
    assert client.refine(png(image), png(tri), steps=3, seed=7) == out


def test_samples_are_averaged_by_the_engine(client, tiny_engine):
    image, tri = sample()
    seen = []
    out = client.refine(png(image), png(tri), steps=2, seed=7, samples=2,
                        on_progress=lambda step, total, prev: seen.append((step, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    alpha = np.asarray(Image.open(io.BytesIO(out))).astype(np.float64) / 65535
    direct = tiny_engine.refine(image, tri, steps=2, seed=7, samples=2)
    assert np.abs(alpha - direct).max() < 1e-4  # 16-bit PNG rounding only
    single = np.asarray(Image.open(io.BytesIO(client.refine(png(image), png(tri), steps=2, seed=7))))
    assert not np.array_equal(single, np.asarray(Image.open(io.BytesIO(out))))


def test_widen_band_reaches_the_engine(svc, client, tiny_engine):
    # A trimap from rough input asks for Engine.refine's second pass (widen_band); the
    # default is one pass, as before.
    image, tri = sample()
    job = client.submit_refine(png(image), png(tri), steps=2, seed=7, preview=False, widen_band=True)
    assert [e["type"] for e in client.events(job)][-1] == "done"
    assert request(svc, "GET", f"/v1/jobs/{job}")[1]["widen_band"] is True
    alpha = np.asarray(Image.open(io.BytesIO(client.result(job)))).astype(np.float64) / 65535
    client.forget(job)
    direct = tiny_engine.refine(image, tri, steps=2, seed=7, widen_band=True)
    assert np.abs(alpha - direct).max() < 1e-4  # 16-bit PNG rounding only
    once = np.asarray(Image.open(io.BytesIO(client.refine(png(image), png(tri), steps=2, seed=7))))
    assert np.abs(once / 65535 - direct).max() > 0.01  # the tiny model's matte does change
    assert np.abs(once / 65535 - tiny_engine.refine(image, tri, steps=2, seed=7)).max() < 1e-4
    # the band the trimap was made with (the user's band option) is what the band grows by
    job = client.submit_refine(png(image), png(tri), steps=2, seed=7, preview=False, widen_band=True, band=1.5)
    assert [e["type"] for e in client.events(job)][-1] == "done"
    assert request(svc, "GET", f"/v1/jobs/{job}")[1]["band"] == 1.5
    alpha = np.asarray(Image.open(io.BytesIO(client.result(job)))).astype(np.float64) / 65535
    client.forget(job)
    assert np.abs(alpha - tiny_engine.refine(image, tri, steps=2, seed=7, widen_band=True, band=1.5)).max() < 1e-4


def test_progress_events_arrive_in_order_with_previews(client):
    image, tri = sample()
    seen = []
    client.refine(png(image), png(tri), steps=6, seed=1,
                  on_progress=lambda step, total, prev: seen.append((step, total, prev)))
    assert [s for s, _, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert {t for _, t, _ in seen} == {6}
    for _, _, prev in seen:
        preview = Image.open(io.BytesIO(prev))
        assert preview.size == (W, H) and preview.mode == "L"


def test_event_stream_order_and_ids(client):
    image, tri = sample()
    job = client.submit_refine(png(image), png(tri), steps=4, preview=False)
    events = list(client.events(job))
    kinds = [e["type"] for e in events]
    assert kinds[kinds.index("started"):] == ["started"] + ["progress"] * 4 + ["done"]
    assert all(k == "queued" for k in kinds[:kinds.index("started")])
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(e.get("preview") is None for e in events)
    assert client.result(job)[:8] == b"\x89PNG\r\n\x1a\n"
    client.forget(job)
    with pytest.raises(EngineError) as err:
        client.result(job)
    assert err.value.status == 404


def test_polling_returns_the_same_events(client):
    image, tri = sample()
    job = client.submit_refine(png(image), png(tri), steps=2, preview=False)
    streamed = [e["type"] for e in client.events(job)]
    status = client._json("GET", f"/v1/jobs/{job}?after=0")
    assert status["state"] == "done"
    assert [e["type"] for e in status["new_events"]] == streamed


def _stream_lines(svc, path, headers=None, timeout=10.0):
    """Read an event stream to its end; returns (status, list of lines, seconds)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(svc.host, svc.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()  # returns only when the server ends the stream
    finally:
        conn.close()
    return resp.status, data.decode("utf-8", "replace").splitlines(), time.monotonic() - t0


def test_streams_of_a_finished_job_end_at_or_past_its_last_event(client, svc):
    image, tri = sample()
    job = client.submit_refine(png(image), png(tri), steps=2, preview=False)
    events = list(client.events(job))
    last = events[-1]["id"]
    for path, headers in [(f"/v1/jobs/{job}/events?after={last}", None),
                          (f"/v1/jobs/{job}/events?after={last + 50}", None),
                          (f"/v1/jobs/{job}/events", {"Last-Event-ID": str(last)}),
                          (f"/v1/jobs/{job}/events", {"Last-Event-ID": "999999"})]:
        status, lines, seconds = _stream_lines(svc, path, headers)
        assert status == 200 and seconds < 3.0, (path, headers)
        assert not any(line.startswith("data:") for line in lines)
    # One before the end: exactly the terminal event, then the end.
    status, lines, _ = _stream_lines(svc, f"/v1/jobs/{job}/events?after={last - 1}")
    assert [line for line in lines if line.startswith("event:")] == ["event: done"]
    client.forget(job)


def test_a_stream_resumed_past_the_end_of_a_running_job_ends_with_the_job(tiny_engine):
    svc = slow_service(tiny_engine, delay=0.05)
    try:
        c = EngineClient(svc.host, svc.port, TOKEN, timeout=30)
        image, tri = sample()
        job = c.submit_refine(png(image), png(tri), steps=20, preview=False)
        status, lines, seconds = _stream_lines(svc, f"/v1/jobs/{job}/events?after=1000", timeout=30)
        assert status == 200 and seconds < 20
        assert c._json("GET", f"/v1/jobs/{job}")["state"] == "done"
    finally:
        svc.stop()


@pytest.mark.parametrize("value", ["\u00b2", "1\u00b2", "\u0663", "9" * 5000, "-1", "1e3", "12345678901"])
def test_bad_last_event_ids_get_400_not_500(client, svc, value):
    image, tri = sample()
    job = client.submit_refine(png(image), png(tri), steps=1, preview=False)
    list(client.events(job))
    conn = http.client.HTTPConnection(svc.host, svc.port, timeout=10)
    try:
        conn.putrequest("GET", f"/v1/jobs/{job}/events")
        conn.putheader("Authorization", f"Bearer {TOKEN}")
        conn.putheader("Last-Event-ID", value.encode("utf-8"))
        conn.endheaders()
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 400 and "Last-Event-ID" in body["detail"]


@pytest.mark.parametrize("query", ["after=%C2%B2", "after=" + "9" * 5000, "after=-3", "after=1.5"])
def test_bad_after_values_get_422(client, svc, query):
    image, tri = sample()
    job = client.submit_refine(png(image), png(tri), steps=1, preview=False)
    list(client.events(job))
    for path in (f"/v1/jobs/{job}/events?{query}", f"/v1/jobs/{job}?{query}"):
        status, body = request(svc, "GET", path)
        assert status == 422 and "after" in body["detail"], (path, body)


def test_refine_without_a_seed_is_repeatable(client):
    image, tri = sample()
    first = client.refine(png(image), png(tri), steps=3)  # the client sends "seed": null
    assert client.refine(png(image), png(tri), steps=3) == first
    assert client.refine(png(image), png(tri), steps=3, seed=0) == first
    assert client.refine(png(image), png(tri), steps=3, seed=5) != first
    status, body = request(svc_of(client), "POST", "/v1/jobs/refine", body=_refine_body())
    assert status == 202 and body["job"]
    summary = client._json("GET", f"/v1/jobs/{body['job']}")
    assert summary["seed"] == 0


def svc_of(client):
    """The (host, port) of a client, shaped like a RunningService for request()."""
    class _Addr:
        host, port = client.host, client.port
    return _Addr()


# -- malformed input: every class gets a 4xx with a message, never a 5xx -----------------------
def _refine_body(**over):
    image, tri = sample()
    body = {"image": b64(png(image)), "trimap": b64(png(tri)), "steps": 2}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims a huge size: a decompression bomb's header."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _malformed_cases():
    image, tri = sample()
    good = png(image)
    bad_tri = tri.copy()
    bad_tri[0, 0] = 7
    return [
        ("invalid json", dict(raw_body=b"{not json"), 422, "JSON"),
        ("json array", dict(raw_body=b"[1, 2]"), 422, "JSON object"),
        ("binary body", dict(raw_body=b"\xff\xfe\x00\x01garbage"), 400, "UTF-8 JSON"),
        ("empty body", dict(raw_body=b""), 422, "JSON object"),
        ("not json content", dict(raw_body=b"a=1", headers={"Content-Type": "text/plain"}), 422, "JSON object"),
        ("missing trimap", dict(body=_refine_body(trimap=None)), 422, "trimap"),
        ("unknown field", dict(body=_refine_body(colour="red")), 422, "colour"),
        ("bad base64", dict(body=_refine_body(image="***")), 422, "base64"),
        ("empty image", dict(body=_refine_body(image="")), 422, "image"),
        ("not an image", dict(body=_refine_body(image=b64(b"hello world" * 10))), 422, "image"),
        ("gif refused", dict(body=_refine_body(image=b64(_gif()))), 422, "format"),
        ("truncated png", dict(body=_refine_body(image=b64(good[: len(good) // 2]))), 422, "image"),
        ("sizes differ", dict(body=_refine_body(trimap=b64(png(tri[:-3])))), 422, "same size"),
        ("trimap values", dict(body=_refine_body(trimap=b64(png(bad_tri)))), 422, "0/128/255"),
        ("steps zero", dict(body=_refine_body(steps=0)), 422, "steps"),
        ("samples zero", dict(body=_refine_body(samples=0)), 422, "samples"),
        ("samples huge", dict(body=_refine_body(samples=99)), 422, "samples"),
        ("steps huge", dict(body=_refine_body(steps=100000)), 422, "steps"),
        ("steps text", dict(body=_refine_body(steps="many")), 422, "steps"),
        ("seed negative", dict(body=_refine_body(seed=-1)), 422, "seed"),
        ("widen_band text", dict(body=_refine_body(widen_band="maybe")), 422, "widen_band"),
        ("widen_band list", dict(body=_refine_body(widen_band=[True])), 422, "widen_band"),
        ("band negative", dict(body=_refine_body(widen_band=True, band=-1)), 422, "band"),
        ("band text", dict(body=_refine_body(widen_band=True, band="wide")), 422, "band"),
        ("too many megapixels", dict(body=_refine_body(image=b64(_png_header_only(1000, 1000)))), 413, "megapixels"),
        ("decompression bomb", dict(body=_refine_body(image=b64(_png_header_only(60000, 60000)))), 413, "megapixels"),
        ("body too large", dict(raw_body=b"{" + b" " * (1 << 20) + b"}"), 413, "1048576 bytes"),
        ("utf-16 body", dict(raw_body=json.dumps(_refine_body()).encode("utf-16")), 400, "UTF-8 JSON"),
        ("utf-16-le body", dict(raw_body=json.dumps({"steps": 2}).encode("utf-16-le")), 400, "UTF-8 JSON"),
        ("utf-32 body", dict(raw_body=json.dumps({"steps": 2}).encode("utf-32")), 400, "UTF-8 JSON"),
    ]


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, format="GIF")
    return buf.getvalue()


@pytest.mark.parametrize("name,kwargs,status,needle", _malformed_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_malformed_refine_requests_get_4xx_with_a_message(svc, name, kwargs, status, needle):
    got, body = request(svc, "POST", "/v1/jobs/refine", **kwargs)
    assert got == status, body
    assert isinstance(body["detail"], str) and needle in body["detail"]


def test_chunked_body_over_the_limit_gets_413(svc):
    # No Content-Length: the limit must hold on the bytes actually received.
    conn = http.client.HTTPConnection(svc.host, svc.port, timeout=30)
    try:
        conn.putrequest("POST", "/v1/jobs/refine")
        conn.putheader("Authorization", f"Bearer {TOKEN}")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        piece = b" " * 65536
        try:
            for _ in range(24):
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        resp = conn.getresponse()
        assert resp.status == 413
        assert "limit" in json.loads(resp.read())["detail"]
    finally:
        conn.close()


def test_quantize_trimap_accepts_soft_values(client):
    image, tri = sample()
    soft = tri.copy()
    soft[tri == 128] = 120   # a soft-brushed unknown band,
    soft[tri == 0] = 40      # near-black background
    soft[tri == 255] = 230   # and near-white foreground
    clean = np.asarray(Image.open(io.BytesIO(client.refine(png(image), png(tri), steps=2, seed=3))))
    out = np.asarray(Image.open(io.BytesIO(client.refine(png(image), png(soft), steps=2, seed=3,
                                                         quantize_trimap=True))))
    assert out.shape == (H, W)
    # Snapped back to 0/128/255, the soft trimap gives exactly the clean trimap's matte.
    assert np.array_equal(out, clean)
    assert (out[tri == 0] == 0).all() and (out[tri == 255] == out.max()).all() and out.max() > 0
    unknown = out[tri == 128]
    assert (unknown != 0).any() and (unknown != out.max()).any()


def test_quantize_trimap_thresholds():
    from diffmatte.service import imaging

    row = np.array([[0, 63, 64, 128, 191, 192, 255]], np.uint8)
    assert imaging.check_trimap(row, "trimap", True).tolist() == [[0, 0, 128, 128, 128, 255, 255]]
    with pytest.raises(imaging.InvalidInput, match="4 pixels with values outside"):
        imaging.check_trimap(row, "trimap", False)
    every = np.arange(256, dtype=np.uint8)[None]  # the uint8 table: exactly 0/128/255 pass
    with pytest.raises(imaging.InvalidInput, match="253 pixels with values outside"):
        imaging.check_trimap(every, "trimap", False)
    clean = np.array([[0, 128, 255]], np.uint8)
    assert imaging.check_trimap(clean, "trimap", False) is clean
    assert imaging.check_trimap(clean.astype(np.uint16), "trimap", False).dtype == np.uint16


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/v1/jobs/deadbeef", 404), ("GET", "/v1/jobs/deadbeef/result", 404),
    ("POST", "/v1/jobs/deadbeef/cancel", 404), ("GET", "/v1/jobs/deadbeef/events", 404),
    ("DELETE", "/v1/jobs/deadbeef", 404), ("GET", "/v1/unknown", 404), ("PUT", "/v1/info", 405),
])
def test_unknown_jobs_and_routes_get_4xx(svc, method, path, status):
    got, body = request(svc, method, path)
    assert got == status
    assert body["detail"]


def test_service_stays_healthy_after_malformed_requests(client, svc):
    for _, kwargs, _, _ in _malformed_cases():
        status, _ = request(svc, "POST", "/v1/jobs/refine", **kwargs)
        assert 400 <= status < 500
    image, tri = sample()
    assert client.refine(png(image), png(tri), steps=2)[:4] == b"\x89PNG"
    assert client.info()["queue"]["queued"] == 0


# -- cancel, queue, concurrency, failures -------------------------------------------------
def test_cancel_mid_job_then_keep_serving(tiny_engine):
    svc = slow_service(tiny_engine, delay=0.05)
    try:
        client = EngineClient(svc.host, svc.port, TOKEN)
        image, tri = sample()
        cancel = threading.Event()
        steps_seen = []

        def progress(step, total, _):
            steps_seen.append(step)
            if step == 2:
                cancel.set()

        with pytest.raises(JobCancelled):
            client.refine(png(image), png(tri), steps=40, on_progress=progress, cancel_event=cancel)
        assert 2 <= max(steps_seen) < 40
        assert client.refine(png(image), png(tri), steps=2)[:4] == b"\x89PNG"
    finally:
        svc.stop()


def test_cancel_a_queued_job_it_never_starts(tiny_engine):
    svc = slow_service(tiny_engine, delay=0.05)
    try:
        client = EngineClient(svc.host, svc.port, TOKEN)
        image, tri = sample()
        first = client.submit_refine(png(image), png(tri), steps=20, preview=False)
        second = client.submit_refine(png(image), png(tri), steps=20, preview=False)
        client.cancel(second)
        kinds = [e["type"] for e in client.events(second)]
        assert kinds[0] == "queued" and kinds[-1] == "cancelled" and "started" not in kinds
        client.cancel(first)
        assert [e["type"] for e in client.events(first)][-1] == "cancelled"
        with pytest.raises(EngineError) as err:
            client.result(first)
        assert err.value.status == 409
    finally:
        svc.stop()


def test_two_concurrent_clients_are_served_in_turn(tiny_engine):
    svc = slow_service(tiny_engine, delay=0.03)
    try:
        image, tri = sample()
        results, errors = {}, []

        def one(name):
            try:
                c = EngineClient(svc.host, svc.port, TOKEN)
                job = c.submit_refine(png(image), png(tri), steps=8, preview=False)
                events = list(c.events(job))
                results[name] = (events, c._json("GET", f"/v1/jobs/{job}"))
            except Exception as exc:  # noqa: BLE001 - reported by the assert below
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        spans = sorted((s["started"], s["finished"]) for _, s in results.values())
        assert spans[0][1] <= spans[1][0], "the two jobs overlapped on the device"
        positions = sorted(ev[0]["position"] for ev, _ in results.values())
        assert positions == [0, 1]  # the second one was told it waits behind the first
        assert all(ev[-1]["type"] == "done" for ev, _ in results.values())
    finally:
        svc.stop()


def test_full_queue_answers_429(tiny_engine):
    svc = slow_service(tiny_engine, delay=0.05, max_queue=1)
    try:
        client = EngineClient(svc.host, svc.port, TOKEN)
        image, tri = sample()
        jobs = [client.submit_refine(png(image), png(tri), steps=30, preview=False)]
        deadline = time.monotonic() + 10
        while client._json("GET", f"/v1/jobs/{jobs[0]}")["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        jobs.append(client.submit_refine(png(image), png(tri), steps=30, preview=False))
        with pytest.raises(EngineError) as err:
            client.submit_refine(png(image), png(tri), steps=2)
        assert err.value.status == 429 and "queue is full" in err.value.message
        for job in jobs:
            client.cancel(job)
    finally:
        svc.stop()


class OomOnce:
    """The real engine, but the first refine dies of device out-of-memory."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.failed = False

    def info(self):
        return self.engine.info()

    def refine(self, image, trimap, **kw):
        if not self.failed:
            self.failed = True
            import torch
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.engine.refine(image, trimap, **kw)


def test_out_of_memory_fails_the_job_clearly_and_service_keeps_serving(tiny_engine):
    svc = RunningService(OomOnce(tiny_engine), TOKEN)
    try:
        client = EngineClient(svc.host, svc.port, TOKEN)
        image, tri = sample()
        with pytest.raises(EngineError) as err:
            client.refine(png(image), png(tri), steps=2)
        assert err.value.code == "out_of_memory"
        assert "out of memory" in err.value.message and "keeps serving" in err.value.message
        assert client.refine(png(image), png(tri), steps=2)[:4] == b"\x89PNG"
    finally:
        svc.stop()


def test_engine_value_error_is_a_failed_job_not_a_crash(tiny_engine):
    from diffmatte.errors import InputError

    class Picky(SlowEngine):
        def refine(self, image, trimap, **kw):
            raise InputError("image is too flat")

    svc = RunningService(Picky(tiny_engine, 0), TOKEN)
    try:
        client = EngineClient(svc.host, svc.port, TOKEN)
        image, tri = sample()
        with pytest.raises(EngineError) as err:
            client.refine(png(image), png(tri), steps=2)
        assert err.value.code == "invalid_input" and "too flat" in err.value.message
        assert client.info()["queue"]["completed"] == 1
    finally:
        svc.stop()


def test_an_internal_value_error_is_an_engine_error_not_invalid_input(tiny_engine):
    """Issue #25: numpy's "zero-size array ..." out of the prior was answered invalid_input."""
    class Broken(SlowEngine):
        def refine(self, image, trimap, **kw):
            raise ValueError("zero-size array to reduction operation maximum which has no identity")

    svc = RunningService(Broken(tiny_engine, 0), TOKEN)
    try:
        client = EngineClient(svc.host, svc.port, TOKEN)
        image, tri = sample()
        with pytest.raises(EngineError) as err:
            client.refine(png(image), png(tri), steps=2)
        assert err.value.code == "engine_error" and "zero-size" in err.value.message
        assert client.info()["queue"]["completed"] == 1
    finally:
        svc.stop()


def test_engine_input_checks_raise_input_error(tiny_engine):
    from diffmatte.errors import InputError

    image, tri = sample()
    with pytest.raises(InputError):
        tiny_engine.refine(image, tri[:-1], steps=1)
    with pytest.raises(InputError):
        tiny_engine.refine(image, tri, steps=0)


def test_finished_jobs_do_not_pile_up(tiny_engine):
    svc = RunningService(tiny_engine, TOKEN, ServiceConfig(keep_finished=3))
    try:
        client = EngineClient(svc.host, svc.port, TOKEN)
        image, tri = sample(16, 16)
        for _ in range(8):
            job = client.submit_refine(png(image), png(tri), steps=1)
            list(client.events(job))  # finished but never fetched nor forgotten
        assert len(svc.service.manager.jobs) <= 4
        assert all(j.image is None for j in svc.service.manager.jobs.values())
    finally:
        svc.stop()


def test_stop_cancels_queued_jobs_and_ends_streams(tiny_engine):
    svc = slow_service(tiny_engine, delay=0.05, shutdown_grace=0.2)
    client = EngineClient(svc.host, svc.port, TOKEN)
    image, tri = sample()
    jobs = [client.submit_refine(png(image), png(tri), steps=200, preview=False) for _ in range(3)]
    outcome = {}

    def follow(job):
        outcome[job] = [e["type"] for e in EngineClient(svc.host, svc.port, TOKEN).events(job)][-1]

    threads = [threading.Thread(target=follow, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    svc.stop(timeout=30)
    for t in threads:
        t.join(10)
    assert not svc.thread.is_alive()
    assert time.monotonic() - t0 < 15
    assert sorted(outcome.values()) == ["cancelled"] * 3
    with pytest.raises(EngineNotRunning):
        client.info()


# -- trimap and SAM endpoints ---------------------------------------------------------------
def _mask():
    m = np.zeros((H, W), np.uint8)
    m[10:30, 12:44] = 255
    return m


def test_trimap_from_mask(client):
    out = np.asarray(Image.open(io.BytesIO(client.trimap_from_mask(png(_mask()), band=3))))
    assert out.shape == (H, W)
    assert set(np.unique(out)) == {0, 128, 255}
    assert out[20, 28] == 255 and out[0, 0] == 0


def test_trimap_from_mask_with_image(client):
    image, _ = sample()
    with_image = np.asarray(Image.open(io.BytesIO(
        client.trimap_from_mask(png(_mask()), band=3, image_png=png(image)))))
    assert with_image.shape == (H, W) and set(np.unique(with_image)) <= {0, 128, 255}
    assert with_image[20, 28] == 255
    small = np.zeros((H // 2, W // 2, 3), np.uint8)
    with pytest.raises(EngineError, match="image"):
        client.trimap_from_mask(png(_mask()), band=3, image_png=png(small))


def test_trimap_from_a_rough_selection(client, tmp_path, monkeypatch):
    """edge="rough": the mask is a lasso around the subject; the band moves to the subject."""
    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(tmp_path))   # no SAM installed: the colour path
    monkeypatch.delenv("REFINE_MATTE_SAM_CHECKPOINT", raising=False)
    image = np.full((H, W, 3), (40, 110, 140), np.uint8)
    image[10:30, 12:44] = (220, 60, 40)
    lasso = np.zeros((H, W), np.uint8)
    lasso[3:37, 5:51] = 255  # 7 px outside the subject all round
    edges: list = []  # how the service read it (X-Trimap-Edge), for the refine's widen_band
    out = np.asarray(Image.open(io.BytesIO(
        client.trimap_from_mask(png(lasso), band=2, image_png=png(image), edge="rough", on_edge=edges.append))))
    assert out[20, 28] == 255 and out[4, 6] == 0 and out[35, 49] == 0  # the lasso's ring is background
    exact = np.asarray(Image.open(io.BytesIO(client.trimap_from_mask(png(lasso), band=2, image_png=png(image),
                                                                      on_edge=edges.append))))
    assert exact[4, 28] != 0  # read as the edge, that ring is foreground or band
    client.trimap_from_mask(png(lasso), band=2, image_png=png(image), edge="auto", on_edge=edges.append)
    assert edges[:2] == ["rough", "exact"] and len(edges) == 3 and edges[2] in ("rough", "exact")
    with pytest.raises(EngineError, match="needs the image"):
        client.trimap_from_mask(png(lasso), edge="rough")


def test_a_selection_covering_the_photo_comes_back_with_a_warning(svc):
    """The trimap step's warning travels in a header (X-Trimap-Warning); a lasso with
    background all round gets none."""
    image = np.full((H, W, 3), (40, 110, 140), np.uint8)
    image[10:30, 12:44] = (220, 60, 40)
    for mask, warned in ((np.full((H, W), 255, np.uint8), True), (_mask_around(), False)):
        conn = http.client.HTTPConnection(svc.host, svc.port, timeout=30)
        body = json.dumps({"mask": b64(png(mask)), "image": b64(png(image)), "edge": "rough"})
        conn.request("POST", "/v1/trimap/mask", body=body,
                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        assert resp.status == 200
        note = resp.getheader("X-Trimap-Warning")
        assert (note is not None and "too little background" in note) == warned


def test_the_client_hands_the_trimap_warning_to_on_warning(client):
    image = np.full((H, W, 3), (40, 110, 140), np.uint8)
    image[10:30, 12:44] = (220, 60, 40)
    said: list = []
    client.trimap_from_mask(png(np.full((H, W), 255, np.uint8)), image_png=png(image), edge="rough",
                            on_warning=said.append)
    assert len(said) == 1 and "too little background" in said[0]
    client.trimap_from_mask(png(_mask_around()), image_png=png(image), edge="rough", on_warning=said.append)
    assert len(said) == 1


def _mask_around():
    lasso = np.zeros((H, W), np.uint8)
    lasso[3:37, 5:51] = 255
    return lasso


def test_refine_warns_about_an_unknown_region_no_known_colour_explains(client):
    """A large unknown patch of a colour found in neither known region (a flag held by a
    toy) gets a warning event; an ordinary band does not."""
    image = np.zeros((H, W, 3), np.uint8)
    image[:, : W // 2] = (200, 180, 40)    # known foreground: yellow
    image[:, W // 2:] = (30, 60, 160)      # known background: blue
    tri = np.zeros((H, W), np.uint8)
    tri[:, : W // 2] = 255
    tri[:, W // 2 - 2: W // 2 + 2] = 128
    seen = []
    client.refine(png(image), png(tri), steps=2, on_warning=seen.append)
    assert seen == []
    image[8:32, 16:40] = (230, 0, 200)     # the "flag": magenta, all inside the unknown area
    tri[6:34, 14:42] = 128
    client.refine(png(image), png(tri), steps=2, on_warning=seen.append)
    assert len(seen) == 1 and "Paint foreground or background there" in seen[0]


def test_trimap_from_scribbles(client):
    image, _ = sample()
    image[10:30, 12:44] = 230
    fg = np.zeros((H, W), np.uint8)
    fg[18:22, 20:36] = 255
    bg = np.zeros((H, W), np.uint8)
    bg[0:3, :] = 255
    out = np.asarray(Image.open(io.BytesIO(client.trimap_from_scribbles(png(image), png(fg), png(bg), band=2))))
    assert out[20, 28] == 255 and out[1, 5] == 0
    assert set(np.unique(out)) <= {0, 128, 255}


@pytest.mark.parametrize("path,body,needle", [
    ("/v1/trimap/mask", {"mask": "!!"}, "base64"),
    ("/v1/trimap/mask", {"mask": b64(png(_mask())), "band": -1}, "band"),
    ("/v1/trimap/scribbles", {"image": b64(png(sample()[0])), "fg": b64(png(_mask())),
                              "bg": b64(png(np.zeros((H, W), np.uint8)))}, "background stroke"),
    ("/v1/trimap/scribbles", {"image": b64(png(sample()[0])), "fg": b64(png(_mask()[:10]))}, "bg"),
])
def test_bad_trimap_requests_get_422(svc, path, body, needle):
    status, answer = request(svc, "POST", path, body=body)
    assert status == 422 and needle in answer["detail"]


def test_trimap_endpoints_answer_503_when_trimap_is_missing(svc, monkeypatch):
    monkeypatch.setitem(sys.modules, "trimap", None)  # makes `import trimap` fail
    status, body = request(svc, "POST", "/v1/trimap/mask", body={"mask": b64(png(_mask()))})
    assert status == 503 and "trimap" in body["detail"]


def test_sam_without_a_checkpoint_answers_503(svc, tmp_path, monkeypatch):
    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("REFINE_MATTE_SAM_CHECKPOINT", raising=False)
    status, body = request(svc, "POST", "/v1/sam/trimap",
                           body={"image": b64(png(sample()[0])), "points": [[5, 5]], "labels": [1]})
    assert status == 503 and "SAM" in body["detail"]


def _tiny_sam():
    from doubles.sam import tiny_sam

    return tiny_sam()


def test_sam_embedding_is_cached_per_image(tiny_engine):
    pytest.importorskip("segment_anything")
    svc = RunningService(tiny_engine, TOKEN, ServiceConfig(sam_checkpoint=_tiny_sam()))
    try:
        client = EngineClient(svc.host, svc.port, TOKEN)
        image, _ = sample()
        image_id = client.sam_embed(png(image))
        prompter = svc.service.sam.prompter
        assert prompter.encoder_calls == 1
        for x in (5, 20, 40):
            tri = np.asarray(Image.open(io.BytesIO(client.sam_trimap(points=[(x, 10)], labels=[1], image_id=image_id))))
            assert tri.shape == (H, W) and set(np.unique(tri)) <= {0, 128, 255}
        client.sam_trimap(png(image), box=(2, 2, 30, 30))
        mask = np.asarray(Image.open(io.BytesIO(client.sam_trimap(png(image), points=[(3, 3)], labels=[0],
                                                                  output="mask"))))
        assert set(np.unique(mask)) <= {0, 255}
        assert prompter.encoder_calls == 1  # every click reused the cached embedding
        for body, needle in (({"image_id": image_id, "points": [[500, 5]], "labels": [1]}, "outside"),
                             ({"image_id": image_id, "points": [[5, 5]], "labels": [1, 0]}, "labels"),
                             ({"image_id": image_id}, "prompt"),
                             ({"points": [[5, 5]], "labels": [1]}, "image_id")):
            status, answer = request(svc, "POST", "/v1/sam/trimap", body=body)
            assert status == 422 and needle in answer["detail"], answer
        status, answer = request(svc, "POST", "/v1/sam/trimap", body={"image_id": "nope", "points": [[1, 1]]})
        assert status == 404
    finally:
        svc.stop()


def test_a_rough_rectangle_goes_to_sams_box_prompt_when_sam_is_installed(tiny_engine):
    """A rectangle says only where the subject is; with SAM installed its box prompt reads
    it (X-Trimap-Edge: sam-box). A lasso that is not a rectangle, and an exact edge, are
    not sent to SAM."""
    pytest.importorskip("segment_anything")
    svc = RunningService(tiny_engine, TOKEN, ServiceConfig(sam_checkpoint=_tiny_sam()))
    try:
        client = EngineClient(svc.host, svc.port, TOKEN)
        image = np.full((H, W, 3), (40, 110, 140), np.uint8)
        image[10:30, 12:44] = (220, 60, 40)
        prompter = svc.service.sam.load()
        boxes: list = []
        real = prompter.trimap
        prompter.trimap = lambda img, box=None, **kw: boxes.append(box) or real(img, box=box, **kw)
        edges: list = []
        out = np.asarray(Image.open(io.BytesIO(client.trimap_from_mask(
            png(_mask_around()), band=2, image_png=png(image), edge="rough", on_edge=edges.append))))
        assert edges == ["sam-box"] and boxes == [[5, 3, 50, 36]]
        assert out.shape == (H, W) and set(np.unique(out)) <= {0, 128, 255}
        lasso = _mask_around()
        lasso[3:8, 5:10] = 0                               # a corner cut off: a lasso, not a box
        client.trimap_from_mask(png(lasso), band=2, image_png=png(image), edge="rough", on_edge=edges.append)
        client.trimap_from_mask(png(_mask_around()), band=2, image_png=png(image), on_edge=edges.append)
        assert edges == ["sam-box", "rough", "exact"] and len(boxes) == 1
    finally:
        svc.stop()


def test_shutdown_endpoint_stops_the_service(tiny_engine):
    svc = RunningService(tiny_engine, TOKEN)
    client = EngineClient(svc.host, svc.port, TOKEN)
    client.shutdown()
    svc.thread.join(30)
    assert not svc.thread.is_alive()
    with pytest.raises(EngineNotRunning):
        client.info()


def test_client_reports_413_for_a_body_far_over_the_limit(client):
    # Much larger than the socket buffers: the service answers before reading it all.
    with pytest.raises(EngineError) as err:
        client.refine(b"\x89PNG" + bytes(8 << 20), b"x")
    assert err.value.status == 413 and "--max-body-mb" in err.value.message


def test_no_job_objects_survive_finished_requests(tiny_engine, monkeypatch):
    import gc
    import weakref

    from diffmatte.service import job_routes

    created = []

    class TrackedJob(job_routes.Job):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            created.append(weakref.ref(self))

    monkeypatch.setattr(job_routes, "Job", TrackedJob)
    svc = RunningService(tiny_engine, TOKEN)
    try:
        client = EngineClient(svc.host, svc.port, TOKEN)
        image, tri = sample(24, 24)
        cancel = threading.Event()
        for i in range(12):
            if i % 4 == 3:  # some cancelled mid-job too
                with pytest.raises(JobCancelled):
                    client.refine(png(image), png(tri), steps=50, cancel_event=cancel,
                                  on_progress=lambda *a: cancel.set())
                cancel.clear()
            else:
                client.refine(png(image), png(tri), steps=2, on_progress=lambda *a: None)
        assert len(created) == 12
        deadline = time.monotonic() + 5
        alive = -1
        while time.monotonic() < deadline:
            gc.collect()
            alive = sum(ref() is not None for ref in created)
            if alive == 0:
                break
            time.sleep(0.05)
        assert alive == 0, f"{alive} jobs still referenced after their requests"
        assert svc.service.manager.jobs == {}
    finally:
        svc.stop()


def test_default_limits_take_a_45_megapixel_camera_photo():
    # Issue #11: photos up to 45 MP are refined within the memory plan; the service's
    # default limits must not refuse them first (an 8-bit PNG of one is ~60-140 MB).
    import argparse

    from diffmatte.service.cli import add_arguments

    cfg = ServiceConfig()
    assert cfg.max_pixels >= 8256 * 5504 and cfg.max_body >= 150 * 2**20
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert args.max_megapixels == cfg.max_megapixels and args.max_body_mb == cfg.max_body_mb
    assert args.precision == "auto"


# -- start-up (issue 23): health checks answer while the model loads ------------------------
def test_the_service_answers_while_the_model_loads_and_jobs_wait_for_it(tiny_engine):
    from diffmatte.service.cli import LoadingEngine

    release = threading.Event()

    def slow_load():
        release.wait(30)
        return tiny_engine
    svc = RunningService(LoadingEngine(slow_load, device="cpu"), TOKEN)
    try:
        client = EngineClient(svc.host, svc.port, TOKEN, timeout=30)
        t0 = time.monotonic()
        info = client.info()
        assert time.monotonic() - t0 < 5 and info["engine"] == {"loading": True, "device": "cpu"}
        assert client.alive()
        image, tri = sample()
        job = client.submit_refine(png(image), png(tri), steps=1, preview=False)  # waits for the model
        time.sleep(0.3)
        assert client._json("GET", f"/v1/jobs/{job}")["state"] in ("queued", "running")
        release.set()
        client.wait(job)
        assert client.result(job)[:4] == b"\x89PNG"
        assert client.info()["engine"]["variant"] == "tiny"
    finally:
        release.set()
        svc.stop()


def test_a_failed_load_is_reported_and_fails_jobs_clearly():
    from diffmatte.service.cli import LoadingEngine

    seen = []

    def bad_load():
        raise FileNotFoundError("no weights here")
    engine = LoadingEngine(bad_load, on_error=seen.append)
    with pytest.raises(RuntimeError, match="failed to load: FileNotFoundError: no weights here"):
        engine.wait(10)
    assert engine.info() == {"loading": False, "error": "FileNotFoundError: no weights here"}
    assert len(seen) == 1


def test_an_older_service_without_widen_band_refines_once_and_says_so(client, monkeypatch):
    """A plugin newer than its engine: the service answers the unknown field with 422 (as one
    without ``widen_band`` does). The client refines once, without the field, and warns."""
    from refine_matte import client as client_mod

    real = client._json

    def older(method, path, payload=None, **kw):
        if payload is not None and "widen_band" in payload:
            raise client_mod.EngineError("422: body.widen_band: Extra inputs are not permitted", 422)
        return real(method, path, payload, **kw)

    monkeypatch.setattr(client, "_json", older)
    image, tri = sample()
    warnings = []
    out = client.refine(png(image), png(tri), steps=2, seed=7, widen_band=True, on_warning=warnings.append)
    assert out == client.refine(png(image), png(tri), steps=2, seed=7)
    assert warnings == [client_mod.OLD_ENGINE_NO_WIDEN]
    # any other refusal is still an error
    monkeypatch.setattr(client, "_json", lambda *a, **k: (_ for _ in ()).throw(client_mod.EngineError("422: steps", 422)))
    with pytest.raises(client_mod.EngineError):
        client.refine(png(image), png(tri), steps=2, seed=7, widen_band=True)


def test_a_service_that_widens_but_knows_no_band_widens_by_its_default(client, monkeypatch):
    """An engine with ``widen_band`` but older than ``band`` refuses the band (422 naming it):
    the client asks again for the widened refine without it, and warns of nothing."""
    from refine_matte import client as client_mod

    real, sent = client._json, []

    def older(method, path, payload=None, **kw):
        if payload is not None and "band" in payload:
            raise client_mod.EngineError("HTTP 422: field 'band': Extra inputs are not permitted", 422)
        if payload is not None and "trimap" in payload:
            sent.append(sorted(k for k in ("widen_band", "band") if k in payload))
        return real(method, path, payload, **kw)

    monkeypatch.setattr(client, "_json", older)
    image, tri = sample()
    warnings = []
    out = client.refine(png(image), png(tri), steps=2, seed=7, widen_band=True, band=2, on_warning=warnings.append)
    assert out == client.refine(png(image), png(tri), steps=2, seed=7, widen_band=True)
    assert sent == [["widen_band"], ["widen_band"]] and warnings == []
    # "band" is a whole field name: an engine refusing widen_band is not taken for one refusing band
    assert not client_mod.rejects_field(client_mod.EngineError("HTTP 422: field 'widen_band': Extra", 422), "band")
