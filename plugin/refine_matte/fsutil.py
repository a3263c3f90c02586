"""Atomic file writes for the plugin (standard library only, Python >= 3.8).

The plugin may not import diffmatte, so this is its own copy of
``diffmatte.io.fsutil.atomic_path`` (same behaviour): the docker's ``engine.json`` and
the editor's saved files go through it.
"""

import contextlib
import os
import tempfile
from typing import Iterator


@contextlib.contextmanager
def atomic_path(dest: str, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temp path beside ``dest``; on success it replaces ``dest`` in one step
    with the mode a normal write would give (mkstemp makes 0600 files), on error it is
    removed and ``dest`` is untouched."""
    folder = os.path.dirname(os.path.abspath(dest)) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(dest) + ".", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
