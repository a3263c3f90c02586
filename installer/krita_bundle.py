"""The Krita plugin bundle: ``plugin/refine_matte/`` plus ``plugin/refine_matte.desktop``;
finding and checking it, its version, and the release zip for Krita's own importer
(*Tools > Scripts > Import Python Plugin from File*). ``krita.py`` installs it.

Standard library only and Python >= 3.8, like krita.py (which loads this file by path).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Tuple

PLUGIN = "refine_matte"
DESKTOP = PLUGIN + ".desktop"
ENGINE_FILE = "engine.json"      # read by refine_matte.client.engine_python()
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".mypy_cache", ".DS_Store")

#: Not shipped in the release zip (paths relative to the package): the engine record of a
#: developer's install. The test doubles and the screenshot tool live under tests/.
ZIP_EXCLUDE = (ENGINE_FILE,)

Say = Callable[[str], None]


class BundleError(Exception):
    """The plugin bundle is missing or malformed."""


def find_bundle(source: Path) -> Tuple[Path, Path]:
    """Return (package folder, .desktop file) of the bundle under ``source``."""
    package, desktop = source / PLUGIN, source / DESKTOP
    missing = [str(p) for p in (package / "__init__.py", desktop) if not p.is_file()]
    if missing:
        raise BundleError("the Krita plugin bundle is incomplete; missing: " + ", ".join(missing)
                          + ". Run this from a full Refine Matte checkout or release, or pass --source.")
    text = desktop.read_text(encoding="utf-8", errors="replace")
    if "Krita/PythonPlugin" not in text or not re.search(r"^X-KDE-Library\s*=\s*%s\s*$" % PLUGIN, text, re.M):
        raise BundleError(f"{desktop} is not a Krita Python plugin description for '{PLUGIN}' "
                          "(needs ServiceTypes=Krita/PythonPlugin and X-KDE-Library=refine_matte)")
    return package, desktop


def bundle_version(package: Path) -> str:
    """``__version__`` of the bundled package, read without importing it."""
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""",
                      (package / "__init__.py").read_text(encoding="utf-8", errors="replace"), re.M)
    return match.group(1) if match else "unknown"


def build_zip(source: Path, dest: Path, *, say: Say = print) -> Path:
    """Write the release zip for Krita's *Import Python Plugin from File*.

    Layout, as Krita's importer looks for it: ``refine_matte.desktop`` at the top and
    the ``refine_matte/`` package beside it, with an entry for every folder (the
    importer finds a plugin's package by its folder entry ``refine_matte/`` holding an
    ``__init__.py``). Caches and a recorded ``engine.json`` are left out (the test
    doubles and the screenshot tool live under tests/, not in the package). The zip is
    written to a temporary file and renamed into place.
    """
    package, desktop = find_bundle(Path(source))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + dest.name + ".", dir=str(dest.parent))
    os.close(fd)
    count = 0
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(desktop, DESKTOP)
            for folder, dirs, files in os.walk(package):
                dirs[:] = sorted(d for d in dirs if not IGNORE(folder, [d]))
                rel = Path(folder).relative_to(package)
                arc_dir = (Path(PLUGIN) / rel).as_posix() + "/"
                entry = zipfile.ZipInfo(arc_dir)  # the folder entry Krita's importer looks for
                entry.external_attr = (0o40755 << 16) | 0x10
                zf.writestr(entry, b"")
                for name in sorted(files):
                    rel_file = (rel / name).as_posix()
                    if name in IGNORE(folder, [name]) or rel_file in ZIP_EXCLUDE:
                        continue
                    zf.write(os.path.join(folder, name), arc_dir + name)
                    count += 1
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    say(f"wrote {dest}: Refine Matte {bundle_version(package)} for Krita ({count} files). In Krita: "
        "Tools > Scripts > Import Python Plugin from File..., pick this zip, enable it, restart Krita.")
    return dest

