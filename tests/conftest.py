"""Shared fixtures. Tests never need ../shared; the golden tests use it when present.

Slow tests (``@pytest.mark.slow``: over ~10 s on 2 cores) are left out of a plain run so
that it stays within ~5 minutes on an idle 2-core machine; ``--slow`` or
``REFINE_MATTE_SLOW=1`` (CI: .ci/run) runs them too, an explicit ``-m`` expression or a
test named by its node id (``file.py::test``) decides for itself. The run ends with its
wall time.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Paths for the tests, which sit one or two folders deeper (tests/<package>/[<subpackage>/]);
# import them (``from conftest import ROOT, DATA``) instead of counting parents of __file__.
ROOT = Path(__file__).resolve().parents[1]   # the repository root
TESTS = ROOT / "tests"
DATA = TESTS / "data"                          # committed test data (tests/data/README.md)
SHARED = Path(os.environ.get("REFINE_MATTE_SHARED", ROOT.parent / "shared"))


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run the tests marked slow (as CI does; REFINE_MATTE_SLOW=1 does the same)")


def _run_slow(config) -> bool:
    return (config.getoption("--slow") or os.environ.get("REFINE_MATTE_SLOW", "") == "1"
            or bool(config.option.markexpr) or any("::" in str(arg) for arg in config.args))


def pytest_collection_modifyitems(config, items):
    config._rm_slow_left_out = 0
    if _run_slow(config):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        keep = [item for item in items if item.get_closest_marker("slow") is None]
        config.hook.pytest_deselected(items=slow)
        items[:] = keep
        config._rm_slow_left_out = len(slow)


def pytest_sessionstart(session):
    session.config._rm_started = time.monotonic()
    session.config._rm_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    started = getattr(config, "_rm_started", None)
    if started is None:
        return
    wall = time.monotonic() - started
    load = getattr(config, "_rm_load", None)
    left_out = getattr(config, "_rm_slow_left_out", 0)
    if left_out:
        slow = f"{left_out} slow tests left out (--slow or REFINE_MATTE_SLOW=1 runs them)"
    elif config.option.markexpr:
        slow = f"tests chosen by -m {config.option.markexpr!r}"
    else:
        slow = "slow tests included" if _run_slow(config) else "no slow tests collected"
    terminalreporter.write_line(
        f"suite wall time: {wall:.1f} s ({wall / 60:.1f} min) on {os.cpu_count()} CPUs"
        + (f", load average {load:.2f} at the start" if load is not None else "") + f"; {slow}")


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


@pytest.fixture
def refine_calls(monkeypatch):
    """The keyword arguments of every ``Engine.refine`` call in the test (the real refine runs)."""
    import diffmatte.engine as engine_mod

    calls = []
    real = engine_mod.Engine.refine

    def spy(self, image, trimap, *args, **kwargs):
        calls.append(kwargs)
        return real(self, image, trimap, *args, **kwargs)

    monkeypatch.setattr(engine_mod.Engine, "refine", spy)
    return calls
