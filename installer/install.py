#!/usr/bin/env python3
"""Set up Refine Matte from a checkout or release: venv, engine, optional extras.

    python3 installer/install.py              # create .venv and install the engine + tools
    python3 installer/install.py --sample     # ... then refine the bundled sample image
    python3 installer/install.py --test       # ... with test + eval extras, then run the test suite
    python3 installer/install.py --krita      # ... and install the Krita plugin bundle

Standard library only, so it runs with any Python >= 3.10 before anything is installed.
Re-running it is cheap: an up-to-date venv is reused.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_IMAGE = ROOT / "diffmatte" / "samples" / "sample_image.png"
SAMPLE_TRIMAP = ROOT / "diffmatte" / "samples" / "sample_trimap.png"
#: PyTorch's CPU-only wheels (no CUDA libraries, no triton): ~0.2 GB of torch instead of ~4 GB.
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_PINS = ["torch==2.14.1", "torchvision==0.29.1"]
#: pip options of every install the installer runs. ``--no-compile``: pip would write a ``.pyc``
#: for every module of every package (0.2 GB, most of them never imported: sympy's alone are
#: 49 MB); Python writes them on first import instead, and :func:`warm_up` does that at install
#: time for what the engine, the service and the editor import (~60 MB).
PIP_OPTIONS = ["--disable-pip-version-check", "-q", "--no-compile"]
#: What the refine, the service, the trimap tools and the editor import: compiled once at
#: install time, so the first run starts as fast as later ones.
WARM_MODULES = ("diffmatte.cli", "diffmatte.engine", "diffmatte.io.images", "diffmatte.finish.cutout",
                "diffmatte.prior.solve", "diffmatte.service.app", "diffmatte.service.server",
                "trimap", "trimap.rough", "trimap.scribbles",
                "refine_matte.editor.app")
#: Written into a venv this installer created: only such a venv is ever pruned (never a user's
#: own environment passed with ``--venv``).
CREATED_MARKER = ".refine-matte-created"
#: A tiny refine in the venv: the check that pruning left the engine working (a 64 x 64 image,
#: one step, default weights, CPU). Prints "ok" at its end.
ENGINE_CHECK = ("import numpy as np, diffmatte\n"
                "img = np.zeros((64, 64, 3), np.uint8); img[16:48, 16:48] = 200\n"
                "tri = np.zeros((64, 64), np.uint8); tri[12:52, 12:52] = 128; tri[24:40, 24:40] = 255\n"
                "a = diffmatte.load_engine(weights='default', device='cpu').refine(img, tri, steps=1, seed=0)\n"
                "assert a.shape == (64, 64) and bool(np.isfinite(a).all()), a.shape\n"
                "print('ok')\n")
#: The fallback check where the engine could not refine before pruning either (venv_size.py's
#: stand-in torch, whose version no torchvision here matches): torch imports and computes.
TORCH_CHECK = ("import torch\n"
               "x = torch.nn.functional.conv2d(torch.ones(1, 3, 8, 8), torch.ones(4, 3, 3, 3), padding=1)\n"
               "assert float(x[0, 0, 4, 4]) == 27.0\n"
               "print('ok')\n")


def project_dependencies(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The ``[project] dependencies`` of pyproject.toml (stdlib only: tomllib from Python 3.11,
    a small reader of that one array on 3.10)."""
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import ast
        import re
        block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M).group(1)
        return [ast.literal_eval(m) for m in re.findall(r'^\s*("[^"]*")', block, re.M)]
    return list(tomllib.loads(text)["project"]["dependencies"])


