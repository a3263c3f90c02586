"""Static checks as tests (issue #26): ruff, the import contracts (import-linter) and mypy,
configured in pyproject.toml. CI installs the `test` extra and sets
REFINE_MATTE_REQUIRE_TOOLS=1 (.ci/run), so a missing tool fails there; a developer venv
without them skips these three."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from conftest import ROOT



def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m module args`` from the repository root (``-c`` for import-linter, which
    has no ``__main__``)."""
    package = module.split(".")[0]
    if importlib.util.find_spec(package) is None:
        if os.environ.get("REFINE_MATTE_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{package} is not installed (pip install -e '.[test]')")
        pytest.skip(f"{package} is not installed (it comes with the `test` extra)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugin")]))
    if module == "importlinter":
        cmd = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; "
               "sys.argv[0] = 'lint-imports'; sys.exit(c())", *args]
    else:
        cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _check(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]


def test_ruff_finds_nothing():
    _check(_run("ruff", "check", "."))


def test_import_contracts_are_kept():
    # layers, the network without the prior, diffmatte without the plugin, no circles
    _check(_run("importlinter", "--no-cache"))


def test_mypy_passes_on_diffmatte_and_trimap():
    _check(_run("mypy"))
