"""Conformance with the official DiffMatte outputs (../shared/golden), when available.

Every case folder under golden/dev is run: weights regenerated from their seed with the
official generator, loaded by our loader exactly like an official file, sampled with the
case's noise; final alpha, every step's x0 and the encoder features are compared.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED

GOLDEN = SHARED / "golden"
CASES = sorted(p for p in (GOLDEN / "dev").glob("*") if (p / "case.json").is_file()) if GOLDEN.is_dir() else []

pytestmark = pytest.mark.skipif(not CASES, reason="../shared/golden not present")


def _weights_for(case: Path, tmp_path: Path) -> Path:
    cj = json.loads((case / "case.json").read_text())
    container = cj.get("checkpoint_container", "model")
    out = tmp_path / f"{cj['case']}.pth"
    subprocess.run([sys.executable, str(GOLDEN / "make_weights.py"), str(GOLDEN / cj["keys_tsv"]),
                    str(cj["weights_seed"]), str(out), "--container", container],
                   check=True, capture_output=True)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Path, tmp_path: Path) -> None:
    import torch

    import diffmatte
    from diffmatte.imageio import to_float_rgb, to_trimap

    cj = json.loads((case / "case.json").read_text())
    engine = diffmatte.load_engine(_weights_for(case, tmp_path), device="cpu")
    assert engine.info()["variant"] == cj["variant"]
    image = np.array(Image.open(case / "image.png"))
    trimap = np.array(Image.open(case / "trimap.png"))
    unknown = trimap == 128

    with torch.no_grad():
        c = engine.model.condition(torch.from_numpy(to_float_rgb(image)).permute(2, 0, 1)[None],
                                   torch.from_numpy(to_trimap(trimap))[None, None])
        feats = engine.model.encode(c)[0].numpy()
    expected_feats = np.load(case / "expected_backbone_features.npy")
    assert feats.shape == expected_feats.shape
    assert np.abs(feats - expected_feats).max() <= 1e-3 * expected_feats.std()

    x0_steps = []
    alpha = engine.refine(image, trimap, steps=cj["sampler"]["steps"], noise=np.load(case / "noise.npy"),
                          callback=lambda s: x0_steps.append(s.x0), force_fg=False)
    expected_alpha = np.load(case / "expected_alpha.npy")
    expected_x0 = np.load(case / "expected_x0_steps.npy")
    assert np.abs(alpha - expected_alpha)[unknown].max() <= 1e-3
    assert np.abs(alpha - expected_alpha).max() <= 1e-3
    assert (alpha[trimap == 0] == 0).all()
    x0 = np.stack(x0_steps)
    assert x0.shape == expected_x0.shape
    assert np.abs(x0 - expected_x0)[:, unknown].max() <= 1e-3
    assert np.abs(x0 - expected_x0).max() <= 1e-3

    # The product default forces known foreground to 1 (documented deviation).
    forced = engine.refine(image, trimap, steps=1, noise=np.load(case / "noise.npy"))
    assert (forced[trimap == 255] == 1).all()


@pytest.mark.parametrize("tsv", ["ViTS", "ViTB", "ViTS_1024", "Res34"])
def test_official_layouts_load_strictly(tsv: str, tmp_path: Path) -> None:
    """Every official key layout is detected as its variant and loads with no key left over."""
    from diffmatte.weights.checkpoint import detect_config, load_model, read_checkpoint

    keys = GOLDEN / "keys" / f"{tsv}.tsv"
    if not keys.is_file():
        pytest.skip(f"{keys} not present")
    out = tmp_path / f"{tsv}.npz"
    subprocess.run([sys.executable, str(GOLDEN / "make_weights.py"), str(keys), "3", str(out)],
                   check=True, capture_output=True)
    sd, meta = read_checkpoint(out)
    assert detect_config(sd, meta).name == tsv
    model = load_model(out)
    n_rows = sum(1 for _ in keys.open()) - 1
    assert len(model.state_dict()) == n_rows
    # ... and runs through the engine (channels_last, odd size with the padding quirk).
    import numpy as np

    import diffmatte

    engine = diffmatte.load_engine(out, device="cpu")
    rng = np.random.default_rng(0)
    trimap = np.full((40, 70), 128, np.uint8)
    trimap[:8] = 0
    alpha = engine.refine(rng.integers(0, 256, (40, 70, 3), dtype=np.uint8), trimap, steps=2, seed=0)
    assert alpha.shape == (40, 70) and np.isfinite(alpha).all()
