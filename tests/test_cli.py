"""`diffmatte` command line: refine, batch, convert, help, clear failures."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from diffmatte.cli import main


def _write_pair(folder: Path, stem: str = "img", size=(48, 40)) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    w, h = size
    img = folder / f"{stem}.png"
    tri = folder / f"{stem}_trimap.png"
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(img)
    t = np.full((h, w), 128, np.uint8)
    t[:8] = 0
    t[-8:] = 255
    Image.fromarray(t).save(tri)
    return img, tri


def test_refine_writes_alpha_and_cutout(tmp_path, tiny_weights):
    img, tri = _write_pair(tmp_path)
    out, cut = tmp_path / "a.png", tmp_path / "c.png"
    assert main(["refine", str(img), "--trimap", str(tri), "-o", str(out), "--rgba", str(cut),
                 "--weights", str(tiny_weights), "--steps", "2", "-q"]) == 0
    alpha = np.array(Image.open(out))
    assert alpha.shape == (40, 48) and alpha.dtype == np.uint8
    assert (alpha[:8] == 0).all() and (alpha[-8:] == 255).all()
    rgba = Image.open(cut)
    assert rgba.mode == "RGBA" and np.array_equal(np.array(rgba)[:, :, 3], alpha)


def test_refine_16_bit(tmp_path, tiny_weights):
    img, tri = _write_pair(tmp_path)
    out = tmp_path / "a16.png"
    assert main(["refine", str(img), "--trimap", str(tri), "-o", str(out), "--bits", "16",
                 "--weights", str(tiny_weights), "--steps", "1", "-q"]) == 0
    arr = np.array(Image.open(out))
    assert arr.dtype in (np.uint16, np.int32) and arr.max() == 65535


def test_refuses_to_overwrite_input(tmp_path, tiny_weights, capsys):
    img, tri = _write_pair(tmp_path)
    before = img.read_bytes()
    assert main(["refine", str(img), "--trimap", str(tri), "-o", str(img), "--weights", str(tiny_weights)]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert img.read_bytes() == before


def test_errors_are_messages_not_tracebacks(tmp_path, tiny_weights, capsys, monkeypatch):
    img, tri = _write_pair(tmp_path)
    small_tri = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(small_tri)
    assert main(["refine", str(img), "--trimap", str(small_tri), "--weights", str(tiny_weights), "-q",
                 "-o", str(tmp_path / "o.png")]) == 2
    assert "must match" in capsys.readouterr().err
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG garbage")
    assert main(["refine", str(broken), "--trimap", str(tri), "--weights", str(tiny_weights), "-q"]) == 2
    assert "not a readable image" in capsys.readouterr().err
    monkeypatch.setenv("DIFFMATTE_DEFAULT_WEIGHTS", str(tmp_path / "nope.safetensors"))
    assert main(["refine", str(img), "--trimap", str(tri), "-q"]) == 3
    assert "no bundled default model" in capsys.readouterr().err


def test_batch_keeps_going_past_bad_files(tmp_path, tiny_weights):
    images, trimaps, out = tmp_path / "images", tmp_path / "trimaps", tmp_path / "out"
    images.mkdir(), trimaps.mkdir()
    for stem in ("a", "b"):
        img, tri = _write_pair(images, stem)
        tri.rename(trimaps / f"{stem}.png")
    (images / "c.png").write_bytes(b"corrupt")
    (trimaps / "c.png").write_bytes(b"corrupt")
    code = main(["batch", "--images", str(images), "--trimaps", str(trimaps), "-o", str(out),
                 "--weights", str(tiny_weights), "--steps", "1", "-q"])
    assert code == 1
    assert (out / "a.png").is_file() and (out / "b.png").is_file() and not (out / "c.png").exists()


def test_convert_and_info(tmp_path, tiny_weights, capsys):
    import torch

    from diffmatte.weights.checkpoint import read_checkpoint

    sd, _ = read_checkpoint(tiny_weights)
    pth = tmp_path / "official_style.pth"
    torch.save({"model": sd}, pth)
    dest = tmp_path / "conv.safetensors"
    assert main(["convert", str(pth), str(dest)]) == 0
    assert main(["convert", str(pth), str(dest)]) == 2  # exists, no --force
    assert main(["info", "--weights", str(dest), "--device", "cpu"]) == 0
    assert "resnet_d" in capsys.readouterr().out


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "diffmatte", "--help"], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    for cmd in ("refine", "batch", "info", "convert", "variants"):
        assert cmd in out
    for cmd in ("refine", "batch", "convert"):
        sub = subprocess.run([sys.executable, "-m", "diffmatte", cmd, "--help"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[1])
        assert sub.returncode == 0 and "usage" in sub.stdout


def test_outputs_get_normal_permissions(tmp_path):
    import os
    import stat

    from diffmatte.io.images import write_alpha

    old = os.umask(0o022)
    try:
        out = write_alpha(tmp_path / "a.png", np.zeros((4, 4), np.float32))
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temp file left behind
