"""Numeric parity of the engine with the official DiffMatte code.

* ``tests/data/golden/vits_odd`` (always runs): a committed subset of the official-code
  outputs in ``../shared/golden/dev/vits_odd`` (final alpha, every step's x0 on the
  unknown pixels, every 8th encoder channel). Its weights and x_T are rebuilt from their
  seeds by ``doubles.checkpoints`` (tests/doubles) and checked against the recorded digests first.
* ``../shared/golden/dev/*`` (when present): every dev case in full, weights made by the
  official generator script itself.
* ViT-B, ViT-S-1024 and Res34 have no official outputs here. For them: frozen outputs of
  this engine on seeded official-layout weights (``tests/data/golden/layouts.npz``, a
  regression guard), plus checks derived from the spec that need no reference
  (Res34's spectral-norm sigma, ViT-S-1024 equal to ViT-S with resized tables).
"""
from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED
from make_reference import (FEATURE_STEP, GOLDEN_CASE, LAYOUT_CASES, LAYOUT_TOLERANCE, LAYOUTS_FILE, case_noise,
                            from_u16, layout_inputs, run_layout)

from doubles.checkpoints import golden_state, values_digest, write_golden_checkpoint
from diffmatte.modeling.variants import VARIANTS

GOLDEN = SHARED / "golden"
SHARED_CASES = sorted(p for p in (GOLDEN / "dev").glob("*") if (p / "case.json").is_file()) \
    if GOLDEN.is_dir() else []
needs_shared = pytest.mark.skipif(not SHARED_CASES, reason="../shared/golden not present")


def _run(engine, image: np.ndarray, trimap: np.ndarray, steps: int, noise: np.ndarray):
    """(encoder features, alpha with the official post-processing, x0 of every step)."""
    feats, x0 = [], []
    hook = engine.model.backbone.register_forward_hook(lambda m, i, out: feats.append(out[0].float().numpy()))
    try:
        alpha = engine.refine(image, trimap, steps=steps, noise=noise, callback=lambda s: x0.append(s.x0),
                              force_fg=False)
    finally:
        hook.remove()
    assert len(feats) == 1  # the encoder runs once per image
    return feats[0], alpha, np.stack(x0)


# -- the committed golden case: runs everywhere ---------------------------------------------
@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """(case.json, engine, image, trimap, x_T, expected arrays) of tests/data/golden/vits_odd."""
    import diffmatte

    cj = json.loads((GOLDEN_CASE / "case.json").read_text())
    cfg = VARIANTS[cj["variant"]]
    # Inputs rebuilt from seeds must be the ones the official code saw.
    assert values_digest(golden_state(cfg, cj["weights_seed"])) == cj["weights_values_sha256"]
    noise = case_noise(cj["noise_seed"], tuple(cj["size_hw"]))
    assert hashlib.sha256(noise.tobytes()).hexdigest() == cj["noise_sha256"]
    weights = write_golden_checkpoint(tmp_path_factory.mktemp("golden") / "golden.pth", cfg, cj["weights_seed"],
                                      container=cj["checkpoint_container"])
    engine = diffmatte.load_engine(weights, device="cpu", precision="fp32")
    image = np.array(Image.open(GOLDEN_CASE / "image.png"))
    trimap = np.array(Image.open(GOLDEN_CASE / "trimap.png"))
    return cj, engine, image, trimap, noise, dict(np.load(GOLDEN_CASE / "expected.npz"))


def test_committed_golden_case(golden) -> None:
    """The product engine (Engine.refine) reproduces the official outputs."""
    cj, engine, image, trimap, noise, ref = golden
    assert engine.info()["variant"] == cj["variant"]
    unknown = trimap == 128
    feats, alpha, x0 = _run(engine, image, trimap, cj["steps"], noise)

    std = float(ref["feature_std"])
    expected_feats = ref["features"].astype(np.float64) * std / FEATURE_STEP
    assert feats.shape[0] == 384 and feats.shape[1:] == expected_feats.shape[1:]
    # tolerance 1e-3 std plus the int16 storage step (0.5 / 4096 std)
    assert np.abs(feats[ref["feature_channels"]] - expected_feats).max() <= (1e-3 + 0.5 / FEATURE_STEP) * std
    expected_alpha = from_u16(ref["alpha"])
    tol = cj["tolerance"]["expected_alpha_all_pixels_max_abs"]
    assert np.abs(alpha - expected_alpha)[unknown].max() <= tol
    assert np.abs(alpha - expected_alpha).max() <= tol
    assert (alpha[trimap == 0] == 0).all()
    assert x0.shape[0] == cj["steps"]
    assert np.abs(x0[:, unknown] - from_u16(ref["x0_unknown"])).max() <= cj["tolerance"][
        "expected_x0_steps_unknown_max_abs"]


