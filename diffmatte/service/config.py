"""Service discovery files: config directory, bearer token and ``service.json``.

Stdlib only. The config directory comes from the stdlib-only engine client
(``refine_matte.client.config_dir``): the client and the service are the two ends of one
discovery protocol, so they share the one rule (an import contract allows this module,
like ``batch/service_engine.py``, to use the client). ``trimap.sam`` keeps the only other
copy (trimap may import neither diffmatte nor the plugin); a test checks that all agree.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any, Dict, Optional

from refine_matte.client import config_dir as _client_config_dir

from ..io.fsutil import atomic_path

CONFIG_ENV = "REFINE_MATTE_CONFIG_DIR"
TOKEN_FILE = "token"
SERVICE_FILE = "service.json"
# secrets.token_urlsafe(32) gives 43 characters; anything shorter or with other
# characters was not written by us (a planted, guessable token) and is replaced.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43,256}")

log = logging.getLogger("diffmatte.service")


def config_dir() -> Path:
    """Return the platform config directory of Refine Matte (not created here)."""
    return Path(_client_config_dir())


def ensure_config_dir(path: Optional[Path] = None) -> Path:
    """Create the config directory (user-only on POSIX) and return it.

    An existing directory that others may read or write is tightened to 0700 (its
    token would otherwise be readable, or replaceable, by any local user); one that
    belongs to another user is refused.
    """
    path = Path(path) if path is not None else config_dir()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        info = path.stat()
        if info.st_uid != os.getuid():
            raise RuntimeError(f"the config directory {path} belongs to another user (uid "
                               f"{info.st_uid}); set {CONFIG_ENV} to a directory of your own")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            os.chmod(path, 0o700)
            log.warning("config directory %s had mode %o; tightened to 700", path, mode)
    return path


def _read_own_token(token_path: Path) -> str:
    """The token if ``token_path`` is a regular file of ours holding a valid one, else ''."""
    try:
        info = token_path.lstat()
    except FileNotFoundError:
        return ""
    if not stat.S_ISREG(info.st_mode) or (os.name == "posix" and info.st_uid != os.getuid()):
        log.warning("%s is not a regular file of this user; replacing it with a new token", token_path)
        return ""
    try:
        token = token_path.read_text(encoding="ascii").strip()
    except UnicodeDecodeError:
        token = "\x00"  # not ASCII: invalid, replaced below
    except OSError as exc:
        raise RuntimeError(f"cannot read the service token {token_path}: {exc}") from exc
    if token and not TOKEN_PATTERN.fullmatch(token):
        log.warning("the token in %s is not one this service wrote (too short or odd characters); "
                    "replacing it with a new one", token_path)
        return ""
    return token


def load_or_create_token(path: Optional[Path] = None) -> str:
    """Return the service token, creating it (mode 0600) on first start.

    An existing token file readable by others is tightened to 0600 rather than
    trusted as is, because any local user could otherwise drive the service.
    """
    directory = ensure_config_dir(path)
    token_path = directory / TOKEN_FILE
    replace = token_path.exists() or token_path.is_symlink()
    token = _read_own_token(token_path)
    if token:
        if os.name == "posix":
            mode = stat.S_IMODE(token_path.stat().st_mode)
            if mode & 0o077:
                os.chmod(token_path, 0o600)
        return token
    token = secrets.token_urlsafe(32)
    # Not io.fsutil.atomic_path: the token is created 0600 from the first byte, and a new
    # one is hard-linked into place (fails if it exists), not renamed over it.
    # O_EXCL: if two services start at once, only one token wins; the loser re-reads it.
    tmp = directory / f".{TOKEN_FILE}.{os.getpid()}.tmp"
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(token + "\n")
        if os.name == "posix":
            os.chmod(tmp, 0o600)
        if replace:
            os.replace(tmp, token_path)  # an invalid token file: ours to overwrite
            return token
        try:
            os.link(tmp, token_path)
        except FileExistsError:
            return _read_own_token(token_path) or token_path.read_text(encoding="ascii").strip()
        except OSError:
            # Filesystems without hard links: fall back to a plain atomic rename.
            os.replace(tmp, token_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return token


def write_service_file(info: Dict[str, Any], path: Optional[Path] = None) -> Path:
    """Atomically write ``service.json`` (host, port, pid, version)."""
    directory = ensure_config_dir(path)
    target = directory / SERVICE_FILE
    with atomic_path(target, mode=0o600) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    return target


def read_service_file(path: Optional[Path] = None) -> Optional[Dict[str, Any]]:
    """Return the parsed ``service.json``, or None if absent or unreadable."""
    target = (Path(path) if path is not None else config_dir()) / SERVICE_FILE
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_service_file(pid: int, path: Optional[Path] = None) -> None:
    """Remove ``service.json`` if it still describes the process ``pid``.

    Another service may have started since and taken the file over; leave it then.
    """
    target = (Path(path) if path is not None else config_dir()) / SERVICE_FILE
    data = read_service_file(path)
    if data is not None and data.get("pid") == pid:
        try:
            target.unlink()
        except OSError:
            pass
