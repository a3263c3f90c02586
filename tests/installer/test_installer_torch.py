"""installer/install.py picks the torch build for the machine (detection faked here)."""
from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

_spec = importlib.util.spec_from_file_location("refine_matte_installer", ROOT / "installer" / "install.py")
install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install)


def test_no_nvidia_driver_means_the_cpu_only_index():
    index, why = install.choose_torch_index(None, platform="linux", has_nvidia=False)
    assert index == install.CPU_INDEX == "https://download.pytorch.org/whl/cpu"
    assert "no NVIDIA driver" in why


def test_nvidia_driver_on_linux_means_pypis_cuda_build():
    index, why = install.choose_torch_index(None, platform="linux", has_nvidia=True)
    assert index is None and "CUDA" in why


def test_explicit_index_wins_and_pypi_forces_the_default_build():
    url = "https://download.pytorch.org/whl/cu126"
    assert install.choose_torch_index(url, platform="linux", has_nvidia=False)[0] == url
    assert install.choose_torch_index(url, platform="linux", has_nvidia=True)[0] == url
    assert install.choose_torch_index("pypi", platform="linux", has_nvidia=False)[0] is None


def test_macos_uses_pypi_and_windows_gpu_is_told_about_cuda_index():
    assert install.choose_torch_index(None, platform="darwin", has_nvidia=False)[0] is None
    index, why = install.choose_torch_index(None, platform="win32", has_nvidia=True)
    assert index is None and "cu126" in why
    assert install.choose_torch_index(None, platform="win32", has_nvidia=False)[0] == install.CPU_INDEX


@pytest.mark.parametrize("smi, proc, expect", [(None, False, False), ("/usr/bin/nvidia-smi", False, True),
                                               (None, True, True)])
def test_driver_detection_looks_for_nvidia_smi_and_proc_driver(smi, proc, expect):
    seen = []

    def exists(path):
        seen.append(path)
        return proc
    assert install.nvidia_driver_present(which=lambda name: smi if name == "nvidia-smi" else None,
                                         exists=exists) is expect
    if smi is None:
        assert seen == ["/proc/driver/nvidia"]


def _fake_venv(tmp_path):
    venv = tmp_path / "venv"
    py = install.venv_python(venv)
    py.parent.mkdir(parents=True)
    py.write_text("")
    return venv


def test_the_cpu_index_is_used_for_torch_before_the_project(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(install, "run", lambda cmd, **kw: calls.append([str(c) for c in cmd]))
    install.ensure_venv(_fake_venv(tmp_path), "", install.CPU_INDEX, auto_index=True)
    assert len(calls) == 2
    assert calls[0][-4:] == ["--index-url", install.CPU_INDEX, "torch==2.14.1", "torchvision==0.29.1"]
    assert "-e" in calls[1] and "--index-url" not in calls[1]


def test_an_unreachable_auto_chosen_index_falls_back_to_pypi(tmp_path, monkeypatch, capsys):
    calls = []

    def run(cmd, **kw):
        calls.append([str(c) for c in cmd])
        if "--index-url" in calls[-1]:
            raise subprocess.CalledProcessError(1, cmd)
    monkeypatch.setattr(install, "run", run)
    install.ensure_venv(_fake_venv(tmp_path), "", install.CPU_INDEX, auto_index=True)
    assert "-e" in calls[-1]
    assert "falling back to PyPI" in capsys.readouterr().err
    # an index the user asked for is not silently replaced
    with pytest.raises(subprocess.CalledProcessError):
        install.ensure_venv(_fake_venv(tmp_path / "b"), "", install.CPU_INDEX, auto_index=False)


def test_main_passes_the_detected_choice(tmp_path, monkeypatch):
    got = {}
    monkeypatch.setattr(install, "nvidia_driver_present", lambda: False)
    monkeypatch.setattr(install, "ensure_venv",
                        lambda venv, extras, index, auto_index=False: got.update(index=index, auto=auto_index)
                        or Path("python"))
    monkeypatch.setattr(install.sys, "platform", "linux")
    assert install.main(["--venv", str(tmp_path / "v")]) == 0
    assert got == {"index": install.CPU_INDEX, "auto": True}
    assert install.main(["--venv", str(tmp_path / "v"), "--torch-index", "pypi"]) == 0
    assert got == {"index": None, "auto": False}


def test_sample_makes_its_output_folder_before_the_refine(tmp_path, monkeypatch):
    """The CLI refuses an -o into a missing folder; the README's first command must still work
    in a fresh clone, where out/ does not exist yet."""
    import sys

    monkeypatch.setattr(install, "ROOT", tmp_path)
    monkeypatch.setattr(install, "ensure_venv", lambda *a, **k: Path(sys.executable))
    seen = []

    def fake_run(cmd, *a, **k):
        out = Path(cmd[cmd.index("-o") + 1])
        seen.append(out.parent.is_dir())
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(install.subprocess, "run", fake_run)
    assert install.main(["--sample", "--torch-index", "pypi"]) == 0
    assert seen == [True]