def test_whole_image_sampler_matches_the_golden_case(golden) -> None:
    """diffusion.ddim_sample (training validation and checkpoint evaluation use it; the engine
    has its own tiled loop) with diffusion.normalize_xt reproduces the official outputs too."""
    import torch

    from diffmatte.diffusion import Schedule, ddim_sample
    from diffmatte.io.images import to_float_rgb, to_trimap

    cj, engine, image, trimap, noise, ref = golden
    model = engine.model
    x0_steps = []
    with torch.no_grad():
        c = model.condition(torch.from_numpy(to_float_rgb(image)).permute(2, 0, 1)[None],
                            torch.from_numpy(to_trimap(trimap))[None, None])
        feats = model.encode(c)
        alpha = ddim_sample(lambda x, t: torch.sigmoid(model.decode(feats, c, x, t)) * 2 - 1,
                            torch.from_numpy(noise)[None, None], cj["steps"], Schedule(scale=model.cfg.scale),
                            on_step=lambda k, t, x0: x0_steps.append(((x0[0, 0] + 1) / 2).numpy()))
    unknown = trimap == 128
    alpha = alpha.clamp(0, 1)[0, 0].numpy()
    assert np.abs(alpha - from_u16(ref["alpha"]))[unknown].max() <= 1e-3
    assert np.abs(np.stack(x0_steps)[:, unknown] - from_u16(ref["x0_unknown"])).max() <= 1e-3


# -- official layouts without official outputs here -----------------------------------------
@pytest.mark.parametrize("name", list(LAYOUT_CASES))
def test_layout_frozen_outputs(name: str, tmp_path: Path) -> None:
    """Each official layout loads strictly from an official-style file and reproduces its
    frozen outputs (regenerate only for a deliberate change: tests/make_reference.py layouts)."""
    from diffmatte.weights.checkpoint import detect_config, read_checkpoint

    seed, steps = LAYOUT_CASES[name]
    weights = write_golden_checkpoint(tmp_path / f"{name}.pth", VARIANTS[name], seed)
    sd, meta = read_checkpoint(weights)
    assert detect_config(sd, meta).name == name
    alpha, x0 = run_layout(name, weights)
    unknown = layout_inputs()[1] == 128
    ref = np.load(LAYOUTS_FILE)
    expected_alpha, expected_x0 = from_u16(ref[f"{name}_alpha"]), from_u16(ref[f"{name}_x0_unknown"])
    assert alpha.shape == expected_alpha.shape and x0.shape == (steps, *alpha.shape)
    assert np.abs(alpha - expected_alpha).max() <= LAYOUT_TOLERANCE
    assert np.abs(x0[:, unknown] - expected_x0).max() <= LAYOUT_TOLERANCE
    # The case is not degenerate: the matte varies inside the unknown band.
    assert expected_alpha[unknown].std() > 0.01


def test_res34_spectral_norm_divides_by_the_stored_sigma(tmp_path: Path) -> None:
    """Spec 2.3: eval-time weight = weight_bar / (u . W v); the generator makes that sigma exactly 2."""
    import torch

    from diffmatte.modeling.resnet import SNConv2d
    from diffmatte.weights.checkpoint import load_model

    path = write_golden_checkpoint(tmp_path / "res34.npz", VARIANTS["Res34"], 5)
    model = load_model(path)
    convs = [m for m in model.modules() if isinstance(m, SNConv2d)]
    with np.load(path) as npz:
        assert len(convs) == sum(k.endswith(".weight_bar") for k in npz.files) == 32  # 3 stem, 26 block, 3 shortcut
    with torch.no_grad():
        for conv in convs:
            torch.testing.assert_close(conv.weight(), conv.module.weight_bar / 2, rtol=1e-5, atol=1e-7)


def test_vits_1024_is_vits_with_longer_global_tables(tmp_path: Path) -> None:
    """Spec 2.3: ViT-S-1024 differs from ViT-S only in its global rel-pos tables (127 vs 63 rows),
    resized at run time by 1-D linear interpolation to 2 * tokens - 1. On a 512 x 512 input
    (32 x 32 tokens, 63 rows needed) ViT-S uses its tables as stored, so ViT-S with tables
    linearly resized from ViT-S-1024's must give the same encoder output."""
    import torch
    import torch.nn.functional as F

    from diffmatte.weights.checkpoint import load_model

    s1024 = golden_state(VARIANTS["ViTS_1024"], 31)
    s512 = {k: (F.interpolate(torch.from_numpy(v).T[None], size=63, mode="linear", align_corners=False)[0].T
                .contiguous().numpy() if k.endswith(("rel_pos_h", "rel_pos_w")) and v.shape[0] == 127 else v)
            for k, v in s1024.items()}
    assert sum(v.shape[0] == 63 for k, v in s512.items() if k.endswith("rel_pos_h")) == 4
    np.savez(tmp_path / "a.npz", **s1024)
    np.savez(tmp_path / "b.npz", **s512)
    m1024, m512 = load_model(tmp_path / "a.npz"), load_model(tmp_path / "b.npz")
    assert (m1024.cfg.name, m512.cfg.name) == ("ViTS_1024", "ViTS")
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 3, 512, 512), dtype=np.float32))
    trimap = torch.from_numpy(rng.integers(0, 3, (1, 1, 512, 512)).astype(np.float32) / 2)
    with torch.no_grad():
        c = m512.condition(image, trimap)
        f512, f1024 = m512.encode(c), m1024.encode(c)
    assert f512.shape == (1, 384, 32, 32)
    assert (f512 - f1024).abs().max().item() <= 1e-5 * f512.std().item()


