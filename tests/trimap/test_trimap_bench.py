"""Tests for trimap.evaluate and bench/trimap_bench.py (synthetic data; the dev photos only when present)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import trimap
from trimap.evaluate import coarse_mask_from_alpha, sad, trimap_scores
from conftest import ROOT, SHARED



def soft_disk(h=64, w=80, r=20.0, soft=4.0):
    y, x = np.mgrid[0:h, 0:w]
    d = np.sqrt((y - h / 2) ** 2 + (x - w / 2) ** 2)
    return np.clip((r - d) / soft + 0.5, 0.0, 1.0).astype(np.float32)


def test_coarse_mask_is_deterministic_and_near_the_half_contour():
    a = soft_disk()
    m1 = coarse_mask_from_alpha(a, seed=1)
    m2 = coarse_mask_from_alpha(a, seed=1)
    m3 = coarse_mask_from_alpha(a, seed=2)
    assert m1.dtype == bool and np.array_equal(m1, m2) and not np.array_equal(m1, m3)
    assert (m1 != (a >= 0.5)).sum() > 0  # jittered...
    assert (m1 == (a >= 0.5)).mean() > 0.9  # ...but only a little
    strands = np.zeros((40, 40), np.float32)
    strands[20, :] = 1.0  # a one-pixel strand is knocked out
    strands[5:15, 5:15] = 1.0
    out = coarse_mask_from_alpha(strands, jitter=0)
    assert not out[20, 20:].any() and out[8:12, 8:12].all()


def test_scores_of_a_perfect_and_a_bad_trimap():
    a = soft_disk()
    perfect = np.where(a >= 1, 255, np.where(a <= 0, 0, 128)).astype(np.uint8)
    s = trimap_scores(perfect, a, reference=perfect)
    assert s["coverage"] == 1.0 and s["area_ratio"] == 1.0 and s["forced_sad"] == 0.0
    hard = np.where(a >= 0.5, 255, 0).astype(np.uint8)
    s2 = trimap_scores(hard, a, reference=perfect)
    assert s2["coverage"] == 0.0 and s2["area_ratio"] == 0.0
    expected = (np.where(a >= 0.5, 1 - a, a)).sum() / 1000
    assert s2["forced_sad"] == pytest.approx(expected, rel=1e-5)
    assert sad(a, a) == 0.0 and sad(np.zeros_like(a), a) == pytest.approx(a.sum() / 1000, rel=1e-5)
    with pytest.raises(ValueError, match="must match"):
        trimap_scores(hard[:-1], a)


def load_bench():
    spec = importlib.util.spec_from_file_location("trimap_bench", ROOT / "bench" / "trimap_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_sample(folder: Path, stem: str, alpha: np.ndarray):
    folder.mkdir(parents=True, exist_ok=True)
    img = np.zeros(alpha.shape + (3,), np.uint8)
    img[..., 0] = (alpha * 200).astype(np.uint8)
    img[..., 2] = 120
    Image.fromarray(img).save(folder / f"{stem}_image.png")
    Image.fromarray((alpha * 255).astype(np.uint8)).convert("RGB").save(folder / f"{stem}_alpha.png")  # RGB alpha, as in the data
    tri = np.where(alpha >= 1, 255, np.where(alpha <= 0, 0, 128)).astype(np.uint8)
    Image.fromarray(tri).convert("P").save(folder / f"{stem}_trimap.png")  # palette trimap


def test_bench_runs_on_a_synthetic_data_folder(tmp_path, capsys):
    data = tmp_path / "dev"
    write_sample(data / "comp1k-crops", "0", soft_disk())
    write_sample(data / "comp1k-crops", "1", soft_disk(r=12, soft=8))
    (data / "comp1k-crops" / "2_alpha.png").write_bytes(b"broken")  # a bad file is skipped
    (data / "comp1k-crops" / "2_image.png").write_bytes(b"broken")
    (data / "comp1k-crops" / "2_trimap.png").write_bytes(b"broken")
    bench = load_bench()
    out = tmp_path / "rows.json"
    rc = bench.run(bench.build_parser().parse_args(["--data", str(data), "--sets", "comp1k-crops", "--json", str(out)]))
    assert rc == 0
    text = capsys.readouterr().out
    assert "comp1k-crops/0" in text and "comp1k-crops/1" in text and "| const:25 |" in text
    saved = json.loads(out.read_text())
    rows = saved["rows"]
    assert len(rows) == 2 * len(bench.DEFAULT_METHODS)
    assert {r["method"] for r in rows} == set(bench.DEFAULT_METHODS)
    for r in rows:
        assert 0.0 <= r["coverage"] <= 1.0 and r["area_ratio"] > 0
    prod = [r["area_ratio"] for r in rows if r["method"] == "product"]
    assert saved["summary"]["product"]["area_max"] == pytest.approx(max(prod))
    assert bench.run(bench.build_parser().parse_args(["--data", str(tmp_path / "missing")])) == 2


def write_alphamatting(folder: Path, stem: str, alpha: np.ndarray):
    """The alphamatting.com layout: gt/, input/, trimap1/, trimap2/ with one PNG name per photo."""
    for sub in ("gt", "input", "trimap1", "trimap2"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    img = np.zeros(alpha.shape + (3,), np.uint8)
    img[..., 0] = (alpha * 200).astype(np.uint8)
    img[..., 2] = 120
    Image.fromarray(img).save(folder / "input" / f"{stem}.png")
    Image.fromarray((alpha * 255).astype(np.uint8)).convert("RGB").save(folder / "gt" / f"{stem}.png")
    tri = np.where(alpha >= 1, 255, np.where(alpha <= 0, 0, 128)).astype(np.uint8)
    Image.fromarray(tri).save(folder / "trimap1" / f"{stem}.png")
    wide = trimap.from_mask(alpha >= 0.5, band=12, adaptive=False)
    Image.fromarray(wide).save(folder / "trimap2" / f"{stem}.png")


def test_bench_reads_the_alphamatting_layout_and_its_methods(tmp_path, capsys):
    data = tmp_path / "am"
    alpha = soft_disk(h=96, w=96, r=30, soft=6)
    write_alphamatting(data, "GT01", alpha)
    bench = load_bench()
    assert [s[0] for s in bench.find_samples(data, [])] == ["GT01"]
    out = tmp_path / "rows.json"
    args = ["--data", str(data), "--methods", "product", "const:5", "const:12", "--json", str(out)]
    assert bench.run(bench.build_parser().parse_args(args)) == 0
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    # The reference is trimap2 (a 12 px constant band around the 0.5 contour); the
    # constant band of the same radius around the jittered mask has about its area.
    assert rows["const:12"]["area_ratio"] == pytest.approx(1.0, abs=0.15)
    assert rows["const:5"]["area_ratio"] < rows["const:12"]["area_ratio"]
    assert "product default: area <= 2x trimap2 on every photo: yes" in capsys.readouterr().out
    # --reference picks the other trimap folder (the tight one: a larger ratio).
    args = ["--data", str(data), "--methods", "const:12", "--reference", "trimap1", "--json", str(out)]
    assert bench.run(bench.build_parser().parse_args(args)) == 0
    assert json.loads(out.read_text())["rows"][0]["area_ratio"] > 1.5
    with pytest.raises(SystemExit):
        bench.build_parser().parse_args(["--data", str(data), "--methods", "wide"])
    with pytest.raises(SystemExit):
        bench.build_parser().parse_args(["--data", str(data), "--methods", "const:-3"])


@pytest.mark.skipif(not (SHARED / "data" / "dev" / "comp1k-crops").is_dir(), reason="dev photos not present")
def test_bench_on_one_dev_crop_when_present(capsys):
    bench = load_bench()
    samples = list(bench.find_samples(SHARED / "data" / "dev", ["comp1k-crops"]))
    assert samples
    name, img_p, al_p, tr_p = samples[0]
    alpha = bench.load_l(al_p)
    ref = trimap._validate.as_trimap(bench.load_l(tr_p))
    coarse = coarse_mask_from_alpha(alpha)
    tri = trimap.from_mask(coarse)
    s = trimap_scores(tri, alpha, reference=ref)
    # A generated trimap must cover most of the transition and not balloon.
    assert s["coverage"] > 0.5 and s["area_ratio"] < 3.0
    aware = trimap_scores(trimap.from_mask(coarse, image=bench.load_rgb(img_p)), alpha, reference=ref)
    assert aware["coverage"] >= s["coverage"] and aware["area_ratio"] < 3.0


def test_bench_end_to_end_sad_path_with_tiny_random_engine(tmp_path, capsys):
    from doubles.checkpoints import write_tiny_checkpoint

    weights = write_tiny_checkpoint(tmp_path / "tiny.safetensors")
    data = tmp_path / "am"
    write_alphamatting(data, "GT01", soft_disk(h=48, w=64, r=14))
    bench = load_bench()
    out = tmp_path / "rows.json"
    args = ["--data", str(data), "--weights", str(weights), "--steps", "1",
            "--max-side", "40", "--methods", "product", "const:4", "--json", str(out)]
    assert bench.run(bench.build_parser().parse_args(args)) == 0
    saved = json.loads(out.read_text())
    rows = saved["rows"]
    # Random weights: the SAD values are meaningless, only the path is checked.
    assert all(r["sad"] >= 0 and r["sad_reference"] >= 0 for r in rows)
    assert rows[0]["sad_reference"] == rows[1]["sad_reference"]  # one reference matte per photo
    assert saved["summary"]["product"]["sad_ratio"] == pytest.approx(rows[0]["sad"] / rows[0]["sad_reference"])
    text = capsys.readouterr().out
    assert "SAD with trimap2" in text and "SAD below every constant band (const:4)" in text
    bad = ["--data", str(data), "--weights", str(tmp_path / "missing.safetensors")]
    assert bench.run(bench.build_parser().parse_args(bad)) == 2
