"""Synthetic composite generator, trimap styles and folder dataset."""
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from diffmatte.train import alpha_synth, trimaps
from diffmatte.train.folder_data import FolderMattingDataset, find_pairs
from diffmatte.train.photos import PhotoPool, find_photos
from diffmatte.io.images import trimap_to_unit
from diffmatte.train.synth import SynthMattingDataset, low_contrast_foreground, procedural_background


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(3)
    photos = [(procedural_background(96, rng) * 255).astype(np.uint8) for _ in range(3)]
    return PhotoPool(photos)


def test_sample_format_and_composite_equation(pool):
    ds = SynthMattingDataset(pool, size=64, seed=5)
    r = ds.raw(0)
    assert r["image"].shape == (64, 64, 3) and r["alpha"].shape == (64, 64)
    assert r["alpha"].min() >= 0 and r["alpha"].max() <= 1
    assert set(np.unique(r["trimap"])) <= {0, 128, 255}
    assert (r["trimap"] == 128).any()
    # I = fg * a + bg * (1 - a) up to sensor noise and 8-bit quantisation.
    a = r["alpha"][..., None]
    comp = r["fg"] * a + r["bg"] * (1 - a)
    assert np.abs(comp - r["image"]).mean() < 0.03
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["alpha"].shape == (1, 64, 64)
    assert set(np.unique(item["trimap"])) <= {0.0, 0.5, 1.0}


def test_samples_are_pure_functions_of_seed_and_index(pool):
    a = SynthMattingDataset(pool, size=48, seed=1)
    b = SynthMattingDataset(pool, size=48, seed=1)
    np.testing.assert_array_equal(a[7]["image"], b[7]["image"])
    assert not np.array_equal(a[7]["alpha"], a[8]["alpha"])


def test_alphas_have_partial_transparency_and_variety():
    rng = np.random.default_rng(0)
    fracs = []
    for _ in range(12):
        al = alpha_synth.random_alpha(64, rng)
        assert al.dtype == np.float32 and al.shape == (64, 64)
        fracs.append(((al > 0) & (al < 1)).mean())
    assert min(fracs) > 0
    assert max(fracs) - min(fracs) > 0.05  # not one fixed pattern


def test_strands_are_subpixel_and_semi_opaque():
    rng = np.random.default_rng(1)
    s = alpha_synth.strands(64, rng, None, "hair")
    assert s.max() > 0.2
    partial = (s > 0) & (s < 1)
    assert partial.sum() > (s >= 1).sum()  # thin strands mostly cover pixels partially


def test_trimap_styles_respect_ground_truth():
    rng = np.random.default_rng(2)
    alpha = alpha_synth.polar_blob(96, rng, center=(48, 48), radius=30)
    alpha = np.round(alpha * 255) / 255
    for fn in (trimaps.erosion_trimap, trimaps.dilation_trimap, trimaps.coarse_trimap):
        tri = fn(alpha, np.random.default_rng(4))
        assert set(np.unique(tri)) <= {0, 128, 255}
        # Known labels never contradict the ground truth.
        assert (alpha[tri == 255] >= 1 - 1e-4).all(), fn.__name__
        assert (alpha[tri == 0] <= 1e-4).all(), fn.__name__
        # Every partly transparent pixel is unknown.
        assert (tri[(alpha > 0.01) & (alpha < 0.99)] == 128).all(), fn.__name__


def test_product_trimap_is_the_products_band_and_respects_ground_truth():
    import trimap as tm

    rng = np.random.default_rng(3)
    alpha = alpha_synth.polar_blob(128, rng, center=(64, 64), radius=40)
    alpha = np.round(alpha * 255) / 255
    image = np.dstack([alpha * 0.9, alpha * 0.2 + 0.3, 1 - alpha]).astype(np.float32)
    for seed in range(4):
        tri = trimaps.product_trimap(alpha, np.random.default_rng(seed), image=image)
        assert set(np.unique(tri)) <= {0, 128, 255}
        assert (alpha[tri == 255] >= 1 - 1e-4).all()
        assert (alpha[tri == 0] <= 1e-4).all()
        assert (tri[(alpha > 0.01) & (alpha < 0.99)] == 128).all()
        # Wider than a thin dataset band: at least the product's minimum band around the edge.
        assert (tri == 128).sum() >= 2 * np.pi * 40 * 0.5 * tm.default_band(alpha.shape) * 0.6


