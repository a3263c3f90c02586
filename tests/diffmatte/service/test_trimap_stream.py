"""A trimap route's progress (service/trimap_stream.py and the plugin's client_trimap.py,
issue #23): with ``"progress": true`` the mask and scribble routes stream the computation's
rising thousandths and then the same PNG; errors arrive as the plain answer's; the client
follows it, falls back for an older service and stops it on cancel."""
from __future__ import annotations

import base64
import io
import json
import threading

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cv2")

from diffmatte.service.app import ServiceConfig  # noqa: E402
from diffmatte.service.server import RunningService  # noqa: E402
from refine_matte import client_trimap  # noqa: E402
from refine_matte.client import EngineClient, EngineError, JobCancelled  # noqa: E402

TOKEN = "trimap-stream-token"
H, W = 120, 160


@pytest.fixture(scope="module")
def svc(tiny_engine):
    service = RunningService(tiny_engine, TOKEN, ServiceConfig(max_body_mb=4.0))
    yield service
    service.stop()


@pytest.fixture()
def client(svc) -> EngineClient:
    return EngineClient(svc.host, svc.port, TOKEN, timeout=30)


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def grey(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def scene():
    """A noisy red disk on blue-green and a lasso 15 px around it (uint8 image, mask)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:H, :W]
    r = np.hypot(yy - 60, xx - 80)
    img = np.empty((H, W, 3), np.float32)
    img[:] = (0.15, 0.45, 0.55)
    img[r <= 40] = (0.85, 0.2, 0.15)
    img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)
    return (img * 255).astype(np.uint8), np.where(r <= 55, 255, 0).astype(np.uint8)


def sse(svc, path: str, body: dict) -> list:
    """POST ``body`` to ``path`` and read the whole event stream: its events (dicts)."""
    import http.client

    conn = http.client.HTTPConnection(svc.host, svc.port, timeout=30)
    conn.request("POST", path, body=json.dumps(body).encode(),
                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/event-stream")
    text = resp.read().decode()
    conn.close()
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


def test_the_mask_route_streams_rising_work_then_the_same_trimap(svc, client):
    image, lasso = scene()
    body = {"mask": base64.b64encode(png(lasso)).decode(), "image": base64.b64encode(png(image)).decode(),
            "edge": "rough"}
    plain = client.trimap_from_mask(png(lasso), image_png=png(image), edge="rough")
    events = sse(svc, "/v1/trimap/mask", dict(body, progress=True))
    work = [e["done"] for e in events if e["type"] == "work"]
    assert events[-1]["type"] == "done" and events[-1]["headers"]["X-Trimap-Edge"] == "rough"
    assert np.array_equal(grey(base64.b64decode(events[-1]["trimap"])), grey(plain))
    assert work and work == sorted(set(work)) and work[-1] <= 999
    assert all(e["total"] == 1000 for e in events if e["type"] == "work")


def test_an_error_arrives_as_the_plain_answers_status(client):
    _, lasso = scene()
    with pytest.raises(EngineError) as plain:
        client.trimap_from_mask(png(lasso), edge="rough")
    with pytest.raises(EngineError) as streamed:
        client.trimap_from_mask(png(lasso), edge="rough", on_work=lambda d, t: None)
    assert plain.value.status == streamed.value.status == 422
    assert "needs the image" in str(streamed.value)


def test_the_client_follows_the_work_and_gets_the_same_trimap_and_headers(client):
    image, lasso = scene()
    heard, edges = [], []
    quiet = client.trimap_from_mask(png(lasso), image_png=png(image), edge="auto")
    got = client.trimap_from_mask(png(lasso), image_png=png(image), edge="auto", on_edge=edges.append,
                                  on_work=lambda done, total: heard.append(done / total))
    assert got == quiet and edges in (["rough"], ["exact"])
    assert heard and heard == sorted(heard) and heard[-1] > 0.9  # a small trimap: few polls (POLL)


def test_scribbles_stream_too(client):
    image, _ = scene()
    fg = np.zeros((H, W), np.uint8)
    fg[55:65, 75:85] = 255
    bg = np.zeros((H, W), np.uint8)
    bg[:5, :] = 255
    heard = []
    quiet = client.trimap_from_scribbles(png(image), png(fg), png(bg))
    got = client.trimap_from_scribbles(png(image), png(fg), png(bg), on_work=lambda d, t: heard.append(d))
    assert got == quiet and heard and heard == sorted(heard)


def test_a_cancel_stops_the_trimap_and_the_service_goes_on(client):
    image, lasso = scene()
    cancel = threading.Event()
    with pytest.raises(JobCancelled):
        client.trimap_from_mask(png(lasso), image_png=png(image), edge="rough",
                                on_work=lambda done, total: cancel.set(), cancel_event=cancel)
    assert client.alive()


def test_an_older_service_gets_the_request_again_without_the_field(client, monkeypatch):
    """An engine installed before this plugin answers the unknown field with 422."""
    image, lasso = scene()

    def old_service(*args, **kwargs):
        raise EngineError("HTTP 422: body.progress: Extra inputs are not permitted", 422)

    monkeypatch.setattr(client_trimap, "_stream", old_service)
    heard = []
    got = client.trimap_from_mask(png(lasso), image_png=png(image), edge="rough", on_work=lambda d, t: heard.append(d))
    assert got == client.trimap_from_mask(png(lasso), image_png=png(image), edge="rough") and heard == []
