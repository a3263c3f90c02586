#!/usr/bin/env python3
"""(Re)generate the committed reference data of the numeric tests.

    python tests/make_reference.py default       # after a deliberate change of the default model
    python tests/make_reference.py layouts       # frozen ViT-B / ViT-S-1024 / Res34 outputs
    python tests/make_reference.py golden-case   # subset of ../shared/golden/dev/vits_odd

``default`` is the one to run when ``diffmatte/weights/default.safetensors`` is replaced
on purpose (``tests/diffmatte/test_default_model.py`` then fails until it is). ``layouts`` should
never be needed: the official layouts must keep their numerics; run it only for a
deliberate, explained change of the official arithmetic, after the golden tests pass.
``golden-case`` needs ``../shared`` (or REFINE_MATTE_SHARED) and only re-extracts data.

The settings below are imported by the tests, so test and generator cannot drift apart.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
GOLDEN_CASE = DATA / "golden" / "vits_odd"
LAYOUTS_FILE = DATA / "golden" / "layouts.npz"
DEFAULT_DIR = DATA / "default_model"
DEFAULT_REF = DEFAULT_DIR / "reference.npz"
SAMPLES = ROOT / "diffmatte" / "samples"

#: Photos of the default-model reference: the bundled sample (what ``install.py --sample``
#: refines) and scikit-image's "chelsea" (CC0; fur against a blurred background) with a
#: trimap drawn by hand as polygons (tests/data/default_model/chelsea_trimap.png).
DEFAULT_PHOTOS = ("sample", "chelsea")
#: Refine settings of the default-model reference: the engine defaults, fixed seed.
DEFAULT_SETTINGS = dict(steps=10, seed=0)
#: Max |alpha - reference| allowed by test_default_model (see the README note in tests/data).
DEFAULT_TOLERANCE = 1e-3

#: Frozen-output cases for the official layouts without official reference outputs here:
#: (weights seed, DDIM steps). Input: a 64 x 100 crop of the bundled sample (hair edge),
#: which pads to 96 x 128 (the +32 quirk on the already divisible height). Stored: alpha
#: (all pixels) and every step's x0 on the unknown pixels, uint16.
LAYOUT_CASES: Dict[str, Tuple[int, int]] = {"ViTB": (21, 3), "ViTS_1024": (22, 3), "Res34": (23, 3)}
LAYOUT_CROP = (slice(64, 128), slice(80, 180))
LAYOUT_TOLERANCE = 1e-3   # the golden tolerance

U16 = 65535.0
FEATURE_STEP = 4096.0     # int16 feature quantisation: 1/4096 of the feature std per unit
FEATURE_CHANNEL_STRIDE = 8


def u16(a: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint16 fixed point (error <= 7.7e-6)."""
    return np.round(np.clip(a, 0.0, 1.0) * U16).astype(np.uint16)


def from_u16(q: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) / np.float32(U16)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_sample() -> Tuple[np.ndarray, np.ndarray]:
    """The bundled sample photo and its hand-made trimap (what ``install.py --sample`` refines)."""
    return (np.array(Image.open(SAMPLES / "sample_image.png").convert("RGB")),
            np.array(Image.open(SAMPLES / "sample_trimap.png")))


def load_photo(name: str) -> Tuple[np.ndarray, np.ndarray]:
    """(image, trimap) of one default-model reference photo."""
    if name == "sample":
        return load_sample()
    if name == "chelsea":
        import skimage.data  # the test extra installs it; the photo ships inside the wheel

        return skimage.data.chelsea(), np.array(Image.open(DEFAULT_DIR / "chelsea_trimap.png"))
    raise ValueError(f"unknown reference photo {name!r}")


def image_sha256(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).hexdigest()


