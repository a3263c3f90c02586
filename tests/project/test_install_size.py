"""#24: the default install stays small (<= 1.5 GB venv on a machine without a GPU).

The size is measured with ``installer/venv_size.py`` (README, "GPU, CPU and the install size");
these tests keep the causes of the last cuts from coming back without a new measurement:
the default dependency set, pip's ``--no-compile`` with the installer's warm-up, an engine
that imports no optional extra, and a clear message where an optional extra is missing.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

_spec = importlib.util.spec_from_file_location("refine_matte_installer_size", ROOT / "installer" / "install.py")
install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install)

#: The default dependencies as measured (1.37 GB with torch's test programs removed, 2026-12-07; README). Adding one is fine, but re-measure first:
#: ``python3 installer/venv_size.py --torch-wheel ...`` and update the README's size and this list.
MEASURED_DEFAULTS = {"torch", "torchvision", "timm", "numpy", "pillow", "safetensors", "scipy",
                     "segment-anything", "tqdm", "fastapi", "uvicorn", "pyqt6", "psd-tools", "tifffile",
                     "opencv-python-headless", "pykdtree"}
#: Only benches, evaluation, training, tests or the random walker (no front end) use these: extras.
NEVER_DEFAULT = {"scikit-image", "pymatting", "numba", "llvmlite", "ray", "pytest", "pytest-qt", "pyqt5",
                 "schemathesis", "ruff", "import-linter", "mypy", "matplotlib", "opencv-python"}


def _name(req: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9._-]+)", req).group(1)).lower()


def test_the_default_dependencies_are_the_measured_set():
    names = {_name(r) for r in install.project_dependencies()}
    assert not names & NEVER_DEFAULT, f"back in the default install: {sorted(names & NEVER_DEFAULT)}"
    assert names == MEASURED_DEFAULTS, (
        f"default dependencies changed (added {sorted(names - MEASURED_DEFAULTS)}, removed "
        f"{sorted(MEASURED_DEFAULTS - names)}): measure the venv with installer/venv_size.py, "
        "update README's size table and MEASURED_DEFAULTS")


def test_the_moved_packages_are_optional_extras():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "pymatting" in {_name(r) for r in extras["eval"]}
    assert "ray" in {_name(r) for r in extras["ray"]}
    assert "scikit-image" in {_name(r) for r in extras["walker"]}
    # `installer/install.py --test` installs the test extra: the walker's tests and the default
    # model's "chelsea" photo need scikit-image.
    assert "scikit-image" in {_name(r) for r in extras["test"]}
    assert {"pytest", "ruff", "mypy"} <= {_name(r) for r in extras["test"]}


def test_the_dependency_reader_works_without_tomllib(monkeypatch):
    """install.py must run on Python 3.10, which has no tomllib."""
    want = install.project_dependencies()
    monkeypatch.setitem(sys.modules, "tomllib", None)  # import tomllib -> ImportError
    assert install.project_dependencies() == want
    assert want[0].startswith("torch==")


def test_pip_compiles_nothing_and_the_installer_warms_up_what_the_engine_imports(tmp_path, monkeypatch):
    assert "--no-compile" in install.PIP_OPTIONS
    calls, warmed = [], []
    monkeypatch.setattr(install, "run", lambda cmd, **kw: calls.append([str(c) for c in cmd]))
    monkeypatch.setattr(install, "warm_up", lambda py: warmed.append(py))
    venv = tmp_path / "venv"
    py = install.venv_python(venv)
    py.parent.mkdir(parents=True)
    py.write_text("")
    install.ensure_venv(venv, "", None)
    assert calls and all("--no-compile" in c for c in calls)
    assert warmed == [py]
    for m in ("diffmatte.engine", "diffmatte.service.app", "trimap.rough", "refine_matte.editor.app"):
        assert m in install.WARM_MODULES


def test_the_warm_up_never_fails_the_install(tmp_path, capsys):
    install.warm_up(tmp_path / "no-such-python")
    assert "not pre-compiled" in capsys.readouterr().out


def test_the_engine_imports_no_optional_extra():
    """The refine, the CLI and the service run on the default install: none of them imports a
    package that only an extra installs (timm, a card dependency, is a default one)."""
    code = ("import sys, diffmatte.engine, diffmatte.modeling.vit, diffmatte.cli, diffmatte.service.app\n"
            "import trimap.rough, trimap.scribbles\n"
            "print(sorted(m for m in ('pymatting', 'ray', 'pytest', 'skimage') if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugin")]))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


def test_a_missing_eval_extra_says_which_extra_and_how(monkeypatch):
    from diffmatte.evaluate import baselines

    monkeypatch.setattr(baselines, "pymatting_available", lambda: False)
    with pytest.raises(ValueError) as err:
        baselines.get_baseline("cf")
    msg = str(err.value)
    assert "pymatting" in msg and "'eval' extra" in msg
    assert "python3 installer/install.py --eval" in msg and "pip install -e '.[eval]'" in msg


def test_a_missing_ray_extra_says_which_extra_and_how(monkeypatch):
    from diffmatte.batch import ray_runner

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ValueError, match=r"--ray needs Ray, from the optional 'ray' extra.*\[ray\]"):
        ray_runner._import_ray()


def test_a_missing_walker_extra_says_which_extra_and_how(monkeypatch):
    """scikit-image is the optional 'walker' extra: trimap.from_scribbles without it names the
    extra and the command (worded as diffmatte.errors.missing_extra; trimap cannot import it)."""
    import numpy as np

    import trimap
    from diffmatte.errors import missing_extra
    from trimap import scribbles

    assert scribbles.MISSING_WALKER.startswith(
        missing_extra("trimap.from_scribbles (the random walker)", "scikit-image", "walker"))
    monkeypatch.setitem(sys.modules, "skimage.segmentation", None)  # import -> ImportError
    img = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    fg, bg = np.zeros((20, 30), bool), np.zeros((20, 30), bool)
    fg[5:15, 2], bg[5:15, 27] = True, True
    with pytest.raises(ImportError) as err:
        trimap.from_scribbles(img, fg, bg)
    msg = str(err.value)
    assert "scikit-image" in msg and "'walker' extra" in msg
    assert ".venv/bin/pip install -e '.[walker]'" in msg and "pip install 'refine-matte[walker]'" in msg
    # The strokes route every front end uses needs no scikit-image.
    assert trimap.from_region(img, None, fg=fg, bg=bg).shape == (20, 30)
