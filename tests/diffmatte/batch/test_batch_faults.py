"""Issue #25: faults found with real files (duplicate layer names, one bad file in a
folder, full disks, unwritable manifests, orphaned workers)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffmatte import batch
from diffmatte.io import layered
from diffmatte.io.layered import LayeredImage, Layer
from doubles.layered_docs import EXT, FORMATS, dup_doc, make_doc
from conftest import ROOT


def run(tiny_weights, inputs, out, **kw):
    return batch.run([str(i) for i in inputs], str(out), weights=str(tiny_weights), steps=1, threads=1,
                     progress=False, echo=None, **kw)


def test_paths_are_unique_where_names_repeat():
    doc = dup_doc()
    assert [p for p, _ in doc.leaves()] == ["background", "Layer#1", "Layer#2"]
    assert [p for p, _ in doc.find("Layer")] == ["Layer#1", "Layer#2"]
    assert [p for p, _ in doc.find("Layer#2")] == ["Layer#2"]
    assert doc.find("Layer#2")[0][1] is doc.layers[2]
    # groups too, and a literal name that looks like a numbered one does not collide
    g = LayeredImage(4, 4, [Layer("g", children=[Layer("x")], kind="group"),
                            Layer("g", children=[Layer("x")], kind="group"), Layer("g#1")])
    paths = [p for p, _ in g.walk()]
    assert len(set(paths)) == len(paths) and "g#1/x" in paths or "g#2/x" in paths
    assert make_doc().leaves()[1][0] == "fg/subject"   # unique names keep their plain paths


@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_layer_names_each_get_their_own_mask(tmp_path, tiny_weights, fmt):
    """Was: AttributeError 'NoneType' object has no attribute 'canvas' aborted the whole batch
    (and the other file was never processed); or only the top layer got a mask, twice."""
    src = layered.write(dup_doc(), tmp_path / "in" / f"dup{EXT[fmt]}")
    other = layered.write(make_doc(), tmp_path / "in" / f"other{EXT[fmt]}")
    s = run(tiny_weights, [tmp_path / "in"], tmp_path / "out", layers="Layer", band=1.0)
    assert s.failed == [] or all("other" in k for k, _ in s.failed), s.failed
    rec = batch.runner.Manifest(tmp_path / "out" / batch.MANIFEST).records
    assert rec[src.name]["status"] == "done"
    assert rec[src.name]["layers"] == [["Layer#1", "layer-mask"], ["Layer#2", "transparency"]]
    assert other.name in rec    # the other file was planned and recorded, not lost
    orig, new = layered.read(src), layered.read(tmp_path / "out" / src.name)
    low_before = orig.layers[1].mask.canvas(40, 30)
    low, up = new.leaves()[1][1], new.leaves()[2][1]
    assert low.mask is not None and up.mask is not None
    assert not np.array_equal(low.mask.canvas(40, 30), up.mask.canvas(40, 30))
    # each mask comes from its own layer's trimap: the lower one keeps its known pixels
    assert (low.mask.canvas(40, 30)[low_before == 0][:5] == 0).all() or fmt == "tiff"
    for (_, a), (_, b) in zip(orig.leaves(), new.leaves()):
        np.testing.assert_array_equal(a.pixels, b.pixels)


def test_a_unique_path_selects_one_of_two_same_named_layers(tmp_path, tiny_weights):
    src = layered.write(dup_doc(), tmp_path / "in" / "dup.ora")
    s = run(tiny_weights, [src], tmp_path / "out", layers="Layer#2", band=1.0)
    assert (s.refined, s.failed) == (1, [])
    new = layered.read(tmp_path / "out" / src.name)
    assert new.leaves()[2][1].mask is not None
    np.testing.assert_array_equal(new.leaves()[1][1].mask.canvas(40, 30), dup_doc().layers[1].mask.canvas(40, 30))


def test_layers_whose_outputs_would_collide_are_refused_before_work(tmp_path, tiny_weights, monkeypatch):
    """'a b' and 'a_b' would both write dup_a_b_cutout.png: a clear error, not one lost cut-out."""
    import diffmatte.engine

    monkeypatch.setattr(diffmatte.engine, "load_engine", lambda *a, **k: pytest.fail("model loaded"))
    doc = dup_doc()
    doc.layers[1].name, doc.layers[2].name = "a b", "a_b"
    src = layered.write(doc, tmp_path / "in" / "dup.ora")
    s = run(tiny_weights, [src], tmp_path / "out", layers="a*", band=1.0, rgba=True)
    (key, why), = s.failed
    assert key == "dup.ora" and "'a b'" in why and "'a_b'" in why and "dup_a_b_cutout.png" in why


def test_one_bad_file_never_stops_the_batch(tmp_path, tiny_weights, monkeypatch):
    """Any exception from one file (here an AttributeError from a codec) fails that file only,
    both while planning and while refining."""
    src = layered.write(make_doc(seed=1), tmp_path / "in" / "bad.ora")
    good = layered.write(make_doc(), tmp_path / "in" / "good.ora")
    real_read = layered.read
    calls = {"n": 0}

    def flaky(source, fmt="", name=""):
        if Path(str(name or source)).name == "bad.ora":
            calls["n"] += 1
            if calls["n"] > 1:      # planning succeeds, refining hits a bug
                raise AttributeError("'NoneType' object has no attribute 'canvas'")
        return real_read(source, fmt, name)

    monkeypatch.setattr(layered, "read", flaky)
    s = run(tiny_weights, [tmp_path / "in"], tmp_path / "out", layers="*subject*", band=1.0)
    assert s.refined == 1 and [k for k, _ in s.failed] == ["bad.ora"]
    assert "AttributeError" in dict(s.failed)["bad.ora"]
    assert (tmp_path / "out" / good.name).is_file()
    calls["n"] = -100

    def broken(source, fmt="", name=""):
        if Path(str(name or source)).name == "bad.ora":
            raise KeyError("layer 7")
        return real_read(source, fmt, name)

    monkeypatch.setattr(layered, "read", broken)
    s = run(tiny_weights, [tmp_path / "in"], tmp_path / "out2", layers="*subject*", band=1.0)
    assert s.refined == 1 and [k for k, _ in s.failed] == ["bad.ora"]
    assert src.name in dict(s.failed) and "KeyError" in dict(s.failed)["bad.ora"]


# ----------------------------------------------------------------- finding 3: orphaned workers
def _children(pid: int) -> list:
    """Every live descendant of ``pid`` (from /proc), zombies left out."""
    import os

    kids, out = {}, []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        if rest[0] != "Z":
            kids.setdefault(int(rest[1]), []).append(int(entry))
    todo = [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("signame", ["SIGKILL", "SIGTERM"])
def test_killing_a_jobs_2_batch_leaves_no_process_behind(tmp_path, tiny_weights, signame):
    """Was: the --jobs workers (~790 MB each) ran on for ever after their parent's SIGKILL."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from PIL import Image

    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir()
    tri.mkdir()
    rng = np.random.default_rng(0)
    t = np.full((96, 96), 128, np.uint8)
    t[:20], t[-20:] = 0, 255
    for i in range(40):   # enough work that the workers are busy or waiting when the kill comes
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(img / f"p{i:02d}.png")
        Image.fromarray(t).save(tri / f"p{i:02d}.png")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "diffmatte", "batch", "--images", str(img), "--trimaps", str(tri),
                             "-o", str(tmp_path / "out"), "--weights", str(tiny_weights), "--steps", "3",
                             "--jobs", "2", "--threads", "1", "-q"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        workers: list = []
        while time.monotonic() < deadline and proc.poll() is None:
            workers = [p for p in _children(proc.pid)
                       if b"multiprocessing" in Path(f"/proc/{p}/cmdline").read_bytes()]
            manifest = tmp_path / "out" / batch.MANIFEST
            if len(workers) >= 2 and manifest.exists() and manifest.stat().st_size > 0:
                break      # the workers have loaded the engine and refined something
            time.sleep(0.1)
        assert proc.poll() is None and len(workers) >= 2, "the batch never had two busy workers"
        family = _children(proc.pid)
        proc.send_signal(getattr(signal, signame))
        proc.wait(timeout=30)
        end = time.monotonic() + 5.0
        while time.monotonic() < end and any(_alive(p) for p in family):
            time.sleep(0.1)
        left = [p for p in family if _alive(p)]
        assert not left, f"processes left behind after {signame}: {left}"
    finally:
        for p in [proc.pid] + _children(proc.pid) + [p for p in locals().get("family", []) if _alive(p)]:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        proc.wait(timeout=30)


