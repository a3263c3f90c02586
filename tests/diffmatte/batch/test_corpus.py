"""The corpus of real application-written files (tests/data/corpus, issue #25) through
``diffmatte batch``: the checks of bench/corpus_bench.py, in-process and with two runs
that between them refine every kind of layer the corpus has (masked, transparency-only,
in a group, hidden, duplicate names) and refuse the files without a match."""
from __future__ import annotations

import importlib.util
import io
import shutil
import zipfile

import pytest
from conftest import DATA, ROOT

CORPUS = DATA / "corpus"
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="tests/data/corpus is missing")


def _bench():
    spec = importlib.util.spec_from_file_location("corpus_bench", ROOT / "bench" / "corpus_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# "s*": gimp_comp's fg/shadow + fg/subject (layer mask), gimp_solid's flat subject,
# mypaint's fg/sketch (hidden) + fg/subject; "layer": MyPaint's two unnamed layers, and
# both GIMP files refused (no such layer).
QUICK = ("s*", "layer")


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    """Both runs once (each loads the model): (bench module, result, output text, work dir)."""
    cb = _bench()
    work = tmp_path_factory.mktemp("corpus")
    lines = []
    res = cb.bench(CORPUS, QUICK, inprocess=True, echo=lines.append, work=work)
    return cb, res, "\n".join(lines), work


def test_corpus_batch_clean(corpus_run):
    cb, res, text, _ = corpus_run
    assert res["tracebacks"] == 0, text
    assert res["violations"] == [], text
    assert res["failed"] == 0 and not res.get("missing"), text
    assert res["processed"] == 4 and res["refused"] == 2, text
    assert "['layer#1', 'layer#2']" in text  # both duplicate-named layers refined
    assert "no layer matches 'layer'" in text  # refusal says why


def test_checks_catch_changed_layers(corpus_run, tmp_path):
    """The checkers are not vacuous: a changed non-target layer, a changed ORA member or
    attribute, a dropped member are each reported."""
    cb, _, _, work = corpus_run
    out = work / "run0"  # "s*"
    res = cb.outcomes(out, cb.corpus_files(CORPUS))
    status, _, targets = res["mypaint_sketch.ora"]
    assert status == "processed" and targets == ["fg/sketch", "fg/subject"]
    src, dst = CORPUS / "mypaint_sketch.ora", out / "mypaint_sketch.ora"
    assert cb.check_ora(src, dst, targets) == []

    def rewrite(edit):
        with zipfile.ZipFile(dst) as z:
            members = [(i, z.read(i)) for i in z.infolist()]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for info, data in members:
                data = edit(info.filename, data)
                if data is not None:
                    z.writestr(info, data)
        bad = tmp_path / "bad.ora"
        bad.write_bytes(buf.getvalue())
        return cb.check_ora(src, bad, targets)

    assert any("layer-00-strokemap.dat changed" in v
               for v in rewrite(lambda n, d: d + b"x" if n == "data/layer-00-strokemap.dat" else d))
    assert any("data/mypaint-settings.json dropped" in v
               for v in rewrite(lambda n, d: None if n == "data/mypaint-settings.json" else d))
    assert any("layer#2: stack.xml attributes changed" in v
               for v in rewrite(lambda n, d: d.replace(b'x="-64"', b'x="-63"') if n == "stack.xml" else d))
    # a non-target treated as a target must be missing its mask group
    assert any("target is not in a mask group" in v for v in cb.check_ora(src, dst, ["layer#1"]))

    # PSD: the output checked against the other GIMP file differs everywhere
    status, _, targets = res["gimp_comp.psd"]
    assert status == "processed" and targets == ["fg/shadow", "fg/subject"]
    assert cb.check_psd(CORPUS / "gimp_comp.psd", out / "gimp_comp.psd", targets) == []
    assert cb.check_psd(CORPUS / "gimp_comp.psd", out / "gimp_comp.psd", ["fg/shadow"]) != []  # fg/subject changed
    other = tmp_path / "other.psd"
    shutil.copy(CORPUS / "gimp_solid.psd", other)
    assert any("layer tree changed" in v for v in cb.check_psd(CORPUS / "gimp_comp.psd", other, targets))
