"""Atomic file writing: a crash or a bad input never leaves a half-written or
overwritten file behind."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Union


def public_mode(path: Union[str, os.PathLike]) -> None:
    """mkstemp creates 0600 files; give outputs the mode a normal write would (umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_path(dest: Union[str, os.PathLike], suffix: str = ".tmp", mode: Optional[int] = None) -> Iterator[str]:
    """Yield a temp path beside ``dest``; on success it replaces ``dest`` in one step
    (with normal permissions, or ``mode`` when given), on error it is removed and ``dest``
    is untouched.

    The engine's one atomic write; the plugin, which may not import diffmatte, has its own
    (``refine_matte.fsutil``), and so does the stand-alone ``installer/krita.py``."""
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + target.name + ".", suffix=suffix, dir=str(target.parent))
    os.close(fd)
    try:
        yield tmp
        if mode is None:
            public_mode(tmp)
        else:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
