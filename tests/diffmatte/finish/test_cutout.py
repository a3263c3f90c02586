"""diffmatte.finish.cutout: foreground estimation (decontamination), straight / premultiplied,
16-bit, ICC, parameters in the file, tiling, and the CLI's --rgba using it."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from scipy import ndimage as ndi

from diffmatte.finish import cutout
from diffmatte.io import cutout_files
from diffmatte.cli import main


def composite(size=96, seed=0):
    """A known-foreground composite: smooth foreground colours, strand-like soft alpha,
    and a saturated, textured background (the case decontamination is for)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    fg = np.dstack([0.8 - 0.3 * yy, 0.6 + 0.2 * xx, 0.3 + 0.1 * yy]).astype(np.float32)
    bg = np.zeros((size, size, 3), np.float32)
    bg[..., 1] = 0.85  # saturated green screen ...
    bg[..., 2] = ndi.gaussian_filter(rng.random((size, size)), 3).astype(np.float32) * 2  # ... with texture
    bg = np.clip(bg, 0, 1)
    alpha = np.zeros((size, size), np.float32)
    alpha[:, : size // 2] = 1
    strands = (np.sin(yy * 60 + rng.random() * 3) > 0.2).astype(np.float32)
    ramp = np.clip(1 - (xx - 0.5) * 3, 0, 1)
    alpha[:, size // 2:] = (strands * ramp * 0.9)[:, size // 2:]
    alpha = ndi.gaussian_filter(alpha, 0.8).astype(np.float32)
    image = fg * alpha[..., None] + bg * (1 - alpha[..., None])
    return np.round(image * 255).astype(np.uint8), alpha, fg


def _band_error(colours: np.ndarray, fg: np.ndarray, alpha: np.ndarray) -> float:
    band = (alpha > 0.05) & (alpha < 0.95)
    return float(np.abs(colours[band] - fg[band]).mean() * 255)


def test_decontamination_halves_the_colour_error():
    image, alpha, fg = composite()
    raw = _band_error(image.astype(np.float32) / 255, fg, alpha)
    est = _band_error(cutout.estimate_foreground(image, alpha), fg, alpha)
    assert raw > 20  # the test is meaningful: the background really bleeds in
    assert est < raw / 2, (raw, est)


def test_decontamination_on_training_composites():
    """Same measurement on the training generator's composites (known F), when photos exist."""
    from diffmatte.train.photos import PhotoPool
    from diffmatte.train.synth import SynthMattingDataset

    try:
        pool = PhotoPool.from_dirs()
    except ValueError:
        pytest.skip("no photos for the synthetic generator on this machine")
    ds = SynthMattingDataset(pool, size=128, seed=7)
    raws, ests = [], []
    for i in range(6):
        s = ds.raw(i)
        a = s["alpha"].astype(np.float32)
        if ((a > 0.05) & (a < 0.95)).sum() < 50:
            continue
        img8 = np.round(np.clip(s["image"], 0, 1) * 255).astype(np.uint8)
        raws.append(_band_error(img8.astype(np.float32) / 255, s["fg"], a))
        ests.append(_band_error(cutout.estimate_foreground(img8, a), s["fg"], a))
    assert raws
    assert np.mean(ests) < np.mean(raws) / 2, (raws, ests)


def test_opaque_pixels_keep_their_colour_and_tiles_do_not_show():
    image, alpha, _ = composite(size=120, seed=3)
    whole = cutout.estimate_foreground(image, alpha, tile=4096)
    tiled = cutout.estimate_foreground(image, alpha, tile=40, context=48)
    opaque = alpha >= 1
    assert np.array_equal(whole[opaque], image[opaque].astype(np.float32) / 255)
    soft = (alpha > 0.05) & (alpha < 0.95)
    assert np.abs(whole[soft] - tiled[soft]).mean() * 255 < 1.0


def test_amount_premultiplied_and_bits():
    image, alpha, _ = composite()
    raw = cutout.make_cutout(image, alpha, decontaminate=0.0)
    assert raw.dtype == np.uint8 and raw.shape == image.shape[:2] + (4,)
    assert np.array_equal(raw[..., :3], image)  # amount 0: the raw colours
    full = cutout.make_cutout(image, alpha, decontaminate=1.0)
    half = cutout.make_cutout(image, alpha, decontaminate=0.5)
    soft = (alpha > 0.05) & (alpha < 0.95)
    d_full = np.abs(full[..., :3].astype(int) - image).mean()
    d_half = np.abs(half[..., :3].astype(int) - image).mean()
    assert 0 < d_half < d_full
    assert not np.array_equal(full[soft][:, :3], image[soft])
    pre = cutout.make_cutout(image, alpha, premultiplied=True)
    assert (pre[..., :3].astype(int) <= pre[..., 3:4].astype(int) + 1).all()
    wide = cutout.make_cutout(image.astype(np.uint16) * 257, alpha)
    assert wide.dtype == np.uint16
    assert np.abs(wide[..., 3].astype(float) / 65535 - alpha).max() < 1e-4
    with pytest.raises(ValueError, match="decontaminate"):
        cutout.make_cutout(image, alpha, decontaminate=1.5)
    with pytest.raises(ValueError, match="alpha is"):
        cutout.make_cutout(image, alpha[:10])


def _read_png16(path: Path) -> np.ndarray:
    data = path.read_bytes()
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
            assert body[8:10] == bytes([16, 6])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * 8)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].copy().view(">u2").reshape(h, w, 4).astype(np.uint16)


