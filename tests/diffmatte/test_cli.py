"""`diffmatte` command line: refine, batch, convert, help, clear failures."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from diffmatte.cli import main
from doubles.sam import no_installed_sam
from conftest import ROOT


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
                         cwd=ROOT).stdout
    for cmd in ("refine", "batch", "info", "convert", "variants"):
        assert cmd in out
    for cmd in ("refine", "batch", "convert"):
        sub = subprocess.run([sys.executable, "-m", "diffmatte", cmd, "--help"], capture_output=True, text=True,
                             cwd=ROOT)
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


# ---------------------------------------------------- issue 24: wrong results with exit 0
def _refine_args(img, tri, tmp_path, weights, *more):
    return ["refine", str(img), "--trimap", str(tri), "-o", str(tmp_path / "out_alpha.png"),
            "--weights", str(weights), "--steps", "1", "-q", *more]


def test_swapped_image_and_trimap_are_refused(tmp_path, tiny_weights, capsys):
    img, tri = _write_pair(tmp_path)
    assert main(_refine_args(tri, img, tmp_path, tiny_weights)) == 2
    err = capsys.readouterr().err
    assert "look swapped" in err and f"diffmatte refine {img} --trimap {tri}" in err
    assert not (tmp_path / "out_alpha.png").exists()


def test_a_photo_passed_as_the_trimap_is_refused(tmp_path, tiny_weights, capsys):
    img, _ = _write_pair(tmp_path)
    photo2 = tmp_path / "photo2.png"
    Image.open(img).save(photo2)
    assert main(_refine_args(img, photo2, tmp_path, tiny_weights)) == 2
    err = capsys.readouterr().err
    assert "looks like a photo, not a trimap" in err and "--trimap" in err
    assert not (tmp_path / "out_alpha.png").exists()
    # the way around, for whoever means it
    assert main(_refine_args(img, photo2, tmp_path, tiny_weights, "--skip-input-checks")) == 0


def test_an_all_unknown_trimap_is_refused_and_a_one_sided_one_warned(tmp_path, tiny_weights, capsys):
    img, _ = _write_pair(tmp_path)
    tri = tmp_path / "grey.png"
    Image.fromarray(np.full((40, 48), 128, np.uint8)).save(tri)
    assert main(_refine_args(img, tri, tmp_path, tiny_weights)) == 2
    assert "no foreground (255) and no background (0)" in capsys.readouterr().err
    t = np.full((40, 48), 128, np.uint8)
    t[:8] = 0
    Image.fromarray(t).save(tri)
    assert main(_refine_args(img, tri, tmp_path, tiny_weights)) == 0
    assert "no foreground (255) pixels" in capsys.readouterr().err


def _png_rgb16(path: Path, rgb: np.ndarray) -> None:
    import struct
    import zlib

    h, w, _ = rgb.shape
    raw = b"".join(b"\0" + rgb[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_a_16_bit_rgb_png_stays_16_bit_through_to_the_cutout(tmp_path, tiny_weights):
    from diffmatte.io.images import read_image

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 65536, (40, 48, 3), dtype=np.uint16)
    img = tmp_path / "deep.png"
    _png_rgb16(img, rgb)
    got = read_image(img)
    assert got.dtype == np.uint16 and np.array_equal(got, rgb)  # Pillow alone gives 8 bits
    _, tri = _write_pair(tmp_path)
    cut = tmp_path / "cut.png"
    assert main(_refine_args(img, tri, tmp_path, tiny_weights, "--rgba", str(cut), "--decontaminate", "0")) == 0
    head = cut.read_bytes()[:33]
    assert head[24] == 16 and head[25] == 6  # a 16-bit RGBA PNG
    rgba = read_image(cut)
    assert rgba.dtype == np.uint16
    fg = rgba[-8:, :, :3]  # known foreground: the photo's own 16-bit colours
    assert np.array_equal(fg, rgb[-8:])


def test_output_into_a_missing_folder_is_an_error_not_a_new_folder(tmp_path, tiny_weights, capsys):
    img, tri = _write_pair(tmp_path)
    out = tmp_path / "nonexistent" / "dir" / "a.png"
    assert main(["refine", str(img), "--trimap", str(tri), "-o", str(out), "--weights", str(tiny_weights)]) == 2
    assert "does not exist; create it first" in capsys.readouterr().err
    assert not (tmp_path / "nonexistent").exists()
    assert main(["refine", str(img), "--trimap", str(tri), "-o", str(tmp_path / "a.png"),
                 "--rgba", str(out), "--weights", str(tiny_weights)]) == 2
    assert "--rgba" in capsys.readouterr().err and not (tmp_path / "nonexistent").exists()


def test_file_not_found_says_which_input(tmp_path, capsys):
    img, tri = _write_pair(tmp_path)
    assert main(["refine", str(tmp_path / "nope.png"), "--trimap", str(tri)]) == 2
    assert f"image file not found: {tmp_path / 'nope.png'}" in capsys.readouterr().err
    assert main(["refine", str(img), "--trimap", str(tmp_path / "t.png")]) == 2
    assert f"trimap file not found: {tmp_path / 't.png'}" in capsys.readouterr().err


def test_help_and_input_errors_answer_without_importing_torch(tmp_path):
    """Issue 23 (start-up): --help, argument errors and missing / unreadable inputs never
    import torch (which alone takes seconds)."""
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    code = (
        "import sys\n"
        "from diffmatte.cli import main\n"
        "cases = [['refine', 'missing.png', '--trimap', 't.png'], ['refine', sys.argv[1], '--trimap', sys.argv[1]],\n"
        "         ['refine', '--steps'], ['--help'], ['refine', '--help']]\n"
        "for argv in cases:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    res = subprocess.run([sys.executable, "-c", code, str(broken)], capture_output=True, text=True,
                         cwd=str(tmp_path), env=_env_with_root())
    assert res.stdout.strip().endswith("NO-TORCH"), res.stdout[-500:] + res.stderr[-2000:]


def test_the_default_engine_loads_without_timm(tmp_path):
    """Issue 23 (start-up): the default model has no ViT, so loading it never imports timm
    and the torchvision it pulls in (~2 s of every CLI run and service start)."""
    code = ("import sys, diffmatte\n"
            "diffmatte.load_engine('default', device='cpu')\n"
            "print('TIMM' if 'timm' in sys.modules or 'torchvision' in sys.modules else 'NO-TIMM')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path),
                         env=_env_with_root())
    assert res.stdout.strip().endswith("NO-TIMM"), res.stdout[-500:] + res.stderr[-2000:]


def _env_with_root():
    import os

    root = str(ROOT)
    return dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_refine_from_a_rough_mask_finds_the_edge_inside_it(tmp_path, tiny_weights, capsys, monkeypatch):
    """--mask: a lasso drawn around the subject is a region, not an edge (issue #27)."""
    import numpy as np
    from PIL import Image

    no_installed_sam(monkeypatch, tmp_path)   # the rectangle goes to the colour models

    img = np.full((60, 80, 3), (40, 110, 140), np.uint8)
    img[15:45, 20:60] = (220, 60, 40)
    lasso = np.zeros((60, 80), np.uint8)
    lasso[6:54, 10:70] = 255  # about 10 px outside the subject
    Image.fromarray(img).save(tmp_path / "photo.png")
    Image.fromarray(lasso).save(tmp_path / "lasso.png")
    out, tri = tmp_path / "a.png", tmp_path / "tri.png"
    assert main(["refine", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "lasso.png"), "-o", str(out),
                 "--save-trimap", str(tri), "--band", "2", "--weights", str(tiny_weights), "--steps", "1"]) == 0
    assert "rough" in capsys.readouterr().err
    t = np.asarray(Image.open(tri))
    assert t[30, 40] == 255 and t[8, 12] == 0 and t[52, 68] == 0  # the lasso's ring is background
    assert main(["refine", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "lasso.png"), "-o", str(out),
                 "--save-trimap", str(tmp_path / "tri2.png"), "--band", "2", "--mask-edge", "exact",
                 "--weights", str(tiny_weights), "--steps", "1"]) == 0
    assert np.asarray(Image.open(tmp_path / "tri2.png"))[8, 40] != 0  # read as the edge: fg or band
    assert main(["refine", str(tmp_path / "photo.png"), "--trimap", str(tri), "--save-trimap",
                 str(tmp_path / "x.png"), "--weights", str(tiny_weights)]) == 2
    assert "--save-trimap needs --mask" in capsys.readouterr().err
    # the mask's options with a trimap would be ignored: refused, naming them
    assert main(["refine", str(tmp_path / "photo.png"), "--trimap", str(tri), "--band", "3", "--no-widen",
                 "--weights", str(tiny_weights)]) == 2
    assert "--band, --no-widen only applies with --mask" in capsys.readouterr().err


