"""Shared fixtures. Tests never need ../shared; the golden tests use it when present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REFINE_MATTE_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A small random-weight DiffMatte checkpoint (safetensors with its config)."""
    from doubles.checkpoints import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture(scope="session")
def tiny_engine(tiny_weights):
    import diffmatte

    # fp32: the tests' expected values must not depend on whether this CPU has bf16 kernels
    # (load_engine's default "auto" picks bf16 on such CPUs).
    return diffmatte.load_engine(tiny_weights, device="cpu", precision="fp32")