# ----------------------------------------------------- findings 4 and 5: full disk, unwritable manifest
def _flat_inputs(root: Path, n: int, size=(48, 40)):
    from PIL import Image

    img, tri = root / "img", root / "tri"
    img.mkdir(parents=True)
    tri.mkdir()
    rng = np.random.default_rng(1)
    t = np.full((size[1], size[0]), 128, np.uint8)
    t[:8], t[-8:] = 0, 255
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(img / f"p{i:02d}.png")
        Image.fromarray(t).save(tri / f"p{i:02d}.png")
    return img, tri


def _batch_cli(args, fsize=None, timeout=300):
    """``diffmatte batch ARGS`` in a child process; ``fsize``: the largest file (bytes) it
    may write (RLIMIT_FSIZE, SIGXFSZ ignored: a write past it fails with EFBIG, as a full
    disk fails with ENOSPC)."""
    import os
    import resource
    import signal
    import subprocess
    import sys

    def limit():
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    root = str(ROOT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
               PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "diffmatte", "batch", *map(str, args)], env=env,
                          preexec_fn=limit, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_a_manifest_that_cannot_grow_stops_cleanly_and_a_rerun_continues(tmp_path, tiny_weights):
    """Was: the failed append printed a traceback and the rest was neither done nor recorded."""
    img, tri = _flat_inputs(tmp_path, 12)
    out = tmp_path / "out"
    args = ["--images", img, "--trimaps", tri, "-o", out, "--weights", tiny_weights, "--steps", "1",
            "--threads", "1", "-q"]
    r = _batch_cli(args, fsize=6000)
    assert r.returncode != 0 and "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert str(out / batch.MANIFEST) in lines[0] and "[Errno 27]" in lines[0] and "EFBIG" in lines[0]
    assert "rerun" in lines[0]
    done_before = sum(1 for p in out.glob("p*.png"))
    assert 0 < done_before < 12
    assert not list(out.glob(".*.tmp"))               # no half-written file left
    r = _batch_cli(args)
    assert r.returncode == 0, r.stderr
    s = batch.run([str(img)], str(out), trimaps=str(tri), weights=str(tiny_weights), steps=1, threads=1,
                  progress=False, echo=None)
    assert (s.refined, s.skipped, s.failed) == (0, 12, [])


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_an_output_that_cannot_be_written_stops_cleanly(tmp_path, tiny_weights, monkeypatch, capsys):
    """Outputs go to /dev/full (every write: ENOSPC, from the kernel): the batch stops at the
    first output with one line naming it, and a rerun does the work."""
    import contextlib

    from diffmatte.batch import runner
    from diffmatte.cli import main

    real = runner.atomic_path

    @contextlib.contextmanager
    def full_disk(dest):
        yield "/dev/full"

    img, tri = _flat_inputs(tmp_path, 3)
    out = tmp_path / "out"
    args = ["batch", "--images", str(img), "--trimaps", str(tri), "-o", str(out), "--weights", str(tiny_weights),
            "--steps", "1", "--threads", "1", "-q"]
    monkeypatch.setattr(runner, "atomic_path", full_disk)
    assert main(args) == 2
    got = capsys.readouterr()
    lines = got.err.strip().splitlines()
    assert len(lines) == 1 and str(out / "p00.png") in lines[0], got
    assert "[Errno 28]" in lines[0] and "ENOSPC" in lines[0] and "rerun" in lines[0]
    assert not list(out.glob("*.png"))
    monkeypatch.setattr(runner, "atomic_path", real)
    assert main(args) == 0 and len(list(out.glob("p*.png"))) == 3


