"""installer/install.py removes torch's C++ test programs from a venv it created (#24's size goal),
checks the venv afterwards, puts them back when the check fails, and never touches a venv it
did not create. The venv is faked here; installer/venv_size.py measures the real one."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("refine_matte_installer_prune", ROOT / "installer" / "install.py")
install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install)

ELF = b"\x7fELF" + b"\0" * 60


def fake_venv(tmp_path: Path, created: bool = True) -> tuple[Path, Path]:
    venv = tmp_path / "venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    torch = site / "torch"
    (torch / "test").mkdir(parents=True)
    (torch / "bin" / "upgrader_models").mkdir(parents=True)
    for name in ("Dict_test", "atest", "cpu_profiling_allocator_test"):
        (torch / "test" / name).write_bytes(ELF)
    for name in ("test_api", "test_jit", "TCPStoreTest", "protoc", "torch_shm_manager"):
        (torch / "bin" / name).write_bytes(ELF)
    (torch / "bin" / "test_interpreter_async.pt").write_bytes(b"PK\3\4 not an executable")
    (torch / "__init__.py").write_text("")
    if created:
        (venv / install.CREATED_MARKER).write_text("")
    return venv, site


def test_only_compiled_test_programs_are_listed(tmp_path):
    _, site = fake_venv(tmp_path)
    found = [p.relative_to(site).as_posix() for p in install.torch_test_binaries(site)]
    assert found == ["torch/test", "torch/bin/TCPStoreTest", "torch/bin/test_api", "torch/bin/test_jit"]
    # protoc, torch_shm_manager (torch.multiprocessing) and non-executables are never listed
    assert install.site_packages(tmp_path / "venv") == site


def test_a_test_folder_with_python_in_it_is_left_alone(tmp_path):
    _, site = fake_venv(tmp_path)
    (site / "torch" / "test" / "helpers.py").write_text("x = 1\n")
    assert "torch/test" not in [p.relative_to(site).as_posix() for p in install.torch_test_binaries(site)]


def test_pypis_torch_has_nothing_to_prune(tmp_path):
    site = tmp_path / "site"
    (site / "torch" / "bin").mkdir(parents=True)
    for name in ("protoc", "protoc-3.21.12.0", "torch_shm_manager"):  # PyPI's 2.14.1 torch/bin
        (site / "torch" / "bin" / name).write_bytes(ELF)
    assert install.torch_test_binaries(site) == []


def test_pruned_after_the_engine_check_passes_before_and_after(tmp_path, monkeypatch):
    venv, site = fake_venv(tmp_path)
    checks = []
    monkeypatch.setattr(install, "_check_passes", lambda py, code: checks.append(code) or True)
    said = []
    freed = install.prune_torch_tests(venv, Path("py"), say=said.append)
    assert freed == 6 * len(ELF)
    assert not (site / "torch" / "test").exists() and not (site / "torch" / "bin" / "test_api").exists()
    assert sorted(p.name for p in (site / "torch" / "bin").iterdir()) == [
        "protoc", "test_interpreter_async.pt", "torch_shm_manager", "upgrader_models"]
    assert checks == [install.ENGINE_CHECK, install.ENGINE_CHECK]  # a tiny refine, before and after
    assert "refine" in install.ENGINE_CHECK and "a tiny refine" in said[0]
    assert not (venv / ".refine-matte-pruning").exists()


def test_put_back_when_the_check_fails_without_them(tmp_path, monkeypatch):
    venv, site = fake_venv(tmp_path)
    before = sorted(p.relative_to(site) for p in site.rglob("*"))
    answers = iter([True, False])  # passes before, fails after
    monkeypatch.setattr(install, "_check_passes", lambda py, code: next(answers))
    said = []
    assert install.prune_torch_tests(venv, Path("py"), say=said.append) == 0
    assert sorted(p.relative_to(site) for p in site.rglob("*")) == before
    assert "kept" in said[0] and not (venv / ".refine-matte-pruning").exists()


def test_the_torch_check_stands_in_only_where_the_engine_failed_before_too(tmp_path, monkeypatch):
    venv, site = fake_venv(tmp_path)
    seen = []
    monkeypatch.setattr(install, "_check_passes",
                        lambda py, code: seen.append(code) or code == install.TORCH_CHECK)
    assert install.prune_torch_tests(venv, Path("py"), say=lambda s: None) > 0
    assert seen == [install.ENGINE_CHECK, install.TORCH_CHECK, install.TORCH_CHECK]
    # and where torch does not run at all, nothing is touched
    venv2, site2 = fake_venv(tmp_path / "b")
    monkeypatch.setattr(install, "_check_passes", lambda py, code: False)
    assert install.prune_torch_tests(venv2, Path("py"), say=lambda s: None) == 0
    assert (site2 / "torch" / "test" / "atest").exists()


def test_a_venv_the_installer_did_not_create_is_never_pruned(tmp_path, monkeypatch):
    venv, site = fake_venv(tmp_path, created=False)
    monkeypatch.setattr(install, "_check_passes", lambda py, code: True)
    assert install.prune_torch_tests(venv, Path("py")) == 0
    assert (site / "torch" / "test" / "atest").exists() and (site / "torch" / "bin" / "test_api").exists()


def test_the_installer_marks_the_venvs_it_creates_and_prunes_after_the_warm_up(tmp_path, monkeypatch):
    order = []

    class Builder:
        def __init__(self, **kw):
            pass

        def create(self, path):
            py = install.venv_python(Path(path))
            py.parent.mkdir(parents=True)
            py.write_text("")

    monkeypatch.setattr(install.venv, "EnvBuilder", Builder)
    monkeypatch.setattr(install, "run", lambda cmd, **kw: order.append("pip"))
    monkeypatch.setattr(install, "warm_up", lambda py: order.append("warm_up"))
    monkeypatch.setattr(install, "prune_torch_tests", lambda venv, py: order.append(("prune", venv)))
    venv = tmp_path / "new"
    install.ensure_venv(venv, "", None)
    assert (venv / install.CREATED_MARKER).exists()
    assert order == ["pip", "warm_up", ("prune", venv)]
    # an existing venv (e.g. a user's own, --venv) gets no marker
    own = tmp_path / "own"
    py = install.venv_python(own)
    py.parent.mkdir(parents=True)
    py.write_text("")
    install.ensure_venv(own, "", None)
    assert not (own / install.CREATED_MARKER).exists()
