#!/usr/bin/env python3
"""Measure the venv that ``python3 installer/install.py --sample`` builds on a machine without a GPU.

    python3 installer/venv_size.py --torch-wheel /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
    python3 installer/venv_size.py      # the same with PyPI's torch (CUDA), as with an NVIDIA driver

The real install takes torch from PyTorch's CPU index (``install.py``'s ``CPU_INDEX``). Where
that index cannot be reached (this project's build machine), a CPU-only torch wheel on disk
stands in for it: this script builds a venv in a temporary folder the way ``install.py`` does
(pip with its defaults and the installer's own pip options, then the project in editable
mode), with exactly the packages pip picks for the project's default dependencies (``pip
install --dry-run --report``), except that the wheel replaces PyPI's torch and its CUDA
libraries (triton, ``nvidia-*``, ``cuda-*``); every package is installed ``--no-deps`` (the
stand-in is another torch version than torchvision's pin, so the pinned torchvision is
installed but cannot load: timm imports it, so with the stand-in the engine cannot run). Then
the installer's warm-up and its removal of torch's C++ test programs (``install.py``'s
``prune_torch_tests``), then a refine of the bundled sample (so the ``__pycache__`` files a
first run writes are counted); it prints ``du -sb`` of the venv and its largest entries, and
deletes the folder (``--keep`` keeps it).

With the stand-in, where the sample refine cannot run, ``--pyc-from PY`` counts a first run's
``__pycache__`` files instead: it lists the site-packages modules that the warm-up modules and
a sample refine import in PY (a working engine venv, e.g. the checkout's ``.venv``) and
compiles those that the measured venv has (``py_compile``, the files an import writes).

Standard library only.
"""
from __future__ import annotations

import argparse
import os
import json
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import install  # noqa: E402  (the installer's own pip options and dependency list)