def test_the_writable_probe_writes_real_bytes(tmp_path, tiny_weights):
    """Was: an empty probe file passed on a full disk (creating a file needs no free block)."""
    img, tri = _flat_inputs(tmp_path, 1)
    out = tmp_path / "out"
    r = _batch_cli(["--images", img, "--trimaps", tri, "-o", out, "--weights", tiny_weights, "-q"], fsize=1024)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "cannot write into the output folder" in r.stderr and "[Errno 27]" in r.stderr
    assert not list(out.iterdir())                    # neither probe nor manifest left behind


def test_full_disk_names_the_file_and_errno(tmp_path, tiny_weights, monkeypatch):
    """ENOSPC in the middle of a run (a file object whose writes fail, as on a full disk)."""
    import errno

    from diffmatte.batch import manifest as mf

    img, tri = _flat_inputs(tmp_path, 5)
    real_open = mf.Manifest.open
    writes = {"n": 0}

    class FullDisk:
        def __init__(self, fh):
            self._fh = fh

        def write(self, text):
            writes["n"] += 1
            if writes["n"] > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self._fh.write(text)

        def __getattr__(self, name):
            return getattr(self._fh, name)

    def open_full(self):
        real_open(self)
        self._fh = FullDisk(self._fh)
        return self

    monkeypatch.setattr(mf.Manifest, "open", open_full)
    with pytest.raises(ValueError) as err:
        run(tiny_weights, [img], tmp_path / "out", trimaps=str(tri))
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "out" / batch.MANIFEST) in msg
    assert "[Errno 28]" in msg and "ENOSPC" in msg and "rerun" in msg