def case_noise(seed: int, shape: Tuple[int, int]) -> np.ndarray:
    """x_T recipe of the golden cases: default_rng(seed).standard_normal(shape) as float32."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def refine_default(name: str, engine=None) -> np.ndarray:
    """The bundled default model on one reference photo, fp32 CPU, fixed seed."""
    import diffmatte

    image, trimap = load_photo(name)
    # fp32 explicitly: the reference pins fp32 numerics whatever the engine's default precision.
    engine = engine or diffmatte.load_engine("default", device="cpu", precision="fp32")
    return engine.refine(image, trimap, **DEFAULT_SETTINGS)


def layout_inputs() -> Tuple[np.ndarray, np.ndarray]:
    """Image and trimap of the frozen layout cases."""
    image, trimap = load_sample()
    return image[LAYOUT_CROP], trimap[LAYOUT_CROP]


def run_layout(name: str, weights: Path) -> Tuple[np.ndarray, np.ndarray]:
    """(alpha, x0 per step) of one frozen layout case, official post-processing (fg not forced)."""
    import diffmatte

    seed, steps = LAYOUT_CASES[name]
    image, trimap = layout_inputs()
    x0 = []
    engine = diffmatte.load_engine(weights, device="cpu", precision="fp32")
    alpha = engine.refine(image, trimap, steps=steps, noise=case_noise(seed + 1, trimap.shape),
                          callback=lambda s: x0.append(s.x0), force_fg=False)
    return alpha, np.stack(x0)


def make_default() -> None:
    import torch

    from diffmatte.engine import DEFAULT_WEIGHTS

    import diffmatte

    os.environ.pop("DIFFMATTE_DEFAULT_WEIGHTS", None)  # the shipped file, not an override
    engine = diffmatte.load_engine("default", device="cpu", precision="fp32")
    alphas = {name: refine_default(name, engine) for name in DEFAULT_PHOTOS}
    check_results_revision(alphas, diffmatte.RESULTS_REVISION)
    DEFAULT_DIR.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(DEFAULT_REF, **{name: u16(a) for name, a in alphas.items()})
    meta = dict(weights_sha256=sha256_file(DEFAULT_WEIGHTS), settings=DEFAULT_SETTINGS,
                image_sha256={name: image_sha256(load_photo(name)[0]) for name in DEFAULT_PHOTOS},
                tolerance_max_abs=DEFAULT_TOLERANCE, results_revision=diffmatte.RESULTS_REVISION,
                torch=torch.__version__, numpy=np.__version__,
                machine=platform.machine(), threads=torch.get_num_threads(),
                command="python tests/make_reference.py default")
    DEFAULT_REF.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    for name, a in alphas.items():
        print(f"{name}: unknown-region mean alpha {float(a[load_photo(name)[1] == 128].mean()):.4f}")
    print(f"wrote {DEFAULT_REF}")


def check_results_revision(alphas: Dict[str, np.ndarray], revision: int) -> None:
    """Refuse a new reference whose mattes moved beyond the tolerance while
    ``diffmatte.RESULTS_REVISION`` stayed the one the old reference was made with: batch
    fingerprints carry that number, so a rerun after an engine whose matte changed redoes
    its outputs only once it is raised (diffmatte/__init__.py)."""
    meta_file = DEFAULT_REF.with_suffix(".json")
    if not (DEFAULT_REF.exists() and meta_file.exists()):
        return
    old_revision = json.loads(meta_file.read_text()).get("results_revision")
    with np.load(DEFAULT_REF) as old:
        moved = [name for name, a in alphas.items()
                 if name not in old or np.abs(a - from_u16(old[name])).max() > DEFAULT_TOLERANCE]
    if moved and old_revision == revision:
        raise SystemExit(f"the default model's matte moved on {', '.join(moved)} but diffmatte.RESULTS_REVISION "
                         f"is still {revision}: raise it (diffmatte/__init__.py) so that batch reruns redo "
                         "outputs made with the old engine, then run this again")


def make_layouts() -> None:
    import tempfile

    from doubles.checkpoints import write_golden_checkpoint
    from diffmatte.modeling.variants import VARIANTS

    arrays = {}
    unknown = layout_inputs()[1] == 128
    with tempfile.TemporaryDirectory() as tmp:
        for name, (seed, _) in LAYOUT_CASES.items():
            path = write_golden_checkpoint(Path(tmp) / f"{name}.pth", VARIANTS[name], seed)
            alpha, x0 = run_layout(name, path)
            arrays[f"{name}_alpha"], arrays[f"{name}_x0_unknown"] = u16(alpha), u16(x0[:, unknown])
            path.unlink()
            print(f"{name}: alpha mean {alpha.mean():.4f} std {alpha.std():.4f}")
    LAYOUTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(LAYOUTS_FILE, **arrays)
    print(f"wrote {LAYOUTS_FILE}")


def make_golden_case() -> None:
    import shutil

    shared = Path(os.environ.get("REFINE_MATTE_SHARED", ROOT.parent / "shared"))
    src = shared / "golden" / "dev" / "vits_odd"
    cj = json.loads((src / "case.json").read_text())
    trimap = np.array(Image.open(src / "trimap.png"))
    unknown = trimap == 128
    noise = np.load(src / "noise.npy")
    seed = cj["weights_seed"] + 1
    if not np.array_equal(noise, case_noise(seed, noise.shape)):
        raise SystemExit("noise.npy does not follow the documented recipe; not extracting")
    feats = np.load(src / "expected_backbone_features.npy")
    std = float(feats.std())
    channels = np.arange(0, feats.shape[0], FEATURE_CHANNEL_STRIDE)
    GOLDEN_CASE.mkdir(parents=True, exist_ok=True)
    for name in ("image.png", "trimap.png"):
        shutil.copyfile(src / name, GOLDEN_CASE / name)
    np.savez_compressed(
        GOLDEN_CASE / "expected.npz",
        alpha=u16(np.load(src / "expected_alpha.npy")),
        x0_unknown=u16(np.load(src / "expected_x0_steps.npy")[:, unknown]),
        features=np.round(feats[channels] / std * FEATURE_STEP).astype(np.int16),
        feature_channels=channels, feature_std=np.float64(std))
    keep = {k: cj[k] for k in ("case", "variant", "weights_seed", "weights_values_sha256",
                               "checkpoint_container", "size_hw", "padded_size_hw", "tolerance")}
    keep.update(steps=cj["sampler"]["steps"], noise_seed=seed,
                noise_sha256=hashlib.sha256(noise.tobytes()).hexdigest(),
                source="../shared/golden/dev/vits_odd: outputs of the official DiffMatte code "
                       "(YihanHu-2022/DiffMatte @ 12082fd) on seeded synthetic weights",
                stored="alpha: all pixels; x0: unknown pixels (trimap == 128) of every step; both uint16 "
                       "(value * 65535). features: every 8th channel, int16 = round(F / feature_std * 4096). "
                       "Weights and noise are rebuilt from their seeds (tests/doubles/checkpoints.py golden_state, "
                       "case_noise) and checked against the recorded SHA-256 digests.",
                command="python tests/make_reference.py golden-case")
    (GOLDEN_CASE / "case.json").write_text(json.dumps(keep, indent=1) + "\n")
    print(f"wrote {GOLDEN_CASE}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["default", "layouts", "golden-case"])
    args = ap.parse_args(argv)
    {"default": make_default, "layouts": make_layouts, "golden-case": make_golden_case}[args.what]()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