def du_bytes(path: Path) -> int:
    """``du -sb``: the apparent size of every file under ``path`` (links not followed)."""
    out = subprocess.run(["du", "-sb", str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def is_cuda_torch(name: str) -> bool:
    """PyPI's torch and what only its CUDA build needs (the CPU wheel needs none of these)."""
    n = re.sub(r"[-_.]+", "-", name).lower()
    return n == "torch" or n == "triton" or n.startswith(("nvidia-", "cuda-"))


#: Run in the reference venv: import the warm-up modules, refine the sample, print the
#: site-packages-relative paths of every module then loaded.
_LIST_MODULES = r"""
import importlib, sys, sysconfig, os
for m in sys.argv[1].split(","):
    try:
        importlib.import_module(m)
    except Exception as e:
        print("# not imported: %s: %s" % (m, e), file=sys.stderr)
from diffmatte import cli
code = cli.main(["refine", sys.argv[2], "--trimap", sys.argv[3], "-o", sys.argv[4], "--rgba", sys.argv[5]])
site = os.path.realpath(sysconfig.get_paths()["purelib"])
for mod in list(sys.modules.values()):
    f = getattr(mod, "__file__", None) or ""
    if f.endswith(".py") and os.path.realpath(f).startswith(site + os.sep):
        print(os.path.relpath(os.path.realpath(f), site))
"""

_COMPILE = r"""
import py_compile, sys, sysconfig, os
site = sysconfig.get_paths()["purelib"]
n = 0
for rel in open(sys.argv[1]).read().split():
    path = os.path.join(site, rel)
    if os.path.isfile(path):
        try:
            py_compile.compile(path, doraise=True)
            n += 1
        except py_compile.PyCompileError as e:
            print(e, file=sys.stderr)
print(n)
"""


def compile_first_run_modules(ref_py: Path, py: Path, tmp: Path) -> int:
    """``--pyc-from``: compile in ``py``'s site-packages what a first run imports in ``ref_py``."""
    out = tmp / "ref-out"
    out.mkdir(exist_ok=True)
    listed = subprocess.run([str(ref_py), "-c", _LIST_MODULES, ",".join(install.WARM_MODULES),
                             str(install.SAMPLE_IMAGE), str(install.SAMPLE_TRIMAP), str(out / "a.png"),
                             str(out / "c.png")], cwd=install.ROOT, check=True, capture_output=True, text=True,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}).stdout
    names = tmp / "modules.txt"
    names.write_text(listed)
    print(f"{len(listed.split())} site-packages modules imported by a first run in {ref_py}")
    done = subprocess.run([str(py), "-c", _COMPILE, str(names)], check=True, capture_output=True, text=True)
    return int(done.stdout.split()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-wheel", default=None,
                    help="a CPU-only torch wheel on disk (stands in for the CPU index); without it, the venv a "
                         "machine with an NVIDIA driver gets (PyPI's torch with its CUDA libraries)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary venv (its path is printed)")
    ap.add_argument("--no-sample", action="store_true", help="measure without the sample refine")
    ap.add_argument("--pyc-from", metavar="PY", default=None,
                    help="instead of the sample refine (which the stand-in torch cannot run): compile in the "
                         "measured venv the site-packages modules that the warm-up modules and a sample refine "
                         "import in PY, a working engine venv's python")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="rm-venv-size-"))
    venv_dir = tmp / "venv"
    try:
        venv.EnvBuilder(with_pip=True).create(venv_dir)
        (venv_dir / install.CREATED_MARKER).write_text("created by installer/venv_size.py\n")
        py = install.venv_python(venv_dir)
        pip = [py, "-m", "pip", "install", *install.PIP_OPTIONS]
        # The exact packages pip picks for the project's default dependencies ...
        report = tmp / "report.json"
        install.run(pip + ["--dry-run", "--ignore-installed", "--report", report, *install.project_dependencies()])
        picked = [f"{i['metadata']['name']}=={i['metadata']['version']}"
                  for i in json.loads(report.read_text())["install"]]
        # ... less PyPI's torch and the CUDA libraries it brings, which the CPU wheel replaces.
        if args.torch_wheel:
            keep = [p for p in picked if not is_cuda_torch(p.split("==")[0])]
            print(f"dropped for the CPU wheel: {sorted(set(picked) - set(keep))}")
            install.run(pip + ["--no-deps", args.torch_wheel, *keep])
        else:
            install.run(pip + ["--no-deps", *picked])
        install.run(pip + ["--no-deps", "-e", str(install.ROOT)])
        install.warm_up(py)
        install.prune_torch_tests(venv_dir, py)
        after_install = du_bytes(venv_dir)
        if args.pyc_from:
            compiled = compile_first_run_modules(Path(args.pyc_from), py, tmp)
            print(f"compiled {compiled} modules that a first run imports in {args.pyc_from}")
        elif not args.no_sample:
            out = tmp / "out"
            out.mkdir()
            install.run([py, "-m", "diffmatte", "refine", install.SAMPLE_IMAGE, "--trimap", install.SAMPLE_TRIMAP,
                         "-o", out / "alpha.png", "--rgba", out / "cutout.png"])
        size = du_bytes(venv_dir)
        subprocess.run([py, "-m", "pip", "list", "--format=freeze"], check=False)
        site = next(venv_dir.glob("lib/python3*/site-packages"), None) or venv_dir / "Lib" / "site-packages"
        rows = sorted(((du_bytes(p), p.name) for p in site.iterdir()), reverse=True)[:15]
        print("\nlargest entries of site-packages (du -sb):")
        for b, name in rows:
            print(f"  {b / 1e6:8.1f} MB  {name}")
        print(f"\nvenv after install:        {after_install / 1e9:.3f} GB ({after_install / 2**30:.3f} GiB)")
        if args.pyc_from:
            print(f"venv with a first run's .pyc: {size / 1e9:.3f} GB ({size / 2**30:.3f} GiB)")
        elif not args.no_sample:
            print(f"venv after the sample run: {size / 1e9:.3f} GB ({size / 2**30:.3f} GiB)")
        print(f"(du -sb {venv_dir})")
        return 0
    finally:
        if args.keep:
            print(f"kept: {venv_dir}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