# -- with ../shared: every dev case in full, and the generator port itself -------------------
def _official_weights(case: Path, tmp_path: Path) -> Path:
    cj = json.loads((case / "case.json").read_text())
    out = tmp_path / f"{cj['case']}.pth"
    subprocess.run([sys.executable, str(GOLDEN / "make_weights.py"), str(GOLDEN / cj["keys_tsv"]),
                    str(cj["weights_seed"]), str(out), "--container", cj.get("checkpoint_container", "model")],
                   check=True, capture_output=True)
    return out


@needs_shared
@pytest.mark.parametrize("case", SHARED_CASES, ids=[c.name for c in SHARED_CASES])
def test_golden_case(case: Path, tmp_path: Path) -> None:
    import diffmatte

    cj = json.loads((case / "case.json").read_text())
    engine = diffmatte.load_engine(_official_weights(case, tmp_path), device="cpu")
    assert engine.info()["variant"] == cj["variant"]
    image = np.array(Image.open(case / "image.png"))
    trimap = np.array(Image.open(case / "trimap.png"))
    unknown = trimap == 128
    feats, alpha, x0 = _run(engine, image, trimap, cj["sampler"]["steps"], np.load(case / "noise.npy"))

    expected_feats = np.load(case / "expected_backbone_features.npy")
    assert feats.shape == expected_feats.shape
    assert np.abs(feats - expected_feats).max() <= 1e-3 * expected_feats.std()
    expected_alpha = np.load(case / "expected_alpha.npy")
    expected_x0 = np.load(case / "expected_x0_steps.npy")
    assert np.abs(alpha - expected_alpha)[unknown].max() <= 1e-3
    assert np.abs(alpha - expected_alpha).max() <= 1e-3
    assert (alpha[trimap == 0] == 0).all()
    assert x0.shape == expected_x0.shape
    assert np.abs(x0 - expected_x0)[:, unknown].max() <= 1e-3
    assert np.abs(x0 - expected_x0).max() <= 1e-3


@pytest.mark.slow
@needs_shared
@pytest.mark.parametrize("tsv", ["ViTS", "ViTB", "ViTS_1024", "Res34"])
def test_generator_port_matches_the_official_key_lists(tsv: str, tmp_path: Path) -> None:
    """doubles.checkpoints reproduces make_weights.py bit for bit, in the official key order."""
    from doubles.checkpoints import official_rows
    from diffmatte.weights.checkpoint import load_model

    keys = GOLDEN / "keys" / f"{tsv}.tsv"
    rows = [line.rstrip("\n").split("\t") for line in keys.open()][1:]
    assert official_rows(VARIANTS[tsv]) == [(k, tuple(ast.literal_eval(s)), d) for k, s, d in rows]
    out = tmp_path / f"{tsv}.npz"
    subprocess.run([sys.executable, str(GOLDEN / "make_weights.py"), str(keys), "3", str(out)],
                   check=True, capture_output=True)
    with np.load(out) as npz:
        official = {k: npz[k] for k, _, _ in rows}
    assert values_digest(golden_state(VARIANTS[tsv], 3)) == values_digest(official)
    assert len(load_model(out).state_dict()) == len(rows)


@needs_shared
def test_committed_golden_case_matches_shared() -> None:
    """The committed subset is what ../shared holds (re-extract: tests/make_reference.py golden-case)."""
    src = GOLDEN / "dev" / "vits_odd"
    for name in ("image.png", "trimap.png"):
        assert (src / name).read_bytes() == (GOLDEN_CASE / name).read_bytes()
    ref = np.load(GOLDEN_CASE / "expected.npz")
    assert np.abs(from_u16(ref["alpha"]) - np.load(src / "expected_alpha.npy")).max() <= 1e-5
    assert np.array_equal(np.load(src / "noise.npy"),
                          case_noise(json.loads((GOLDEN_CASE / "case.json").read_text())["noise_seed"], (250, 330)))