def warm_up(py: Path) -> None:
    """Import :data:`WARM_MODULES` once in the venv so Python writes their ``.pyc`` files (pip
    is told not to compile everything). A module that cannot be imported here (e.g. Qt without
    its system libraries) is skipped: it is compiled on its first use instead."""
    code = ("import importlib\n"
            f"for m in {WARM_MODULES!r}:\n"
            "    try:\n        importlib.import_module(m)\n"
            "    except Exception as e:\n        print(f'(not pre-compiled: {m}: {e})')\n")
    print("compiling the modules the engine imports ...", flush=True)
    try:
        subprocess.run([str(py), "-c", code], cwd=ROOT, check=False,
                       env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    except OSError as exc:  # an optimisation only: never fail the install for it
        print(f"(not pre-compiled: {exc})")


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def site_packages(venv_dir: Path) -> Path:
    found = sorted(venv_dir.glob("lib/python3*/site-packages"))
    return found[0] if found else venv_dir / "Lib" / "site-packages"


def torch_test_binaries(site: Path) -> list[Path]:
    """The C++ test executables (GoogleTest) a torch wheel may carry, which nothing at run time
    uses: ``torch/test/`` when it holds only compiled executables (no Python), and ``torch/bin``'s
    ``test_*`` / ``*Test`` executables. PyTorch's CPU-index build measured here (2.13.0+cpu) has
    86 MB in ``torch/test`` and 41 MB in ``torch/bin``; PyPI's 2.14.1 build has neither (then this
    is empty). Python files, ``protoc`` and ``torch_shm_manager`` (used by torch.multiprocessing)
    are never listed."""
    torch_dir = site / "torch"
    found: list[Path] = []
    test_dir = torch_dir / "test"
    if test_dir.is_dir() and not test_dir.is_symlink():
        files = [p for p in test_dir.rglob("*") if not p.is_dir()]
        if files and all(p.is_file() and not p.is_symlink() and _is_elf(p) for p in files):
            found.append(test_dir)
    bin_dir = torch_dir / "bin"
    if bin_dir.is_dir():
        found += sorted(p for p in bin_dir.iterdir()
                        if p.is_file() and not p.is_symlink() and (p.name.startswith("test_") or p.name.endswith("Test"))
                        and _is_elf(p))
    return found


def _tree_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return path.stat().st_size


def _check_passes(py: Path, code: str) -> bool:
    try:
        res = subprocess.run([str(py), "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                             env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0 and res.stdout.strip().endswith("ok")


def prune_torch_tests(venv_dir: Path, py: Path, say=print) -> int:
    """Delete :func:`torch_test_binaries` from a venv this installer created, and return the bytes
    freed. Only a venv with :data:`CREATED_MARKER` is touched. The files are moved aside first;
    then the venv must still pass the check it passed before (:data:`ENGINE_CHECK`, a tiny refine;
    where that failed before too, :data:`TORCH_CHECK`), else they are put back and nothing is
    deleted."""
    if not (venv_dir / CREATED_MARKER).exists():
        return 0
    site = site_packages(venv_dir)
    victims = torch_test_binaries(site)
    if not victims:
        return 0
    size = sum(_tree_bytes(p) for p in victims)
    check, what = ENGINE_CHECK, "a tiny refine"
    if not _check_passes(py, check):
        check, what = TORCH_CHECK, "torch imports and computes (the engine could not refine before either)"
        if not _check_passes(py, check):
            say("(torch's C++ test programs kept: torch does not run in this venv)")
            return 0
    aside = venv_dir / ".refine-matte-pruning"
    shutil.rmtree(aside, ignore_errors=True)
    moved = []
    try:
        for i, p in enumerate(victims):
            dest = aside / str(i)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, dest)
            moved.append((p, dest))
        ok = _check_passes(py, check)
    except OSError as exc:
        say(f"(torch's C++ test programs kept: {exc})")
        ok = False
    if not ok:
        for p, dest in reversed(moved):
            os.replace(dest, p)
        shutil.rmtree(aside, ignore_errors=True)
        if moved:
            say("(torch's C++ test programs kept: the check failed without them)")
        return 0
    shutil.rmtree(aside, ignore_errors=True)
    say(f"removed torch's C++ test programs ({size / 1e6:.0f} MB: "
        + ", ".join(p.relative_to(site).as_posix() for p in victims[:3]) + (", ..." if len(victims) > 3 else "")
        + f"); checked afterwards: {what}")
    return size


def nvidia_driver_present(which=shutil.which, exists=os.path.exists) -> bool:
    """Whether this machine has an NVIDIA driver: ``nvidia-smi`` on PATH (Linux, Windows) or
    the kernel driver's ``/proc/driver/nvidia`` (Linux). No GPU library is loaded to find out."""
    return bool(which("nvidia-smi")) or bool(exists("/proc/driver/nvidia"))


def choose_torch_index(explicit: str | None = None, platform: str | None = None,
                       has_nvidia: bool | None = None) -> tuple[str | None, str]:
    """(wheel index for torch, or None for PyPI's default build; why) for this machine.

    - ``--torch-index URL`` wins; ``--torch-index pypi`` forces PyPI's default build;
    - macOS: PyPI's build (it has no CUDA libraries anyway);
    - no NVIDIA driver: PyTorch's CPU-only index, so the venv is ~1 GB, not ~6 GB of
      CUDA libraries that cannot be used;
    - an NVIDIA driver: PyPI's build, which includes CUDA on Linux (on Windows PyPI's
      build is CPU-only: a CUDA one needs e.g. ``--torch-index .../whl/cu126``).
    """
    platform = sys.platform if platform is None else platform
    if explicit:
        if explicit.strip().lower() == "pypi":
            return None, "PyPI's default torch build (--torch-index pypi)"
        return explicit, f"torch from {explicit} (--torch-index)"
    if platform == "darwin":
        return None, "macOS: PyPI's torch (CPU / Apple GPU; no CUDA libraries)"
    if has_nvidia is None:
        has_nvidia = nvidia_driver_present()
    if not has_nvidia:
        return CPU_INDEX, ("no NVIDIA driver found (no nvidia-smi, no /proc/driver/nvidia): the CPU-only "
                           f"torch from {CPU_INDEX}; with a GPU later, re-run with --torch-index pypi")
    if platform.startswith("win"):
        return None, ("NVIDIA driver found, but PyPI's Windows torch is CPU-only: for the GPU re-run with "
                      "--torch-index https://download.pytorch.org/whl/cu126")
    return None, "NVIDIA driver found: PyPI's torch, which includes CUDA"


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd, **kw) -> None:
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def ensure_venv(venv_dir: Path, extras: str, torch_index: str | None, auto_index: bool = False) -> Path:
    py = venv_python(venv_dir)
    if not py.exists():
        print(f"creating virtual environment {venv_dir}")
        venv.EnvBuilder(with_pip=True).create(venv_dir)
        (venv_dir / CREATED_MARKER).write_text("created by installer/install.py: it may prune torch's test programs\n")
    # Reinstall only when the project definition or the requested extras changed.
    stamp = venv_dir / ".refine-matte-install"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode() +
                          (torch_index or "").encode()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == want:
        return py
    pip = [py, "-m", "pip", "install", *PIP_OPTIONS]
    if torch_index:
        # A GPU (or CPU-only) torch build from the PyTorch index, same pinned version;
        # installed first, so the project's own `torch==2.14.1` is already satisfied.
        try:
            run(pip + ["--index-url", torch_index, *TORCH_PINS])
        except subprocess.CalledProcessError:
            if not auto_index:
                raise
            print(f"warning: could not install torch from {torch_index}; falling back to PyPI's "
                  "default build (larger). Pass --torch-index to choose another index.", file=sys.stderr)
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    run(pip + ["-e", target])
    warm_up(py)
    prune_torch_tests(venv_dir, py)
    stamp.write_text(want)
    return py


def main(argv=None) -> int:
    if sys.version_info < (3, 10):
        print(f"Refine Matte needs Python >= 3.10 (this is {sys.version.split()[0]})", file=sys.stderr)
        return 2
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--venv", default=str(ROOT / ".venv"), help="virtual environment folder (default .venv)")
    ap.add_argument("--sample", action="store_true", help="refine the bundled sample image afterwards")
    ap.add_argument("--test", action="store_true",
                    help="install test and evaluation extras and run the test suite")
    ap.add_argument("--eval", action="store_true", help="also install the evaluation extras (pymatting)")
    ap.add_argument("--krita", action="store_true", help="also install the Krita plugin bundle")
    ap.add_argument("--sam", choices=("vit_b", "vit_l", "vit_h"), default=None,
                    help="also download that Segment Anything checkpoint (vit_b: 375 MB) to where the engine "
                         "looks for it, so the SAM trimap source works (same as the editor's Download button)")
    ap.add_argument("--torch-index", default=None,
                    help="PyTorch wheel index for a specific build, e.g. https://download.pytorch.org/whl/cu126 "
                         "(Windows/older-driver GPUs), https://download.pytorch.org/whl/cpu (small CPU-only) or "
                         "'pypi' (PyPI's default build). Default: the CPU-only index when no NVIDIA driver is "
                         "found, else PyPI's build (CUDA on Linux)")
    ap.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (with --test)")
    args = ap.parse_args(argv)

    # --test brings the eval extra too, so the pymatting baseline tests run instead of skipping.
    extras = ",".join(x for x, on in (("test", args.test), ("eval", args.eval or args.test)) if on)
    torch_index, why = choose_torch_index(args.torch_index)
    print(f"torch build: {why}", flush=True)
    py = ensure_venv(Path(args.venv), extras, torch_index, auto_index=not args.torch_index)
    if args.krita:
        run([sys.executable, ROOT / "installer" / "krita.py", "--engine-python", py])
    if args.sam:
        # <config dir>/sam is where trimap.find_checkpoint (and so the service) looks.
        dest = subprocess.run([str(py), "-c", "from trimap.sam import config_dir; print(config_dir() / 'sam')"],
                              check=True, capture_output=True, text=True).stdout.strip()
        run([py, "-m", "diffmatte", "download", "sam-" + args.sam.replace("_", "-"), "--dest", dest])
    if args.sample:
        out = ROOT / "out" / "sample_alpha.png"
        cutout = ROOT / "out" / "sample_cutout.png"
        # The CLI never creates an output folder (a typo in -o must not make directories);
        # this one is the installer's own.
        out.parent.mkdir(exist_ok=True)
        cmd = [py, "-m", "diffmatte", "refine", SAMPLE_IMAGE, "--trimap", SAMPLE_TRIMAP, "-o", out, "--rgba", cutout]
        print("+ " + " ".join(str(c) for c in cmd), flush=True)
        code = subprocess.run([str(c) for c in cmd]).returncode
        if code != 0:
            print(f"\nThe sample refine failed (exit {code}); the message above says why.", file=sys.stderr)
            return code
        print(f"\nDone. Alpha matte: {out}\nCut-out:      {cutout}")
    if args.test:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        return subprocess.run([str(py), "-m", "pytest", "-q", *args.pytest_args], cwd=ROOT, env=env).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
