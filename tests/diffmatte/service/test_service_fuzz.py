"""Seeded fuzz of every route of the engine service: no 5xx, and still serving afterwards.

Bounded (``N_REQUESTS`` requests, a fixed seed), loopback only: a real server on an
ephemeral 127.0.0.1 port with the tiny random-weight engine and, when
``segment_anything`` is installed, a tiny random SAM. Each request starts from a valid
one for its route and gets one to three mutations (fields dropped, added or retyped,
base64 and image bytes corrupted, odd image modes and sizes, raw-body damage, odd
headers, paths and methods).
"""
from __future__ import annotations

import base64
import http.client
import io
import json
import random
import socket
import struct
import zlib
from collections import Counter
from typing import Any, Callable, Dict, List

import numpy as np
import pytest
from PIL import Image

from diffmatte.service.app import ServiceConfig
from diffmatte.service.server import RunningService
from refine_matte.client import EngineClient

TOKEN = "fuzz-test-token-0123456789abcdef0123456789"
SEED = 20261126
N_REQUESTS = 320
H, W = 24, 32


def _png(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", **kw)
    return buf.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _header_only_png(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


class Corpus:
    """Valid inputs and their odd-but-decodable or broken variants."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        tri = np.zeros((H, W), np.uint8)
        tri[H // 4: 3 * H // 4, :] = 128
        tri[3 * H // 8: 5 * H // 8, W // 4: 3 * W // 4] = 255
        self.trimap = tri
        self.mask = (tri > 0).astype(np.uint8) * 255
        fg = np.zeros((H, W), np.uint8)
        fg[H // 2, W // 4: W // 2] = 255
        bg = np.zeros((H, W), np.uint8)
        bg[1, :] = 255
        self.fg, self.bg = fg, bg
        self.full_fg = np.zeros((H, W), np.uint8)
        self.full_fg[:, : W // 2] = 255  # with full_bg: strokes cover every pixel
        self.full_bg = 255 - self.full_fg

    def odd_images(self) -> List[bytes]:
        """Decodable images in unusual modes, formats and sizes."""
        img = Image.fromarray(self.image)
        out = []
        for mode in ("RGBA", "LA", "L", "1", "P", "I;16", "CMYK", "F", "I"):
            buf = io.BytesIO()
            converted = img.convert(mode) if mode != "I;16" else Image.fromarray(
                (np.asarray(img.convert("L"), np.uint16) * 257))
            fmt = "TIFF" if mode in ("CMYK", "F", "I") else "PNG"
            converted.save(buf, format=fmt)
            out.append(buf.getvalue())
        for fmt in ("JPEG", "BMP", "WEBP", "TIFF"):
            buf = io.BytesIO()
            img.save(buf, format=fmt)
            out.append(buf.getvalue())
        out.append(_png(np.zeros((1, 1, 3), np.uint8)))
        out.append(_png(np.zeros((H + 3, W, 3), np.uint8)))
        return out


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    raw = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0 and len(raw) > 9:
        return bytes(raw[: rng.randrange(1, len(raw))])
    if kind == 1:
        for _ in range(rng.randint(1, 16)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    if kind == 2:
        return bytes(raw) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))


def _odd_value(rng: random.Random) -> Any:
    return rng.choice([None, True, False, 0, -1, 1, 2**31, 2**64, -(2**70), 1e308, -1e-308, 0.5,
                       "", "x", "\u00b2", "\u0000", "a" * 5000, [], [1, 2], [[1, 2]] * 300, {}, {"a": {"b": 1}},
                       "%%%", "AAAA", "=" * 8, " ", [None], [[1e308, -1e308]]])


def _valid_bodies(corpus: Corpus, odd: List[bytes], sam: bool) -> List[Dict[str, Any]]:
    img, tri = _b64(_png(corpus.image)), _b64(_png(corpus.trimap))
    specs = [
        {"method": "POST", "path": "/v1/jobs/refine",
         "body": {"image": img, "trimap": tri, "steps": 2, "seed": 3, "samples": 1, "preview": True,
                  "preview_size": 64, "quantize_trimap": False, "widen_band": True}},
        {"method": "POST", "path": "/v1/trimap/mask",
         "body": {"mask": _b64(_png(corpus.mask)), "band": 3, "adaptive": True, "image": img}},
        {"method": "POST", "path": "/v1/trimap/scribbles",
         "body": {"image": img, "fg": _b64(_png(corpus.fg)), "bg": _b64(_png(corpus.bg)), "band": 2}},
        {"method": "POST", "path": "/v1/trimap/scribbles",
         "body": {"image": img, "fg": _b64(_png(corpus.full_fg)), "bg": _b64(_png(corpus.full_bg))}},
        {"method": "POST", "path": "/v1/cutout",
         "body": {"alpha": _b64(_png(corpus.mask)), "image": img, "decontaminate": 0.5, "premultiplied": False,
                  "edges": {"shift": 1.5, "feather": 1.0, "contrast": 20.0, "smooth": 1.0}, "output": "rgba"}},
        {"method": "POST", "path": "/v1/cutout",
         "body": {"alpha": _b64(_png(corpus.mask.astype(np.uint16) * 257)), "edges": {"shift": -1.0},
                  "output": "alpha"}},
        {"method": "GET", "path": "/v1/info"},
        {"method": "GET", "path": "/v1/openapi.json"},
    ]
    if sam:
        specs += [
            {"method": "POST", "path": "/v1/sam/embed", "body": {"image": img}},
            {"method": "POST", "path": "/v1/sam/trimap",
             "body": {"image": img, "points": [[5, 5], [20, 10]], "labels": [1, 0], "box": [1, 1, 20, 20],
                      "band": 2, "output": "trimap"}},
        ]
    return specs


def _job_specs(job_ids: List[str]) -> List[Dict[str, Any]]:
    specs = []
    for job in job_ids[-4:] or ["0123456789abcdef"]:
        specs += [{"method": "GET", "path": f"/v1/jobs/{job}?after=0"},
                  {"method": "GET", "path": f"/v1/jobs/{job}/events?after=0"},
                  {"method": "GET", "path": f"/v1/jobs/{job}/result"},
                  {"method": "POST", "path": f"/v1/jobs/{job}/cancel"},
                  {"method": "DELETE", "path": f"/v1/jobs/{job}"}]
    return specs


def _mutations(corpus: Corpus, odd: List[bytes]) -> List[Callable[[Dict, random.Random], None]]:
    images = [_png(corpus.image)] + odd

    def drop_field(spec, rng):
        body = spec.get("body")
        if isinstance(body, dict) and body:
            body.pop(rng.choice(sorted(body)))

    def add_field(spec, rng):
        if isinstance(spec.get("body"), dict):
            spec["body"][rng.choice(["extra", "IMAGE", "__proto__", "\u00e9"])] = _odd_value(rng)

    def retype_field(spec, rng):
        body = spec.get("body")
        if isinstance(body, dict) and body:
            body[rng.choice(sorted(body))] = _odd_value(rng)

    def odd_number(spec, rng):
        body = spec.get("body")
        nested = [v for v in (body or {}).values() if isinstance(v, dict)] if isinstance(body, dict) else []
        if nested:
            target = rng.choice(nested)
            target[rng.choice(sorted(target) + ["extra"])] = rng.choice(
                [float("nan"), float("inf"), -1e300, 1e300, -5, 10**40, "1", None, [1]])

    def corrupt_image(spec, rng):
        body = spec.get("body")
        keys = [k for k in ("image", "trimap", "mask", "fg", "bg", "alpha") if isinstance(body, dict) and k in body]
        if keys:
            body[rng.choice(keys)] = _b64(_mutate_bytes(rng.choice(images), rng))

    def odd_image(spec, rng):
        body = spec.get("body")
        keys = [k for k in ("image", "trimap", "mask", "fg", "bg", "alpha") if isinstance(body, dict) and k in body]
        if keys:
            body[rng.choice(keys)] = _b64(rng.choice(odd + [_header_only_png(60000, 60000),
                                                            _header_only_png(0, 5)]))

    def bad_base64(spec, rng):
        body = spec.get("body")
        keys = [k for k in ("image", "trimap", "mask", "fg", "bg", "alpha") if isinstance(body, dict) and k in body]
        if keys:
            key = rng.choice(keys)
            text = str(body[key])
            body[key] = text[: rng.randrange(len(text) + 1)] + rng.choice(["", "!", "=", "\u00e9", "\n", " "])

    def raw_body(spec, rng):
        text = json.dumps(spec.get("body", {})).encode()
        spec["raw"] = rng.choice([
            text[: rng.randrange(len(text) + 1)], text.decode().encode("utf-16"), text.decode().encode("utf-32"),
            b"\xff\xfe" + text, b"[" * 3000 + b"]" * 3000, b'{"a":' * 2000 + b"1" + b"}" * 2000,
            _mutate_bytes(text, rng), b"null", b"[]", b'"str"', b"1e999", text + b"\x00"])

    def odd_headers(spec, rng):
        spec.setdefault("headers", {}).update(rng.choice([
            {"Content-Type": "text/plain"}, {"Content-Type": "application/json; charset=utf-16"},
            {"Last-Event-ID": rng.choice(["\u00b2", "9" * 5000, "-1", "1e5", "", " 7 ", "\u0663"])},
            {"Accept-Encoding": "gzip"}, {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Basic abc"},
            {"Transfer-Encoding": "chunked"}, {"Expect": "100-continue"}]))

    def odd_path(spec, rng):
        spec["path"] = rng.choice([
            spec["path"] + "/", spec["path"] + "?after=" + rng.choice(["\u00b2", "-5", "9" * 5000, "x", "1.5"]),
            spec["path"].replace("/v1/", "/v1//"), "/v1/jobs/" + "%ff%fe" * 10, "/v1/jobs/" + "a" * 5000,
            "/v1/jobs/..%2f..%2fetc%2fpasswd/result", "/v1/jobs/\u00e9t\u00e9/events", "/v2/info", "/"])

    def odd_method(spec, rng):
        spec["method"] = rng.choice(["PUT", "PATCH", "OPTIONS", "HEAD", "TRACE", "GET", "POST", "DELETE"])

    return [drop_field, add_field, retype_field, odd_number, corrupt_image, odd_image, bad_base64, raw_body,
            odd_headers, odd_path, odd_method]


def _send(svc: RunningService, spec: Dict[str, Any]) -> tuple:
    """Send one request over a raw socket (http.client refuses non-ASCII request lines)."""
    headers = {"Host": "127.0.0.1", "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
               "Connection": "close"}
    headers.update(spec.get("headers", {}))
    body = spec.get("raw")
    if body is None and "body" in spec:
        body = json.dumps(spec["body"]).encode()
    chunked = headers.pop("Transfer-Encoding", None) is not None
    head = [f"{spec['method']} {spec['path']} HTTP/1.1".encode("utf-8")]
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
        payload = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    else:
        payload = body or b""
        if body is not None:
            headers["Content-Length"] = str(len(payload))
    head += [f"{k}: {v}".encode("utf-8") for k, v in headers.items()]
    with socket.create_connection((svc.host, svc.port), timeout=60) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + payload)
        resp = http.client.HTTPResponse(sock, method=spec["method"])
        resp.begin()
        data = resp.read()
        resp.close()
    return resp.status, data


@pytest.fixture(scope="module")
def fuzz_service(tiny_engine):
    sam = None
    try:
        from doubles.sam import tiny_sam  # noqa: PLC0415 - the suites' tiny SAM

        sam = tiny_sam()
    except ImportError:
        pass
    cfg = ServiceConfig(max_body_mb=1.0, max_megapixels=0.25, max_queue=6, heartbeat=0.2,
                        sam_checkpoint=sam)
    svc = RunningService(tiny_engine, TOKEN, cfg)
    yield svc, sam is not None
    svc.stop()


def test_fuzz_every_route_no_5xx_and_still_serving(fuzz_service):
    svc, has_sam = fuzz_service
    rng = random.Random(SEED)
    corpus = Corpus(np.random.default_rng(SEED))
    odd = corpus.odd_images()
    mutations = _mutations(corpus, odd)
    job_ids: List[str] = []
    statuses: Counter = Counter()
    routes: Counter = Counter()
    failures = []
    for i in range(N_REQUESTS):
        specs = _valid_bodies(corpus, odd, has_sam) + _job_specs(job_ids)
        spec = json.loads(json.dumps(rng.choice(specs)))  # a deep copy to mutate
        if i % 5:  # every fifth request goes out unmutated (valid requests interleaved)
            for mutate in rng.sample(mutations, rng.randint(1, 3)):
                mutate(spec, rng)
        routes[spec["path"].split("?")[0][:40]] += 1
        try:
            status, data = _send(svc, spec)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"#{i} {spec['method']} {spec['path'][:60]}: no answer ({exc})")
            continue
        statuses[status] += 1
        if status >= 500:
            failures.append(f"#{i} {spec['method']} {spec['path'][:60]} -> {status}: {data[:200]!r}")
        if status == 202:
            job_ids.append(json.loads(data)["job"])
    print(f"fuzz: {N_REQUESTS} requests, answers {dict(sorted(statuses.items()))}, sam {has_sam}")
    assert not failures, "\n".join(failures[:20])
    assert sum(statuses.values()) == N_REQUESTS
    assert any(400 <= s < 500 for s in statuses) and any(s < 300 for s in statuses)
    # Every route was exercised.
    for route in ("/v1/jobs/refine", "/v1/trimap/mask", "/v1/trimap/scribbles", "/v1/info", "/v1/cutout"):
        assert routes[route] > 0, route
    assert any(r.startswith("/v1/jobs/") and r != "/v1/jobs/refine" for r in routes)

    # Afterwards: clear what the fuzz queued, then a valid request is served normally.
    client = EngineClient(svc.host, svc.port, TOKEN, timeout=60)
    for job in job_ids:
        try:
            client.forget(job)
        except Exception:  # noqa: BLE001 - already pruned or forgotten by the fuzz
            pass
    alpha = client.refine(_png(corpus.image), _png(corpus.trimap), steps=2)
    assert Image.open(io.BytesIO(alpha)).size == (W, H)
    info = client.info()
    assert info["queue"]["queued"] == 0