def test_16_bit_png_with_icc_and_params(tmp_path):
    image, alpha, _ = composite(size=32)
    wide = image.astype(np.uint16) * 257
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgba = cutout.make_cutout(wide, alpha)
    out = cutout_files.write_cutout(tmp_path / "c16.png", rgba, icc, {"decontaminate": 1.0})
    assert np.array_equal(_read_png16(out), rgba)
    assert cutout_files.read_icc(out) == icc
    assert cutout_files.read_params(out) == {"decontaminate": 1.0}
    with Image.open(out) as im:  # a standard reader opens it too
        assert im.size == (32, 32) and "A" in im.getbands()
    out8 = cutout_files.write_cutout(tmp_path / "c8.png", cutout.make_cutout(image, alpha), icc, {"x": 1})
    assert cutout_files.read_icc(out8) == icc and cutout_files.read_params(out8) == {"x": 1}
    with pytest.raises(ValueError, match="use .png or .tif"):
        cutout_files.write_cutout(tmp_path / "c.jpg", rgba)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c16.png", "c8.png"]  # no temp files


def test_finish_applies_edges_and_reuses_a_foreground():
    image, alpha, _ = composite()
    a1, c1 = cutout.finish(image, alpha, edges={"feather": 4})
    assert not np.allclose(a1, alpha)
    fg = cutout.estimate_foreground(image, np.rint(alpha * 65535.0) / 65535.0)  # finish's 16-bit grid
    a2, c2 = cutout.finish(image, alpha, edges={"feather": 4}, foreground=fg)
    assert np.array_equal(a1, a2) and np.array_equal(c1, c2)


def test_cli_rgba_is_the_cutout_path_with_icc_and_16_bit(tmp_path, tiny_weights):
    rng = np.random.default_rng(0)
    h, w = 40, 48
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = tmp_path / "img.png"
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(img, icc_profile=icc)
    tri = tmp_path / "tri.png"
    t = np.full((h, w), 128, np.uint8)
    t[:8], t[-8:] = 0, 255
    Image.fromarray(t).save(tri)
    out, cut = tmp_path / "a.png", tmp_path / "c.png"
    assert main(["refine", str(img), "--trimap", str(tri), "-o", str(out), "--rgba", str(cut),
                 "--weights", str(tiny_weights), "--steps", "1", "-q", "--feather", "2"]) == 0
    alpha = np.array(Image.open(out)).astype(np.float32) / 255
    got = np.array(Image.open(cut))
    assert cutout_files.read_icc(cut) == icc
    params = cutout_files.read_params(cut)
    assert params["edges"]["feather"] == 2 and params["decontaminate"] == 1.0 and params["seed"] == 0
    # the CLI's cut-out is exactly make_cutout(image, final alpha, F from the engine's matte):
    import diffmatte

    engine = diffmatte.load_engine(tiny_weights, device="cpu")
    raw = engine.refine(np.array(Image.open(img)), t, steps=1, seed=0)
    _, expect = cutout.finish(np.array(Image.open(img)), raw, edges={"feather": 2})
    assert np.array_equal(got, expect)
    assert np.abs(got[..., 3].astype(np.float32) / 255 - alpha).max() <= 1 / 255
    # bad values are refused before the model loads
    assert main(["refine", str(img), "--trimap", str(tri), "-o", str(tmp_path / "x.png"),
                 "--weights", str(tiny_weights), "--contrast", "150"]) == 2
