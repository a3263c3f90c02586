"""``diffmatte serve`` as a real child process: discovery files, token, spawning from the
client, graceful shutdown on SIGTERM, port release, and the client on Python 3.8."""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffmatte.service import config as cfgfiles
from diffmatte.service.server import is_loopback, warn_if_exposed
from refine_matte import client as client_mod
from refine_matte.client import EngineClient, EngineNotRunning
from conftest import ROOT

POSIX = os.name == "posix"


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def sample(h: int = 32, w: int = 40):
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    tri = np.zeros((h, w), np.uint8)
    tri[8:24, :] = 128
    tri[12:20, 10:30] = 255
    return png(image), png(tri)


def child_env(config_dir: Path) -> dict:
    env = dict(os.environ)
    env["REFINE_MATTE_CONFIG_DIR"] = str(config_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugin"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def serve_args(weights: Path, *extra: str) -> list:
    return ["--weights", str(weights), "--device", "cpu", "--log-level", "warning", *extra]


def wait_for_service(config_dir: Path, proc: subprocess.Popen, timeout: float = 60.0) -> EngineClient:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else proc.returncode
        try:
            return EngineClient.discover(str(config_dir))
        except EngineNotRunning:
            time.sleep(0.1)
    raise AssertionError("the service did not come up")


def port_is_free(port: int) -> bool:
    """Nothing listens on ``port`` any more and a restarted service could bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the service does: connections the server closed may sit in TIME_WAIT.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
    return True


@pytest.fixture()
def config_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cfg"
    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(path))
    return path


# -- discovery files ------------------------------------------------------------------------
def test_token_is_created_once_user_only(config_dir):
    token = cfgfiles.load_or_create_token()
    assert len(token) >= 32
    assert cfgfiles.load_or_create_token() == token
    path = config_dir / "token"
    if POSIX:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
        os.chmod(path, 0o644)  # someone loosened it: the service tightens it again
        assert cfgfiles.load_or_create_token() == token
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(not POSIX, reason="POSIX modes")
def test_a_world_writable_config_dir_is_tightened(config_dir):
    config_dir.mkdir(mode=0o777)
    os.chmod(config_dir, 0o777)
    cfgfiles.load_or_create_token()
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700


@pytest.mark.parametrize("planted", ["abc", "x" * 42, "a b c d e f g h i j k l m n o p q r s t u v w x y z 1",
                                     "\u00e9" * 50, ""])
def test_a_planted_or_short_token_is_replaced(config_dir, planted):
    config_dir.mkdir(mode=0o700)
    (config_dir / "token").write_text(planted, encoding="utf-8")
    token = cfgfiles.load_or_create_token()
    assert token != planted.strip() and cfgfiles.TOKEN_PATTERN.fullmatch(token)
    assert (config_dir / "token").read_text(encoding="ascii").strip() == token
    assert cfgfiles.load_or_create_token() == token  # stable from now on
    assert [p.name for p in config_dir.iterdir()] == ["token"]  # no temp file left


@pytest.mark.skipif(not POSIX, reason="symlinks")
def test_a_symlinked_token_is_not_followed(config_dir, tmp_path):
    config_dir.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("y" * 50, encoding="ascii")
    (config_dir / "token").symlink_to(elsewhere)
    token = cfgfiles.load_or_create_token()
    assert token != "y" * 50 and not (config_dir / "token").is_symlink()
    assert elsewhere.read_text(encoding="ascii") == "y" * 50  # the target is left alone


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
@pytest.mark.parametrize("override", [None, "/tmp/rm-cfg"])
@pytest.mark.parametrize("empty", [False, True])
def test_client_service_and_trimap_agree_on_the_config_dir(monkeypatch, tmp_path, platform, override, empty):
    """The rule has two implementations (the client's, which the service uses, and
    trimap.sam's: trimap may import neither); they must agree, also on empty variables."""
    from trimap.sam import config_dir as trimap_config_dir

    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("APPDATA", "" if empty else str(tmp_path / "roaming"))
    monkeypatch.setenv("XDG_CONFIG_HOME", "" if empty else str(tmp_path / "xdg"))
    if override:
        monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", override)
    else:
        monkeypatch.delenv("REFINE_MATTE_CONFIG_DIR", raising=False)
    assert Path(client_mod.config_dir()) == cfgfiles.config_dir() == trimap_config_dir()
    if override:
        assert cfgfiles.config_dir() == Path(override)
    elif empty:
        assert cfgfiles.config_dir().is_relative_to(tmp_path)


def test_non_loopback_bind_is_announced_loudly(capsys):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    warn_if_exposed("127.0.0.1")
    assert capsys.readouterr().err == ""
    warn_if_exposed("0.0.0.0")
    err = capsys.readouterr().err
    assert "WARNING" in err and "NOT to loopback" in err


def test_discover_without_a_service(config_dir):
    with pytest.raises(EngineNotRunning):
        EngineClient.discover()
    # A stale service.json (process gone, port closed) is not a running service.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    cfgfiles.load_or_create_token()
    cfgfiles.write_service_file({"host": "127.0.0.1", "port": dead_port, "pid": 1, "version": "0"})
    with pytest.raises(EngineNotRunning):
        EngineClient.discover()


# -- the real process ----------------------------------------------------------------------------
@pytest.mark.skipif(not POSIX, reason="uses SIGTERM")
def test_spawned_service_publishes_itself_and_shuts_down_gracefully(tiny_weights, config_dir):
    # ensure_running spawns `python -m diffmatte serve` (the documented command).
    client = EngineClient.ensure_running(python=sys.executable, timeout=120, config=str(config_dir),
                                         args=serve_args(tiny_weights, "--shutdown-grace", "0.5"))
    proc = client.process
    try:
        assert proc is not None
        published = json.loads((config_dir / "service.json").read_text())
        assert published["pid"] == proc.pid and published["host"] == "127.0.0.1"
        assert published["port"] == client.port
        assert stat.S_IMODE((config_dir / "token").stat().st_mode) == 0o600
        info = client.info()  # answers at once, while the model may still be loading
        assert info["pid"] == proc.pid
        deadline = time.monotonic() + 120
        while client.info()["engine"].get("loading") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.info()["engine"]["variant"] == "tiny"

        # A second front end finds the running service instead of spawning another.
        again = EngineClient.ensure_running(python=sys.executable, config=str(config_dir),
                                            args=serve_args(tiny_weights))
        assert again.process is None and again.port == client.port
        image, tri = sample()
        assert again.refine(image, tri, steps=2)[:4] == b"\x89PNG"
        # A second service on the same config dir refuses to start.
        second = subprocess.run([sys.executable, "-m", "diffmatte.service", *serve_args(tiny_weights)],
                                env=child_env(config_dir), capture_output=True, timeout=60)
        assert second.returncode == 3 and b"already runs" in second.stderr

        # SIGTERM while a long job runs: it is cancelled after the grace period,
        # its stream ends, the process exits and the port is released.
        job = client.submit_refine(image, tri, steps=1000, preview=False)
        events = client.events(job)
        while next(events)["type"] != "progress":
            pass
        proc.send_signal(signal.SIGTERM)
        last = [e["type"] for e in events][-1]
        assert last == "cancelled"
        proc.wait(timeout=30)
        assert not (config_dir / "service.json").exists()
        assert port_is_free(client.port)
        with pytest.raises(EngineNotRunning):
            EngineClient.discover(str(config_dir))
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.skipif(not POSIX, reason="uses SIGTERM")
def test_shutdown_lets_a_running_job_finish_within_grace(tiny_weights, config_dir):
    proc = subprocess.Popen([sys.executable, "-m", "diffmatte.service",  # the standalone entry point
                             *serve_args(tiny_weights, "--shutdown-grace", "60")],
                            env=child_env(config_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = wait_for_service(config_dir, proc)
        image, tri = sample()
        # 150 steps: the running job must still be running when SIGTERM is handled, or the
        # queued one starts and finishes too (seen under a loaded full-suite run with 25).
        job = client.submit_refine(image, tri, steps=150, preview=False)
        queued = client.submit_refine(image, tri, steps=25, preview=False)
        events = client.events(job)
        while next(events)["type"] != "progress":
            pass
        # Follow the queued job before the signal: once shutdown starts the
        # service takes no new connections, only the open streams run to the end.
        queued_events = client.events(queued)
        assert next(queued_events)["type"] == "queued"
        proc.send_signal(signal.SIGTERM)
        assert [e["type"] for e in events][-1] == "done"
        assert [e["type"] for e in queued_events][-1] == "cancelled"
        proc.wait(timeout=60)
        assert port_is_free(client.port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_ensure_running_reports_a_child_that_dies(config_dir, tmp_path):
    # Fails on its options, before torch is imported, so the test stays quick.
    with pytest.raises(EngineNotRunning) as err:
        EngineClient.ensure_running(command=[sys.executable, "-m", "diffmatte.service"], config=str(config_dir),
                                    timeout=60, args=["--max-queue", "0"])
    assert "exited with code 2" in str(err.value) and "--max-queue must be at least 1" in str(err.value)


# -- the client on the oldest supported Python ------------------------------------------------------
_PY38_SCRIPT = r"""
import os, sys, threading
sys.path.insert(0, os.path.dirname(os.path.dirname(sys.argv[1])))  # the folder holding refine_matte/
from refine_matte import client  # with its stdlib-only service_files
allowed = set(sys.builtin_module_names) | {"base64", "http", "json", "os", "socket", "subprocess", "threading",
                                           "time", "typing", "email", "urllib", "collections", "encodings"}
c = client.EngineClient.discover()
info = c.info()
steps = []
alpha = c.refine(open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read(), steps=3,
                 on_progress=lambda s, t, p: steps.append(s))
assert alpha[:4] == b"\x89PNG", alpha[:16]
assert steps == [1, 2, 3], steps
print("ok", sys.version_info[:2], info["engine"]["variant"])
"""


def _python38():
    found = shutil.which("python3.8")
    candidates = [found] if found else []
    candidates.append(os.path.expanduser("~/.pyenv/versions/3.8.18/bin/python3.8"))
    for path in candidates:
        if path and os.path.exists(path):
            try:
                out = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"],
                                     capture_output=True, timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if out.returncode == 0 and b"(3, 8)" in out.stdout:
                return path
    return None


def test_client_runs_on_python38_with_stdlib_only(tiny_engine, tmp_path, monkeypatch):
    py38 = _python38()
    if py38 is None:
        pytest.skip("no Python 3.8 interpreter on this machine")
    from diffmatte.service.server import RunningService

    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(tmp_path))
    token = cfgfiles.load_or_create_token()
    svc = RunningService(tiny_engine, token)
    try:
        cfgfiles.write_service_file({"host": svc.host, "port": svc.port, "pid": os.getpid(), "version": "0"})
        image, tri = sample()
        (tmp_path / "i.png").write_bytes(image)
        (tmp_path / "t.png").write_bytes(tri)
        script = tmp_path / "run.py"
        script.write_text(_PY38_SCRIPT)
        env = {"REFINE_MATTE_CONFIG_DIR": str(tmp_path), "PATH": os.environ.get("PATH", "")}
        # -I -S: isolated, no site-packages at all: only the standard library is importable.
        out = subprocess.run([py38, "-I", "-S", str(script), client_mod.__file__, str(tmp_path / "i.png"),
                              str(tmp_path / "t.png")], env=env, capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr.decode()
        assert out.stdout.startswith(b"ok (3, 8) tiny")
    finally:
        svc.stop()


def test_client_source_is_stdlib_only_and_py38_syntax():
    import ast

    package = Path(client_mod.__file__).parent
    # the client and the modules it imports (the only ones each may import from the package),
    # and the widen rule that the CLI and batch import too
    local = {"client.py": {"service_files", "client_errors", "client_events", "client_trimap", "client_submit"},
             "client_errors.py": set(), "client_events.py": {"client_errors"},
             "client_trimap.py": {"client_errors", "client_events"}, "service_files.py": set(),
             "client_submit.py": {"client_errors"}, "widen_rule.py": set()}
    for module, allowed in local.items():
        tree = ast.parse((package / module).read_text(), feature_version=(3, 8))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                assert node.module in allowed, (module, node.module)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    assert name.split(".")[0] in sys.stdlib_module_names, (module, name)


def test_importing_the_service_cli_is_light():
    # `diffmatte --help` and the lead's CLI import service.cli: no torch, no web stack.
    code = ("import sys, diffmatte.service, diffmatte.service.cli, diffmatte.service.config; "
            "heavy = [m for m in ('torch', 'fastapi', 'uvicorn', 'numpy') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, timeout=60,
                         env=child_env(ROOT / "unused-config"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_serve_with_unloadable_weights_says_why_and_exits_2(config_dir, tmp_path):
    """The model loads after the service listens (health checks answer at once); a load
    that fails still ends `diffmatte serve` with exit status 2 and unpublishes it."""
    res = subprocess.run([sys.executable, "-m", "diffmatte", "serve", "--weights", str(tmp_path / "nope.safetensors"),
                          "--device", "cpu", "--log-level", "warning"], env=child_env(config_dir),
                         capture_output=True, timeout=120)
    assert res.returncode == 2
    assert b"cannot load the engine" in res.stderr and b"nope.safetensors" in res.stderr
    assert not (config_dir / "service.json").exists()
