"""A batch killed with SIGKILL halfway, rerun, finishes only the rest and leaves no temp file."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from diffmatte import batch
from test_batch import photo, trimap
from conftest import ROOT

N = 10


def done_keys(manifest: Path) -> set:
    keys = set()
    if manifest.exists():
        for line in manifest.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("status") == "done":
                keys.add(rec["key"])
    return keys


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_then_rerun_finishes_only_the_rest(tmp_path, tiny_weights):
    img, tri, out = tmp_path / "img", tmp_path / "tri", tmp_path / "out"
    img.mkdir(), tri.mkdir()
    for i in range(N):
        photo(img / f"{i:02d}.png", size=(96, 96), seed=i)
        trimap(tri / f"{i:02d}.png", size=(96, 96))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugin'}")
    cmd = [sys.executable, "-m", "diffmatte", "batch", str(img), "--trimaps", str(tri), "-o", str(out),
           "--weights", str(tiny_weights), "--steps", "40", "--threads", "1", "-q", "--rgba"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    manifest = out / batch.MANIFEST
    deadline = time.monotonic() + 240
    try:
        while len(done_keys(manifest)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    first = done_keys(manifest)
    assert 2 <= len(first) < N, f"kill missed the middle of the batch ({len(first)} of {N} done)"
    for p in out.glob("*.png"):      # outputs are whole files or absent, never partial
        Image.open(p).load()

    # what a kill during a write leaves behind, plus a hidden file that is not ours
    pending = sorted(f"{i:02d}.png" for i in range(N) if f"{i:02d}.png" not in first)
    (out / f".{pending[0]}.k3x9q2ab.tmp").write_bytes(b"half a png")
    (out / ".notes.tmp").write_text("someone else's")

    s = batch.run([str(img)], str(out), trimaps=str(tri), weights=str(tiny_weights), steps=40, threads=1,
                  rgba=True, progress=False, echo=None)
    assert s.failed == []
    assert s.skipped == len(first) and s.refined == N - len(first)
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [".notes.tmp"]
    lines = [json.loads(l) for l in manifest.read_text().splitlines()]
    assert [r["key"] for r in lines] == [f"{i:02d}.png" for i in range(N)]   # one line per item
    assert all(r["status"] == "done" for r in lines)
    for r in lines:
        for rel, sha in r["outputs"].items():
            assert batch.manifest.sha256_file(out / rel) == sha