def test_an_unwritable_manifest_is_one_clear_line(tmp_path, tiny_weights, capsys):
    """Was: a PermissionError traceback (an immutable manifest). Here the manifest's name is
    taken by a folder, which no user can write as a file either."""
    from diffmatte.cli import main

    img, tri = _flat_inputs(tmp_path, 1)
    out = tmp_path / "out"
    (out / batch.MANIFEST).mkdir(parents=True)
    code = main(["batch", "--images", str(img), "--trimaps", str(tri), "-o", str(out), "--weights", str(tiny_weights),
                 "-q"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(out / batch.MANIFEST) in err and "[Errno 21]" in err


# ------------------------------------------------------------------ finding 9: names in messages
def test_a_truncated_input_is_named_in_its_error(tmp_path, tiny_weights):
    """Was: '<_io.BytesIO object at 0x...>: not a readable image' instead of the file."""
    from PIL import Image

    img, tri = _flat_inputs(tmp_path, 2, size=(96, 80))
    cut = img / "p00.jpg"     # a JPEG's header (and EXIF) come first: planning reads only those
    with Image.open(img / "p00.png") as im:
        im.save(cut, quality=95)
    (img / "p00.png").unlink()
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) // 2])   # header intact, pixels cut
    s = run(tiny_weights, [img], tmp_path / "out", trimaps=str(tri))
    (key, why), = s.failed
    assert key == "p00.jpg" and str(cut) in why and "BytesIO" not in why, why
    assert s.refined == 1


def test_psd_layer_names_ending_in_nul_match_and_print_without_it(tmp_path, tiny_weights):
    """Krita writes PSD layer names with a trailing NUL: '--layers subject' did not match and
    the error printed raw NULs. The name in the file is left as it was."""
    pytest.importorskip("psd_tools")
    from psd_tools import PSDImage

    doc = make_doc()
    src = layered.write(doc, tmp_path / "in" / "krita.psd")
    psd = PSDImage.open(src)
    for layer in psd.descendants():
        layer.name = layer.name + "\0"
    psd.save(src)
    assert all(l.name.endswith("\0") for l in PSDImage.open(src).descendants())
    back = layered.read(src)
    assert [p for p, _ in back.walk()] == ["background", "fg", "fg/subject", "overlay"]
    s = run(tiny_weights, [src], tmp_path / "out", layers="subject", band=1.0)
    assert (s.refined, s.failed) == (1, [])
    out = PSDImage.open(tmp_path / "out" / src.name)
    assert all(l.name.endswith("\0") for l in out.descendants())   # not renamed by the edit
    s = run(tiny_weights, [src], tmp_path / "out2", layers="nobody")
    assert "\0" not in dict(s.failed)[src.name]


# ------------------------------------------------------------------ finding 9: ORA keeps what it does not edit
MYPAINT_STACK = b"""<?xml version='1.0' encoding='UTF-8'?>
<image xmlns:mypaint="http://mypaint.org/ns/openraster" h="30" w="40" version="0.0.5" xres="72" yres="72">
  <stack>
    <layer composite-op="svg:src-over" mypaint:strokemap="data/layer001-strokemap.dat" name="subject" opacity="1.0" selected="true" src="data/layer001.png" visibility="visible" x="0" y="0" />
    <layer composite-op="svg:src-over" name="paper" opacity="1.0" src="data/layer000.png" visibility="visible" x="0" y="0" mypaint:background-tile="data/background-tile.png" />
  </stack>
</image>
"""


def _mypaint_ora(path: Path) -> Path:
    """An OpenRaster file shaped as MyPaint writes one: a stroke map, a background tile, a
    'selected' attribute and MyPaint's namespace, members in MyPaint's order."""
    import io as _io
    import zipfile

    from PIL import Image

    def png_bytes(arr):
        buf = _io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG")
        return buf.getvalue()

    rng = np.random.default_rng(5)
    paper = np.dstack([np.full((30, 40, 3), 240, np.uint8), np.full((30, 40), 255, np.uint8)])
    subject = np.dstack([rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), np.zeros((30, 40), np.uint8)])
    subject[6:24, 8:30, 3] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "image/openraster", zipfile.ZIP_STORED)
        zf.writestr("stack.xml", MYPAINT_STACK, zipfile.ZIP_DEFLATED)
        zf.writestr("data/layer000.png", png_bytes(paper))
        zf.writestr("data/layer001.png", png_bytes(subject))
        zf.writestr("data/layer001-strokemap.dat", b"MPSM" + bytes(range(256)) * 4)
        zf.writestr("data/background-tile.png", png_bytes(np.full((64, 64, 3), 240, np.uint8)))
        zf.writestr("Thumbnails/thumbnail.png", png_bytes(np.zeros((8, 8, 3), np.uint8)))
        zf.writestr("mergedimage.png", png_bytes(paper[..., :3]))
    return path


