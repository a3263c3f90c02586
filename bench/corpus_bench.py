"""The corpus of real application-written layered files (tests/data/corpus) through
``diffmatte batch`` (issue #25).

For each run (a ``--layers`` pattern over the whole corpus folder, the default model,
``--steps 1``) it prints, per file, processed / refused (with the message) / failed, and
checks:

- no traceback in the batch's output, and no file failing with an internal error or an
  unclear message (a raw ``repr`` such as ``<_io.BytesIO object at 0x...>``, NUL bytes);
- PSD (read independently with psd-tools): the same layer tree; every layer that was not
  a target has the same layer record (name, offsets, opacity, flags, blend mode, mask
  data) and byte-identical channel data; every target has a layer mask;
- OpenRaster (read with zipfile): every archive member of the input is in the output,
  byte-identical, except stack.xml and (only when a mask changed) mergedimage.png and the
  thumbnail; new members are only the targets' mask PNGs; in stack.xml every non-target
  element keeps every attribute, and each target sits in a mask group whose mask is a new
  member.

``python bench/corpus_bench.py`` exits 1 on any violation; tests/diffmatte/batch/test_corpus.py runs the
same checks (in-process, ``inprocess=True``).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import traceback
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from xml.etree import ElementTree as ET

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "corpus"
MANIFEST = "refine_matte_batch.jsonl"
LAYERED = (".psd", ".ora", ".tif", ".tiff")
# --layers patterns, each run over the whole folder: "subject" is in every file;
# "layer" is MyPaint's two unnamed layers (duplicate names, layer#1 and layer#2) and in
# no GIMP file (refused); "fg/*" is every layer of the group "fg" (a hidden one included).
RUNS = ("subject", "layer", "fg/*")
# messages of a file that failed by a bug rather than being refused for a reason
_BUG = re.compile(r"internal error|Traceback|object at 0x|cannot be read \(\w+Error|\x00")

sys.path.insert(0, str(ROOT))
from diffmatte.io.layered.model import unique_names  # noqa: E402


def corpus_files(folder: Path = CORPUS) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in LAYERED and not p.name.startswith("."))


def run_batch(pattern: str, out: Path, folder: Path = CORPUS, inprocess: bool = False) -> Tuple[int, str]:
    """``diffmatte batch FOLDER --layers PATTERN -o OUT --steps 1``: (exit code, stdout + stderr)."""
    argv = ["batch", str(folder), "--layers", pattern, "-o", str(out), "--steps", "1", "-q"]
    if not inprocess:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugin"),
                                                           os.environ.get("PYTHONPATH", "")]))
        p = subprocess.run([sys.executable, "-m", "diffmatte", *argv], capture_output=True, text=True, env=env,
                           cwd=str(ROOT))
        return p.returncode, p.stdout + p.stderr
    from diffmatte.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - an escaping exception is a traceback: record it
            traceback.print_exc(file=buf)
            rc = 1
    return rc, buf.getvalue()


def outcomes(out: Path, files: List[Path]) -> Dict[str, Tuple[str, str, List[str]]]:
    """Per input file name: (processed | refused | failed | missing, message, target paths)."""
    records = {}
    manifest = out / MANIFEST
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                records[r["key"]] = r
    res = {}
    for f in files:
        r = records.get(f.name)
        if r is None:
            res[f.name] = ("missing", "no manifest record", [])
        elif r["status"] == "done":
            res[f.name] = ("processed", "", [p for p, _ in r.get("layers") or []])
        else:
            msg = r.get("error") or ""
            clear = msg and "\n" not in msg.strip() and not _BUG.search(msg)
            res[f.name] = ("refused" if clear else "failed", msg, [])
    return res


# ------------------------------------------------------------------ PSD
def _psd_walk(group, prefix: str = ""):
    """(path, layer) depth first, bottom to top, with the batch's unique paths."""
    layers = list(group)
    for layer, seg in zip(layers, unique_names([str(l.name).rstrip("\0") for l in layers])):
        yield prefix + seg, layer
        if layer.is_group():
            yield from _psd_walk(layer, prefix + seg + "/")


def check_psd(src: Path, dst: Path, targets: List[str]) -> List[str]:
    from psd_tools import PSDImage

    a, b = PSDImage.open(src), PSDImage.open(dst)
    la, lb = list(_psd_walk(a)), list(_psd_walk(b))
    if [p for p, _ in la] != [p for p, _ in lb]:
        return [f"layer tree changed: {[p for p, _ in la]} -> {[p for p, _ in lb]}"]
    bad = []
    for (path, x), (_, y) in zip(la, lb):
        if path in targets:
            if not y.has_mask():
                bad.append(f"{path}: target has no layer mask")
            continue
        if x._record != y._record:
            bad.append(f"{path}: layer record changed")
        cx, cy = x._channels, y._channels
        if len(cx) != len(cy) or any(c.compression != d.compression or c.data != d.data for c, d in zip(cx, cy)):
            bad.append(f"{path}: channel data changed")
    missing = set(targets) - {p for p, _ in la}
    bad += [f"{p}: target not in the file" for p in sorted(missing)]
    return bad


# ------------------------------------------------------------------ ORA
def _is_mask_group(e: ET.Element) -> bool:
    kids = list(e)
    return (e.tag == "stack" and len(kids) == 2 and all(k.tag == "layer" for k in kids)
            and kids[0].get("composite-op") == "svg:dst-in")


