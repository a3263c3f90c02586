"""Soak test of the engine service: memory stability and robustness to bad input.

Starts ``python -m diffmatte serve`` as a child process on an ephemeral 127.0.0.1 port
(with a private config dir), then

1. sends ``--requests`` refine requests (default 200) through the stdlib client, every
   ``--large-every``-th with a large image (``--large-size`` pixels square, random
   noise, so the PNG body stays large), and prints the service's resident memory
   every ``--every`` refines;
2. sends ``--malformed`` malformed requests (default 1000) of many kinds, large
   bodies among them (near and over ``--max-body-mb``), and counts the answers;
3. sends ``--after`` more refines (default 100) to show whether memory stays flat
   after the malformed phase, then checks that the service is still healthy.

It prints a Markdown table of the RSS samples and exits 0 only if memory grew less
than ``--max-growth`` percent over the refines of phase 1 and over those of phase 3,
no malformed request got a 5xx (or no answer), and the service is healthy at the end.

    python bench/soak_service.py                       # tiny random-weight model
    python bench/soak_service.py --weights model.safetensors --device cuda
"""
from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugin")]

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from refine_matte.client import EngineClient, EngineError  # noqa: E402

SETTLE = 0.3  # seconds between the last answer and an RSS sample (the worker trims its heap)


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident set size (``VmRSS``) or its peak (``VmHWM``) of ``pid`` from /proc (Linux)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def make_pair(h: int, w: int, rng: np.random.Generator) -> Tuple[bytes, bytes]:
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    tri = np.zeros((h, w), np.uint8)
    tri[h // 4: 3 * h // 4, :] = 128
    tri[3 * h // 8: 5 * h // 8, w // 4: 3 * w // 4] = 255
    return png(image), png(tri)


def header_only_png(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` (a bomb's signature)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def malformed_cases(image: bytes, tri: bytes, max_body: int) -> List[Tuple[str, Callable[[random.Random], Dict]]]:
    """Named generators of bad requests: (method, path, body bytes, headers, token)."""
    b64 = lambda data: base64.b64encode(data).decode("ascii")  # noqa: E731
    good = {"image": b64(image), "trimap": b64(tri), "steps": 2}
    arr_tri = np.asarray(Image.open(io.BytesIO(tri)))
    bad_values = arr_tri.copy()
    bad_values[0, :5] = 3

    def refine(**over) -> Callable[[random.Random], Dict]:
        body = dict(good)
        body.update(over)
        body = {k: v for k, v in body.items() if v is not None}
        return lambda rng: {"path": "/v1/jobs/refine", "body": json.dumps(body).encode()}

    def fuzz(rng: random.Random) -> Dict:
        raw = bytearray(image)
        for _ in range(rng.randint(1, 20)):
            raw[rng.randrange(8, len(raw))] = rng.randrange(256)
        return {"path": "/v1/jobs/refine", "body": json.dumps(dict(good, image=b64(bytes(raw[: rng.randrange(9, len(raw))])))).encode()}

    def large_garbage(rng: random.Random) -> Dict:
        # A body just under the limit whose base64 decodes to no image: read, decoded, refused.
        size = max_body - 1024
        blob = base64.b64encode(bytes(rng.randrange(256) for _ in range(256)) * (size // 344))
        return {"path": "/v1/jobs/refine",
                "body": json.dumps(dict(good, image=blob.decode("ascii")[: size - 200])).encode()}

    def garbage(rng: random.Random) -> Dict:
        return {"path": rng.choice(["/v1/jobs/refine", "/v1/trimap/mask", "/v1/trimap/scribbles", "/v1/sam/trimap"]),
                "body": bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))}

    return [
        ("no token", lambda rng: {"path": "/v1/info", "method": "GET", "token": None}),
        ("wrong token", lambda rng: {"path": "/v1/jobs/refine", "body": b"{}", "token": "nope"}),
        ("invalid json", lambda rng: {"path": "/v1/jobs/refine", "body": b'{"image": '}),
        ("json array", lambda rng: {"path": "/v1/jobs/refine", "body": b"[1,2,3]"}),
        ("missing trimap", refine(trimap=None)),
        ("missing image", refine(image=None)),
        ("unknown field", refine(extra=1)),
        ("bad base64", refine(image="%%%")),
        ("not an image", refine(image=b64(b"GIF89a not really"))),
        ("truncated png", refine(image=b64(image[: len(image) // 3]))),
        ("fuzzed png", fuzz),
        ("sizes differ", refine(trimap=b64(png(arr_tri[:-2, :-1])))),
        ("trimap values", refine(trimap=b64(png(bad_values)))),
        ("steps 0", refine(steps=0)),
        ("steps text", refine(steps="ten")),
        ("seed negative", refine(seed=-5)),
        ("huge image header", refine(image=b64(header_only_png(50000, 50000)))),
        ("body too large", lambda rng: {"path": "/v1/jobs/refine", "body": b" " * (max_body + 1)}),
        ("large invalid body", large_garbage),
        ("utf-16 body", lambda rng: {"path": "/v1/jobs/refine", "body": json.dumps(good).encode("utf-16")}),
        ("bad Last-Event-ID", lambda rng: {"path": "/v1/jobs/0123456789abcdef/events", "method": "GET",
                                           "headers": {"Last-Event-ID": "\u00b2"}}),
        ("garbage body", garbage),
        ("unknown job", lambda rng: {"path": f"/v1/jobs/{rng.getrandbits(64):016x}/result", "method": "GET"}),
        ("cancel unknown", lambda rng: {"path": "/v1/jobs/zzz/cancel", "body": b""}),
        ("wrong method", lambda rng: {"path": "/v1/jobs/refine", "method": "GET"}),
        ("unknown route", lambda rng: {"path": "/v1/../../etc/passwd", "method": "GET"}),
        ("mask bad base64", lambda rng: {"path": "/v1/trimap/mask", "body": b'{"mask": "@@"}'}),
        ("mask band negative", lambda rng: {"path": "/v1/trimap/mask",
                                            "body": json.dumps({"mask": b64(tri), "band": -3}).encode()}),
        ("scribbles missing bg", lambda rng: {"path": "/v1/trimap/scribbles",
                                              "body": json.dumps({"image": b64(image), "fg": b64(tri)}).encode()}),
        ("sam no image", lambda rng: {"path": "/v1/sam/trimap", "body": b'{"points": [[1, 1]], "labels": [1]}'}),
        ("sam corrupt image", lambda rng: {"path": "/v1/sam/trimap",
                                           "body": json.dumps({"image": b64(b"xx"), "points": [[1, 1]]}).encode()}),
    ]


def send(host: str, port: int, token: str, spec: Dict) -> int:
    """Send one request; return its status, or 0 when no answer came."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Content-Type": "application/json", **spec.get("headers", {})}
    tok = spec.get("token", token)
    if tok is not None:
        headers["Authorization"] = f"Bearer {tok}"
    method = spec.get("method", "POST")
    try:
        conn.putrequest(method, spec["path"])
        body = spec.get("body") if method != "GET" else None
        for key, value in headers.items():
            conn.putheader(key, value.encode("utf-8"))
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def start_service(args: argparse.Namespace, config_dir: str, weights: str) -> Tuple[subprocess.Popen, EngineClient]:
    env = dict(os.environ, REFINE_MATTE_CONFIG_DIR=config_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugin"), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "diffmatte", "serve", "--weights", weights, "--device", args.device,
           "--max-body-mb", str(args.max_body_mb), "--threads", str(args.threads), "--log-level", "warning"]
    log = open(Path(config_dir) / "service.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"service exited with {proc.returncode}; see {config_dir}/service.log")
        try:
            return proc, EngineClient.discover(config_dir)
        except EngineError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("service did not start within 180 s")


def refine_phase(client: EngineClient, pid: int, pairs, large, args: argparse.Namespace, label: str,
                 count: int, samples: List[Tuple[str, int, float, float]], offset: int = 0) -> Tuple[int, float]:
    """``count`` refines (one in ``large_every`` large); RSS sampled every ``every``.

    Large refines sit half a period away from the samples, and each sample waits
    ``SETTLE`` s, so a sample shows what stays resident rather than the transient
    peak of the request just served (the peak is reported separately, VmHWM).
    """
    failures = 0
    t0 = time.perf_counter()
    for i in range(count):
        big = args.large_every > 0 and (i + 1) % args.large_every == args.large_every // 2
        pair = large if big else pairs[i % len(pairs)]
        try:
            client.refine(*pair, steps=args.steps, seed=i, on_progress=lambda *a: None)
        except EngineError as exc:
            failures += 1
            print(f"{label} refine {i} failed: {exc}")
        if (i + 1) % args.every == 0:
            time.sleep(SETTLE)
            samples.append((label, offset + i + 1, rss_bytes(pid) / 2**20, rss_bytes(pid, "VmHWM") / 2**20))
            print(f"  {label}: {i + 1:4d} refines, RSS {samples[-1][2]:.1f} MiB (peak {samples[-1][3]:.1f})")
    return failures, time.perf_counter() - t0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="checkpoint (default: a tiny random-weight model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--requests", type=int, default=200, help="refines before the malformed phase")
    parser.add_argument("--after", type=int, default=100, help="refines after the malformed phase")
    parser.add_argument("--malformed", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=10, help="refines before the start measurement")
    parser.add_argument("--every", type=int, default=20, help="RSS sample every N refines")
    parser.add_argument("--large-every", type=int, default=10, help="every N-th refine has a large image (0: none)")
    parser.add_argument("--large-size", type=int, default=640, help="side of the large images in pixels")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--max-body-mb", type=float, default=8.0)
    parser.add_argument("--max-growth", type=float, default=5.0, help="allowed RSS growth in percent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="service CPU threads")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)

    rng = np.random.default_rng(args.seed)
    prng = random.Random(args.seed)
    sizes = [(64, 64), (48, 80), (96, 64), (72, 72)]
    pairs = [make_pair(h, w, rng) for h, w in sizes]
    large = make_pair(args.large_size, args.large_size, rng)
    print(f"large refine body: {len(large[0]) + len(large[1])} bytes of PNG "
          f"({args.large_size}x{args.large_size}, every {args.large_every}th refine)")

    with tempfile.TemporaryDirectory(prefix="soak-service-") as tmp:
        weights = args.weights
        if weights is None:
            sys.path.insert(0, str(ROOT / "tests"))  # the test doubles (tests/doubles)
            from doubles.checkpoints import write_tiny_checkpoint
            weights = str(write_tiny_checkpoint(Path(tmp) / "tiny.safetensors"))
        config_dir = str(Path(tmp) / "config")
        os.makedirs(config_dir)
        t0 = time.perf_counter()
        proc, client = start_service(args, config_dir, weights)
        try:
            print(f"service pid {proc.pid} on {client.host}:{client.port} "
                  f"({client.info()['engine'].get('variant')}, {args.device}), up in {time.perf_counter() - t0:.1f} s")
            def sample(label: str, count: int) -> None:
                time.sleep(SETTLE)
                samples.append((label, count, rss_bytes(proc.pid) / 2**20, rss_bytes(proc.pid, "VmHWM") / 2**20))

            samples: List[Tuple[str, int, float, float]] = []
            sample("boot", 0)
            for i in range(args.warmup):
                client.refine(*(large if i == 0 else pairs[i % len(pairs)]), steps=args.steps, seed=i,
                              on_progress=lambda *a: None)
            sample("warm-up", args.warmup)
            rss_start = samples[-1][2]
            failures, seconds = refine_phase(client, proc.pid, pairs, large, args, "refines", args.requests, samples)
            rss_end = samples[-1][2] if samples[-1][0] == "refines" else rss_bytes(proc.pid) / 2**20
            growth = 100.0 * (rss_end - rss_start) / rss_start
            print(f"{args.requests} refines in {seconds:.1f} s, {failures} failed; RSS {rss_start:.1f} -> "
                  f"{rss_end:.1f} MiB ({growth:+.2f} %)")

            cases = malformed_cases(*pairs[0], int(args.max_body_mb * 2**20))
            by_status: Counter = Counter()
            bad: List[str] = []
            t2 = time.perf_counter()
            for i in range(args.malformed):
                name, make = cases[i % len(cases)]
                status = send(client.host, client.port, client.token, make(prng))
                by_status[status] += 1
                if status == 0 or status >= 500:
                    bad.append(f"{name} -> {status}")
                if (i + 1) % 250 == 0:
                    sample("malformed", i + 1)
                    print(f"  {i + 1:4d} malformed, RSS {samples[-1][2]:.1f} MiB")
            print(f"{args.malformed} malformed requests ({len(cases)} kinds) in {time.perf_counter() - t2:.1f} s; "
                  f"answers: {dict(sorted(by_status.items()))}")
            n5xx = sum(v for k, v in by_status.items() if k >= 500 or k == 0)
            for line in bad[:10]:
                print("  5xx/no answer:", line)

            sample("malformed end", args.malformed)
            rss_after_start = samples[-1][2]
            failures_after, seconds = refine_phase(client, proc.pid, pairs, large, args, "after", args.after,
                                                   samples, offset=args.requests)
            rss_after_end = samples[-1][2] if samples[-1][0] == "after" else rss_bytes(proc.pid) / 2**20
            growth_after = 100.0 * (rss_after_end - rss_after_start) / rss_after_start
            print(f"{args.after} refines after the malformed phase in {seconds:.1f} s, {failures_after} failed; "
                  f"RSS {rss_after_start:.1f} -> {rss_after_end:.1f} MiB ({growth_after:+.2f} %)")

            info = client.info()
            healthy = client.refine(*pairs[0], steps=args.steps)[:4] == b"\x89PNG" and proc.poll() is None
            print(f"healthy at the end: {healthy} (queue {info['queue']}, connections {info.get('connections')})")
            print("\n| phase | count | RSS (MiB) | peak RSS so far (MiB) |\n|---|---:|---:|---:|")
            for label, count, mib, peak in samples:
                print(f"| {label} | {count} | {mib:.1f} | {peak:.1f} |")
            failures += failures_after
            ok = (growth < args.max_growth and growth_after < args.max_growth and n5xx == 0 and healthy
                  and failures == 0)
            print(f"\nRESULT: {'PASS' if ok else 'FAIL'} (RSS growth over refines {growth:+.2f} % and after the "
                  f"malformed phase {growth_after:+.2f} %, limit {args.max_growth} %; 5xx or no answer: {n5xx}; "
                  f"refine failures: {failures})")
            client.shutdown()
            proc.wait(timeout=60)
            return 0 if ok else 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
