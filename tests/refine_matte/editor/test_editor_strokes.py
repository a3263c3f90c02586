"""Issue #27: the editor's scribble workflow on a real photo reaches a good matte in at
most 6 strokes (tests/hosts/editor_strokes.py: the real editor window, a real service with
the bundled default model, the bench's simulated artist, band preview screenshots).

Needs the dev photos (``../shared/data/dev/alphamatting-real``, or REFINE_MATTE_SHARED);
without them it is skipped. Slow: about 2 minutes on 2 cores.
"""
from __future__ import annotations

import importlib.util
import os

import pytest

from conftest import ROOT, SHARED

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
DATA = SHARED / "data" / "dev" / "alphamatting-real"
MAX_STROKES = 6


def _script():
    spec = importlib.util.spec_from_file_location("rm_editor_strokes", ROOT / "tests" / "hosts" / "editor_strokes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_script_skips_cleanly_without_the_photos(tmp_path, capsys):
    mod = _script()
    assert mod.main([str(tmp_path / "nowhere"), str(tmp_path / "shots")]) == 0
    assert "skipped" in capsys.readouterr().out
    assert not (tmp_path / "shots").exists()


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason=(
    "issue #27: the goal is within 1.5x of the trimap2 matte, whose SAD fell with the better prior "
    "(10.13, then 8.86, 8.02 with the white point of session 15), so the target fell from 15.20 to "
    "12.02; session 15: the editor's strokes reach 14.98 at stroke 4, a small background dab then "
    "makes GrabCut drop the pink hair (72.51), stroke 6 gives 14.00"))
def test_scribbles_reach_a_good_matte_on_gt04_in_six_strokes(tmp_path):
    mod = _script()
    if not mod.data_ready(DATA) or not (DATA / "input" / "GT04.png").is_file():
        pytest.skip(f"the dev photos are not in {DATA}")
    pytest.importorskip("torch")
    pytest.importorskip("cv2")
    lines = []
    counts = mod.run(DATA, tmp_path, photos=["GT04"], max_strokes=MAX_STROKES, log=lines.append)
    print("\n".join(lines))
    shots = sorted(tmp_path.glob("GT04_stroke*.png"))
    assert len(shots) >= 2  # one per stroke, the band preview from the second on
    assert counts["GT04"] <= MAX_STROKES, "\n".join(lines)
