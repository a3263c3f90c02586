"""Where the engine service is and how one is started: the config folder's files.

Standard library only (Python >= 3.8), like :mod:`refine_matte.client`, which uses it:

- ``config_dir()``: the platform config folder (the service uses the same rule);
- ``service.json`` (``{"host", "port", "pid", "version"}``) and ``token``, which a running
  service publishes there: :func:`read_published`;
- ``engine.json`` beside this package (the engine interpreter ``installer/krita.py``
  recorded) or ``REFINE_MATTE_PYTHON``: :func:`engine_python`;
- starting ``python -m diffmatte serve`` as a detached child whose output goes to
  ``service.log``: :func:`service_command`, :func:`spawn_service`, :func:`log_tail`.
"""

import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

CONFIG_ENV = "REFINE_MATTE_CONFIG_DIR"
PYTHON_ENV = "REFINE_MATTE_PYTHON"
#: written next to this module by ``installer/krita.py``: {"python": engine interpreter}
ENGINE_FILE = "engine.json"
TOKEN_FILE = "token"
SERVICE_FILE = "service.json"
LOG_FILE = "service.log"


def config_dir() -> str:
    """Platform config directory of Refine Matte (same rules as the service)."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return override
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
        return os.path.join(base, "Refine Matte")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "Refine Matte")
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return os.path.join(base, "refine-matte")


def engine_python(package_dir: Optional[str] = None) -> Optional[str]:
    """The engine environment's interpreter for starting ``diffmatte serve``, or None.

    ``REFINE_MATTE_PYTHON`` wins; else the interpreter that ``installer/krita.py``
    recorded in ``engine.json`` beside this module, if that file still exists.  A
    host's embedded Python (Krita's) cannot run the engine itself, so None means
    "only connect to a service that is already running".
    """
    forced = os.environ.get(PYTHON_ENV, "").strip()
    if forced:
        return forced
    path = os.path.join(package_dir or os.path.dirname(os.path.abspath(__file__)), ENGINE_FILE)
    try:
        with open(path, "r", encoding="utf-8") as fh:
            python = json.load(fh).get("python")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(python, str) and python and os.path.isfile(python):
        return python
    return None


class NotPublished(Exception):
    """No usable ``service.json`` or token in the config folder (the message says which)."""


def read_published(directory: str) -> Tuple[str, int, str]:
    """``(host, port, token)`` of the service published in ``directory``."""
    try:
        with open(os.path.join(directory, SERVICE_FILE), "r", encoding="utf-8") as fh:
            data = json.load(fh)
        host, port = str(data["host"]), int(data["port"])
    except (OSError, ValueError, KeyError, TypeError):
        raise NotPublished("no running engine service found in %s" % directory) from None
    try:
        with open(os.path.join(directory, TOKEN_FILE), "r", encoding="ascii") as fh:
            token = fh.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise NotPublished("cannot read the service token in %s: %s" % (directory, exc)) from None
    return host, port, token


def service_command(python: Optional[str], args: Sequence[str], config: Optional[str],
                    command: Optional[Sequence[str]] = None) -> Tuple[List[str], Dict[str, str]]:
    """The command line and environment that start a service (see EngineClient.ensure_running)."""
    foreign = command is not None
    if command is None:
        interpreter = python or os.environ.get(PYTHON_ENV) or sys.executable
        foreign = interpreter != sys.executable
        command = [interpreter, "-m", "diffmatte", "serve"]
    argv = list(command) + list(args)
    env = dict(os.environ)
    if foreign:
        # A host application's own Python settings must not leak into another
        # environment's interpreter (Krita sets them for its embedded Python).
        env.pop("PYTHONHOME", None)
        env.pop("PYTHONPATH", None)
    if config:
        env[CONFIG_ENV] = config
    return argv, env


class StartFailed(Exception):
    """The service's process could not be started (the OS's reason is the message)."""


def spawn_service(argv: List[str], env: Dict[str, str], directory: str) -> "Tuple[subprocess.Popen, str]":
    """Start ``argv`` detached from the host (its output appended to ``service.log`` in
    ``directory``); returns the process and the log's path. Raises StartFailed when the
    process cannot start (OSError when the folder or its log cannot be written)."""
    os.makedirs(directory, exist_ok=True)
    log_path = os.path.join(directory, LOG_FILE)
    kwargs: Dict[str, Any] = {}
    if os.name == "posix":
        kwargs["start_new_session"] = True  # a Ctrl-C in the host must not kill the engine
    elif hasattr(subprocess, "CREATE_NO_WINDOW"):
        kwargs["creationflags"] = subprocess.CREATE_NO_WINDOW
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, **kwargs)
        except OSError as exc:
            raise StartFailed(str(exc)) from None
    return proc, log_path


def log_tail(path: str, lines: int = 20) -> str:
    """The last ``lines`` lines of a log (of its last 8 KiB), for an error message."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no log at %s)" % path
    return "\n".join(text.splitlines()[-lines:])