def test_refine_from_a_mask_covering_the_photo_warns(tmp_path, tiny_weights, capsys):
    """A box around a subject that fills the frame: the rough path says the background
    outside it is too little to learn from (issue #27), and still writes the matte."""
    import numpy as np
    from PIL import Image

    img = np.full((60, 80, 3), (40, 110, 140), np.uint8)
    img[15:45, 20:60] = (220, 60, 40)
    Image.fromarray(img).save(tmp_path / "photo.png")
    Image.fromarray(np.full((60, 80), 255, np.uint8)).save(tmp_path / "box.png")
    out = tmp_path / "a.png"
    assert main(["refine", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "box.png"), "-o", str(out),
                 "--mask-edge", "rough", "--weights", str(tiny_weights), "--steps", "1"]) == 0
    err = capsys.readouterr().err
    assert "warning: the selection covers 100 % of the photo" in err and out.exists()


def test_a_prior_only_refine_prints_the_solve_not_steps(tmp_path, capsys):
    """Issue #23: the bundled model runs no diffusion; its progress line names the work."""
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    rng = np.random.default_rng(1)
    image = np.where((r < 36)[..., None], [200, 80, 40], [30, 120, 210]) + rng.integers(0, 30, (h, w, 3))
    img, tri = tmp_path / "img.png", tmp_path / "tri.png"
    Image.fromarray(image.astype(np.uint8)).save(img)
    Image.fromarray(np.where(r < 30, 255, np.where(r > 42, 0, 128)).astype(np.uint8)).save(tri)
    assert main(["refine", str(img), "--trimap", str(tri), "-o", str(tmp_path / "a.png"), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    lines = [part.strip() for part in err.replace("\n", "\r").split("\r") if "matte" in part]
    assert lines and lines[0] == "Solving the matte… 0 %" and lines[-1] == "Solving the matte… 100 %"
    assert "step" not in err and "prior solve" not in err


def test_the_solving_line_estimates_the_time_left():
    from diffmatte.cli import _solving_line
    from refine_matte.progress_text import Estimate

    clock = iter([100.0, 104.0, 110.0])
    estimate = Estimate(clock=lambda: next(clock))
    assert _solving_line(0.1, estimate) == "Solving the matte… 10 %"
    assert _solving_line(0.3, estimate) == "Solving the matte… 30 % (about 14 s left)"
    assert _solving_line(1.0, estimate) == "Solving the matte… 100 %"


def test_refine_passes_prior_solver_to_the_engine(tmp_path, tiny_weights, monkeypatch):
    import diffmatte.engine

    img, tri = _write_pair(tmp_path)
    real, seen = diffmatte.engine.load_engine, []

    def spy(*a, **k):
        engine = real(*a, **k)
        seen.append(engine.prior_solver)
        return engine
    monkeypatch.setattr(diffmatte.engine, "load_engine", spy)
    for choice in ("torch", None):
        extra = ["--prior-solver", choice] if choice else []
        assert main(["refine", str(img), "--trimap", str(tri), "-o", str(tmp_path / "a.png"),
                     "--weights", str(tiny_weights), "--steps", "1", "-q", *extra]) == 0
    assert seen == ["torch", "auto"]


def test_refine_passes_the_white_point_and_refuses_a_bad_one_before_loading(tmp_path, tiny_weights, refine_calls,
                                                                           capsys):
    img, tri = _write_pair(tmp_path)
    common = [str(img), "--trimap", str(tri), "--weights", str(tiny_weights), "--steps", "1", "-q"]
    assert main(["refine", *common, "-o", str(tmp_path / "a.png"), "--white-point", "1"]) == 0
    assert main(["refine", *common, "-o", str(tmp_path / "b.png")]) == 0
    assert [c.get("white_point") for c in refine_calls] == [1.0, None]
    assert main(["refine", *common, "-o", str(tmp_path / "c.png"), "--white-point", "2"]) != 0
    assert "--white-point must be between 0.5 and 1" in capsys.readouterr().err and len(refine_calls) == 2
    assert not (tmp_path / "c.png").exists()


def test_a_rough_mask_asks_the_engine_to_widen_the_band_and_an_exact_one_does_not(tmp_path, tiny_weights,
                                                                                     monkeypatch, refine_calls):
    """A rough --mask's trimap sits on a segmentation, so the engine may grow its band where the
    first matte shows it missed the edge (Engine.refine(widen_band=True)); an exact mask, a trimap
    file and --no-widen are solved once. The band grows by --band when it is given (the band the
    trimap was made with), else by the image's default band."""
    import numpy as np
    from PIL import Image

    no_installed_sam(monkeypatch, tmp_path)   # the rectangle goes to the colour models
    img = np.full((60, 80, 3), (40, 110, 140), np.uint8)
    img[15:45, 20:60] = (220, 60, 40)
    lasso = np.zeros((60, 80), np.uint8)
    lasso[6:54, 10:70] = 255
    Image.fromarray(img).save(tmp_path / "photo.png")
    Image.fromarray(lasso).save(tmp_path / "lasso.png")
    common = ["-o", str(tmp_path / "a.png"), "--weights", str(tiny_weights), "--steps", "1", "-q"]
    photo, mask = str(tmp_path / "photo.png"), str(tmp_path / "lasso.png")
    assert main(["refine", photo, "--mask", mask, "--mask-edge", "rough", "--save-trimap",
                 str(tmp_path / "t.png")] + common) == 0
    assert main(["refine", photo, "--mask", mask, "--mask-edge", "exact"] + common) == 0
    assert main(["refine", photo, "--mask", mask, "--mask-edge", "rough", "--no-widen"] + common) == 0
    assert main(["refine", photo, "--trimap", str(tmp_path / "t.png")] + common) == 0
    seen = [kw.get("widen_band", False) for kw in refine_calls]
    assert seen == [True, False, False, False]
    assert main(["refine", photo, "--mask", mask, "--mask-edge", "rough", "--band", "3"] + common) == 0
    assert refine_calls[-1].get("widen_band") is True
    assert [kw.get("band") for kw in refine_calls] == [None] * 4 + [3.0]


def test_the_trimap_check_reads_8_bit_trimaps_by_histogram_with_the_same_numbers():
    """The 8-bit path (a histogram of the levels, fast at 24 MP) and the float rule agree; a
    colour photo is told from a grey trimap by a sample, and in full when it looks grey."""
    import numpy as np

    from diffmatte.cli import _trimap_levels

    rng = np.random.default_rng(0)
    tri = rng.choice(np.array([0, 1, 3, 25, 26, 126, 130, 131, 229, 230, 252, 255], np.uint8), (40, 50))
    assert _trimap_levels(tri) == _trimap_levels(tri.astype(np.float32) / 255.0)
    photo = np.repeat(tri[..., None], 3, 2)
    assert _trimap_levels(photo) == _trimap_levels(tri)       # grey in three channels: a trimap
    photo[13, 17, 0] = 200                                    # one colour pixel, off the sample grid
    assert _trimap_levels(photo)[0] == 0.0