def _members(path: Path) -> dict:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def test_an_ora_round_trip_without_edits_keeps_every_member(tmp_path):
    src = _mypaint_ora(tmp_path / "in" / "mypaint.ora")
    out = layered.write(layered.read(src), tmp_path / "out.ora")
    assert _members(out) == _members(src)
    import zipfile

    with zipfile.ZipFile(out) as zf:
        assert zf.namelist()[0] == "mimetype" and zf.getinfo("mimetype").compress_type == zipfile.ZIP_STORED


def test_an_ora_edit_keeps_every_member_and_attribute_it_does_not_edit(tmp_path, tiny_weights):
    """Was: MyPaint's stroke maps, background tile and 'selected' attributes were dropped."""
    from xml.etree import ElementTree as ET

    src = _mypaint_ora(tmp_path / "in" / "mypaint.ora")
    s = run(tiny_weights, [src], tmp_path / "out", layers="subject", band=1.0)
    assert (s.refined, s.failed) == (1, [])
    out = tmp_path / "out" / src.name
    before, after = _members(src), _members(out)
    regenerated = {"stack.xml", "mergedimage.png", "Thumbnails/thumbnail.png"}
    for name, data in before.items():
        if name not in regenerated:
            assert after.get(name) == data, name            # byte-identical, stroke map and tile included
    assert set(after) - set(before)                          # the new mask's PNG
    ns = "{http://mypaint.org/ns/openraster}"
    elems = {e.get("name"): e for e in ET.fromstring(after["stack.xml"]).iter("layer")}
    assert elems["subject"].get("selected") == "true"
    assert elems["subject"].get(f"{ns}strokemap") == "data/layer001-strokemap.dat"
    assert elems["paper"].get(f"{ns}background-tile") == "data/background-tile.png"
    assert b"xmlns:mypaint=" in after["stack.xml"] and b"ns0:" not in after["stack.xml"]
    back = layered.read(out)
    assert [p for p, _ in back.leaves()] == ["paper", "subject"]
    assert back.leaves()[1][1].mask is not None and back.leaves()[0][1].mask is None