def test_random_trimap_style_mix():
    alpha = alpha_synth.polar_blob(64, np.random.default_rng(5), center=(32, 32), radius=20)
    only_product = [trimaps.random_trimap(alpha, np.random.default_rng(i), 1.0, (0, 0, 0, 1)) for i in range(3)]
    assert all((t == 128).any() for t in only_product)
    for bad in ((1, 1), (1, -1, 1), (0, 0, 0), (1, 1, 1, 1, 1)):
        with pytest.raises(ValueError):
            trimaps.random_trimap(alpha, np.random.default_rng(0), 1.0, bad)


def test_trimap_mix_option_parses():
    from diffmatte.train.cli import _mix

    assert _mix("1,2,3") == [1.0, 2.0, 3.0, 0.0]
    assert _mix("0,0,0,1") == [0.0, 0.0, 0.0, 1.0]
    import argparse
    for bad in ("a,b,c", "1,2", "1,-1,1,1"):
        with pytest.raises(argparse.ArgumentTypeError):
            _mix(bad)


def test_trimap_to_unit_thresholds():
    t = np.array([0, 84, 85, 128, 169, 170, 255], np.uint8)
    np.testing.assert_array_equal(trimap_to_unit(t), [0, 0, 0.5, 0.5, 0.5, 1, 1])


def test_folder_dataset_comp1k_layout(tmp_path, pool):
    (tmp_path / "fg").mkdir()
    (tmp_path / "alpha").mkdir()
    rng = np.random.default_rng(0)
    alpha = (alpha_synth.polar_blob(80, rng, center=(40, 40), radius=25) * 255).astype(np.uint8)
    Image.fromarray(alpha).save(tmp_path / "alpha" / "cat.png")
    Image.fromarray(np.full((80, 80, 3), 200, np.uint8)).save(tmp_path / "fg" / "cat.png")
    Image.fromarray(alpha).save(tmp_path / "alpha" / "orphan.png")  # no fg: ignored
    pairs, is_fg = find_pairs(tmp_path)
    assert is_fg and [p[0].stem for p in pairs] == ["cat"]
    ds = FolderMattingDataset(tmp_path, pool, size=64, seed=0)
    item = ds[3]
    assert item["image"].shape == (3, 64, 64) and item["alpha"].shape == (1, 64, 64)
    assert (item["trimap"] == 0.5).any()


def test_folder_dataset_errors(tmp_path, pool):
    with pytest.raises(ValueError, match="alpha"):
        FolderMattingDataset(tmp_path, pool)
    (tmp_path / "alpha").mkdir()
    with pytest.raises(ValueError, match="fg/"):
        FolderMattingDataset(tmp_path, pool)


def test_photo_pool_skips_unusable_files(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 140, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((120, 140, 3), np.uint8)).save(tmp_path / "flat.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    assert len(find_photos([tmp_path])) == 3
    p = PhotoPool.from_dirs([tmp_path])
    assert len(p) == 1
    crop = p.crop(np.random.default_rng(0), 32)
    assert crop.shape == (32, 32, 3) and 0 <= crop.min() and crop.max() <= 1
    with pytest.raises(ValueError, match="no usable photos"):
        PhotoPool.from_dirs([tmp_path / "nothing"])


def test_low_contrast_foreground_stays_close_to_the_local_background():
    rng = np.random.default_rng(0)
    bg = np.random.default_rng(1).random((64, 64, 3)).astype(np.float32)
    texture = np.random.default_rng(2).random((64, 64, 3)).astype(np.float32)
    fg = low_contrast_foreground(bg, texture, rng)
    assert fg.shape == bg.shape and fg.dtype == np.float32
    assert fg.min() >= 0 and fg.max() <= 1
    local = ndi.gaussian_filter(bg, (10, 10, 0))
    # Shift <= 0.15 plus at most a quarter of the texture's spread, far below bg's spread.
    assert np.abs(fg - local).mean() < 0.2
    assert np.abs(fg - bg).mean() < np.abs(texture - bg).mean()
