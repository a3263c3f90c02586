"""``diffmatte eval``: dataset layouts, engine + baseline rows, JSON and figure output."""
import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from diffmatte.evaluate import cli as eval_cli
from diffmatte.evaluate.baselines import pymatting_available
from diffmatte.evaluate.datasets import find_dataset, load_samples


def _write_set(root, n=2, size=32, layout="crops"):
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:size, 0:size]
    for i in range(n):
        alpha = np.clip((xs - size / 2 + i) / 6 + 0.5, 0, 1)
        tri = np.where(alpha <= 0, 0, np.where(alpha >= 1, 255, 128)).astype(np.uint8)
        fg, bg = np.array([0.9, 0.6, 0.2]), rng.random(3)
        img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        arrays = {"image": (img * 255).astype(np.uint8), "alpha": (alpha * 255).astype(np.uint8), "trimap": tri}
        for kind, arr in arrays.items():
            if layout == "crops":
                Image.fromarray(arr).save(root / f"{i}_{kind}.png")
            else:
                (root / kind).mkdir(exist_ok=True)
                Image.fromarray(arr).save(root / kind / f"img{i}.png")


def _args(dataset, **kw):
    base = dict(dataset=str(dataset), weights="default", no_engine=False, steps=2, seed=0, device="cpu",
                baselines="none", limit=0, metrics="sad,mse,grad,conn", save_dir="", json="", figure="",
                threads=1, quiet=True)
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    from diffmatte.modeling import build_model
    from diffmatte.modeling.variants import get_config
    from diffmatte.weights import save_safetensors
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_safetensors(build_model(get_config("lite")).eval(), path, half=True)
    return path


def test_layouts(tmp_path):
    a, b = tmp_path / "crops", tmp_path / "dirs"
    a.mkdir()
    b.mkdir()
    _write_set(a, 2)
    _write_set(b, 3, layout="dirs")
    assert [t[0] for t in find_dataset(a)] == ["0", "1"]
    assert [t[0] for t in find_dataset(b)] == ["img0", "img1", "img2"]
    assert len(find_dataset(tmp_path)) == 5  # a parent folder reads every subset
    s = load_samples(a, limit=1)[0]
    assert s.image.shape == (32, 32, 3) and s.trimap.dtype == np.uint8
    with pytest.raises(ValueError, match="no \\(image, alpha, trimap\\)"):
        find_dataset(_empty(tmp_path))


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_eval_engine_json_and_figure(tmp_path, tiny_weights, capsys):
    data = tmp_path / "set"
    data.mkdir()
    _write_set(data, 2)
    out_json, fig = tmp_path / "r.json", tmp_path / "fig.png"
    rc = eval_cli.run(_args(data, weights=str(tiny_weights), json=str(out_json), figure=str(fig)))
    assert rc == 0
    text = capsys.readouterr().out
    assert "MEAN (2 images)" in text and "diffmatte-lite" in text
    res = json.loads(out_json.read_text())["results"]["diffmatte-lite"]
    assert set(res["per_image"]) == {"0", "1"}
    for row in res["per_image"].values():
        assert all(np.isfinite(row[k]) and row[k] >= 0 for k in ("sad", "mse", "grad", "conn"))
    assert Image.open(fig).size[0] > 4 * 32
    # --figure-cases picks the rows (here one), and a wrong name fails before any work.
    fig1 = tmp_path / "fig1.png"
    rc = eval_cli.run(_args(data, weights=str(tiny_weights), figure=str(fig1), figure_cases="1", tile=40))
    assert rc == 0 and Image.open(fig1).size[1] == 22 + 40 + 4
    assert eval_cli.run(_args(data, weights=str(tiny_weights), figure=str(fig1), figure_cases="7")) == 2
    assert "--figure-cases not in the dataset" in capsys.readouterr().out


def test_eval_bad_inputs(tmp_path, capsys):
    assert eval_cli.run(_args(tmp_path / "missing")) == 2
    data = tmp_path / "set"
    data.mkdir()
    _write_set(data, 1)
    assert eval_cli.run(_args(data, weights=str(tmp_path / "nope.safetensors"))) == 2
    assert eval_cli.run(_args(data, no_engine=True, baselines="magic")) == 2
    assert eval_cli.run(_args(data, metrics="sad,psnr")) == 2
    assert "error" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(not pymatting_available(), reason="pymatting (optional) not installed")
def test_closed_form_baseline_row(tmp_path, capsys):
    data = tmp_path / "set"
    data.mkdir()
    _write_set(data, 1)
    out_json = tmp_path / "r.json"
    assert eval_cli.run(_args(data, no_engine=True, baselines="cf", json=str(out_json))) == 0
    mean = json.loads(out_json.read_text())["results"]["cf"]["mean"]
    # A clean linear ramp over two flat colours is easy for closed-form matting.
    assert mean["sad"] < 0.05 and mean["mse"] < 0.01


def test_ratio_lines_per_seed_and_mean_over_seeds():
    from diffmatte.evaluate.runner import MethodResult, ratio_lines

    a = MethodResult("diffmatte-x@s0", {"i1": {"sad": 2.0, "mse": 0.01}, "i2": {"sad": 4.0, "mse": 0.03}})
    b = MethodResult("diffmatte-x@s1", {"i1": {"sad": 4.0, "mse": 0.01}, "i2": {"sad": 6.0, "mse": 0.01}})
    cf = MethodResult("cf", {"i1": {"sad": 5.0, "mse": 0.02}, "i2": {"sad": 5.0, "mse": 0.02}})
    lines = ratio_lines([a, b, cf], ["diffmatte-x@s0", "diffmatte-x@s1"], ["cf"])
    assert lines[0].startswith("diffmatte-x@s0 / cf: SAD x0.600  MSE x1.000")
    assert lines[1].startswith("diffmatte-x@s1 / cf: SAD x1.000  MSE x0.500")
    assert lines[2].startswith("mean over s0, s1 / cf: SAD x0.800  MSE x0.750  (2 images)")