def _ora_walk(stack: ET.Element, prefix: str = ""):
    """(path, element) like the reader: children bottom to top, a mask group is one layer."""
    kids = list(stack)[::-1]
    names = []
    for e in kids:
        if _is_mask_group(e):
            names.append(e.get("name") or list(e)[1].get("name", "layer"))
        else:
            names.append(e.get("name", "group" if e.tag == "stack" else "layer"))
    for e, seg in zip(kids, unique_names(names)):
        yield prefix + seg, e
        if e.tag == "stack" and not _is_mask_group(e):
            yield from _ora_walk(e, prefix + seg + "/")


def check_ora(src: Path, dst: Path, targets: List[str]) -> List[str]:
    with zipfile.ZipFile(src) as za, zipfile.ZipFile(dst) as zb:
        ma = {i.filename: za.read(i) for i in za.infolist()}
        mb = {i.filename: zb.read(i) for i in zb.infolist()}
    bad = []
    may_change = {"stack.xml"} | ({"mergedimage.png", "Thumbnails/thumbnail.png"} if targets else set())
    for name, data in ma.items():
        if name not in mb:
            bad.append(f"member {name} dropped")
        elif mb[name] != data and name not in may_change:
            bad.append(f"member {name} changed")
    new = set(mb) - set(ma)
    ra, rb = ET.fromstring(ma["stack.xml"]), ET.fromstring(mb["stack.xml"])
    if ra.attrib != rb.attrib:
        bad.append("stack.xml: <image> attributes changed")
    out_by_src = {}
    parent_of = {}
    for p in rb.iter():
        for c in p:
            parent_of[c] = p
            if c.get("src"):
                out_by_src[c.get("src")] = c
    mask_srcs = set()
    paths = {path for path, _ in _ora_walk(ra.find("stack"))}
    bad += [f"{t}: target not in the file" for t in targets if t not in paths]
    for path, e in _ora_walk(ra.find("stack")):
        if e.tag == "stack" and not _is_mask_group(e):
            continue  # a group: its layers are checked one by one
        layer = list(e)[1] if _is_mask_group(e) else e
        y = out_by_src.get(layer.get("src"))
        if y is None:
            bad.append(f"{path}: layer element gone from stack.xml")
            continue
        if path not in targets:
            if y.attrib != layer.attrib:
                bad.append(f"{path}: stack.xml attributes changed {layer.attrib} -> {y.attrib}")
            continue
        group = parent_of.get(y)
        if group is None or not _is_mask_group(group) or list(group)[1] is not y:
            bad.append(f"{path}: target is not in a mask group")
            continue
        mask_srcs.add(list(group)[0].get("src"))
        kept = {k: v for k, v in layer.attrib.items() if k not in ("visibility", "opacity", "composite-op")}
        if {k: v for k, v in y.attrib.items() if k in kept} != kept:
            bad.append(f"{path}: target layer lost attributes")
    for name in sorted(new - mask_srcs):
        if name not in ("mergedimage.png", "Thumbnails/thumbnail.png"):
            bad.append(f"member {name} added but is no target's mask")
    bad += [f"mask {m} not in the archive" for m in sorted(mask_srcs - set(mb))]
    return bad


# ------------------------------------------------------------------ the run
def bench(folder: Path = CORPUS, runs=RUNS, inprocess: bool = False, echo=print,
          work: Optional[Path] = None) -> Dict[str, object]:
    """Run every pattern over ``folder``; returns counts and the list of violations. The
    outputs go to ``work``/runN (kept) or to a temp folder (removed)."""
    files = corpus_files(folder)
    result = {"files": len(files), "processed": 0, "refused": 0, "failed": 0, "tracebacks": 0, "violations": []}
    viol: List[str] = result["violations"]  # type: ignore[assignment]
    with (contextlib.nullcontext(str(work)) if work is not None
          else tempfile.TemporaryDirectory(prefix="corpus_bench_")) as tmp:
        for i, pattern in enumerate(runs):
            out = Path(tmp) / f"run{i}"
            rc, text = run_batch(pattern, out, folder, inprocess)
            echo(f"--layers {pattern!r}: exit {rc}")
            if "Traceback" in text:
                result["tracebacks"] += 1
                viol.append(f"{pattern!r}: traceback in the output:\n{text}")
            for name, (status, msg, targets) in outcomes(out, files).items():
                result[status] = result.get(status, 0) + 1
                line = f"  {name:<22} {status}"
                if status == "processed":
                    fn = check_psd if name.lower().endswith(".psd") else check_ora if name.lower().endswith(".ora") \
                        else None
                    bad = fn(folder / name, out / name, targets) if fn else []
                    line += f" {targets}: " + (f"{len(bad)} violation(s)" if bad else
                                                "every non-target layer byte-identical"
                                                + ("; every other archive member byte-identical"
                                                   if name.lower().endswith(".ora") else ""))
                    viol += [f"{pattern!r} {name}: {b}" for b in bad]
                else:
                    line += f": {msg}"
                    if status != "refused":
                        viol.append(f"{pattern!r} {name}: {status}: {msg}")
                echo(line)
    echo(f"{result['files']} files x {len(runs)} runs: {result['processed']} processed, {result['refused']} refused, "
         f"{result['failed']} failed, {result['tracebacks']} tracebacks, {len(viol)} violations")
    for v in viol:
        echo(f"VIOLATION: {v}")
    return result


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default=str(CORPUS))
    ap.add_argument("--layers", action="append", help="patterns to run (default: %s)" % ", ".join(RUNS))
    ap.add_argument("--inprocess", action="store_true", help="call the CLI in this process (faster)")
    args = ap.parse_args(argv)
    res = bench(Path(args.folder), tuple(args.layers or RUNS), args.inprocess)
    return 1 if res["violations"] or res["tracebacks"] or res["failed"] or res.get("missing") else 0


if __name__ == "__main__":
    sys.exit(main())
