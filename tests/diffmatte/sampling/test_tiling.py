"""Band-limited tiled inference (#11): geometry, exactness, seams, reuse, budget, progress."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch

import diffmatte
from diffmatte.diffusion import ddim_sample
from diffmatte.engine import cpu_bf16_supported
from diffmatte.errors import Cancelled
from diffmatte.io.images import to_float_rgb, to_trimap
from diffmatte.sampling.memory import MemoryBudgetError, parse_bytes
from diffmatte.sampling.tiling import plan_tiles


def _band_inputs(h=256, w=384, seed=0, width=10):
    """A textured photo-like image with a thin unknown band along a wavy contour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    contour = h * 0.5 + h * 0.2 * np.sin(xx / w * 5.0)
    image = (rng.integers(0, 60, (h, w, 3)) + np.where((yy < contour)[..., None], [180, 120, 60], [20, 60, 120]))
    trimap = np.where(yy < contour, 255, 0).astype(np.uint8)
    trimap[np.abs(yy - contour) < width] = 128
    return np.clip(image, 0, 255).astype(np.uint8), trimap


def test_plan_skips_known_tiles_and_weights_partition_unity():
    _, trimap = _band_inputs()
    unknown = trimap == 128
    plan = plan_tiles(unknown, tile=128, halo=64, blend=16)
    hp, wp = plan.padded
    assert 0 < len(plan.tiles) < plan.n_cores  # some tiles are known only: never decoded
    for t in plan.tiles:
        y0, y1, x0, x1 = t.out
        assert unknown[y0:y1, x0:x1].any()
    # Every unknown pixel is fully covered by active tiles' weights (nothing left to the
    # known-value fill), and with all tiles active the weights sum to exactly 1.
    cover = np.zeros((hp, wp), np.float32)
    for t in plan.tiles:
        y0, y1, x0, x1 = t.out
        cover[y0:y1, x0:x1] += plan.weight(t)[0, 0].numpy()
    assert (cover[:unknown.shape[0], :unknown.shape[1]][unknown] == 1).all()
    full = plan_tiles(np.ones_like(unknown), tile=128, halo=64, blend=16, min_tile=128)
    total = np.zeros(full.padded, np.float32)
    for t in full.tiles:
        y0, y1, x0, x1 = t.out
        total[y0:y1, x0:x1] += full.weight(t)[0, 0].numpy()
    assert len(full.tiles) > 4 and (total == 1).all()


def test_whole_image_tile_is_bit_identical_to_the_reference_sampler(tiny_engine):
    """One tile over the image reproduces the plain whole-image DDIM loop bit for bit."""
    image, trimap = _band_inputs(96, 128)
    noise = np.random.default_rng(1).standard_normal(trimap.shape).astype(np.float32)
    got = tiny_engine.refine(image, trimap, steps=3, noise=noise, force_fg=False, tile_size=0)
    m = tiny_engine.model
    with torch.inference_mode():
        c = m.condition(torch.from_numpy(to_float_rgb(image)).permute(2, 0, 1)[None],
                        torch.from_numpy(to_trimap(trimap))[None, None])
        c.cond = c.cond.contiguous(memory_format=torch.channels_last)
        c.backbone_in = c.backbone_in.contiguous(memory_format=torch.channels_last)
        f = m.encode(c).contiguous(memory_format=torch.channels_last)
        out = ddim_sample(lambda x, t: torch.sigmoid(m.decode(f, c, x, t).float()) * 2 - 1,
                          torch.from_numpy(noise)[None, None], 3, tiny_engine.schedule)
    ref = out[0, 0].clamp(0, 1).numpy()
    unknown = trimap == 128
    assert np.array_equal(got[unknown], ref[unknown])
    # Automatic mode at this size is the whole-image path too.
    assert np.array_equal(tiny_engine.refine(image, trimap, steps=3, noise=noise, force_fg=False), got)


@pytest.mark.slow
@pytest.mark.parametrize("sparse", ["1", "0"])
def test_tiled_result_matches_whole_image(tiny_engine, monkeypatch, sparse):
    """Sparse tiles (the default) and dense tiles (engine.sparse = False, DIFFMATTE_SPARSE=0)
    both agree with the whole-image path; dense tiles skip the cores that hold no unknown pixel."""
    monkeypatch.setattr(tiny_engine, "sparse", sparse == "1")
    image, trimap = _band_inputs()
    whole = tiny_engine.refine(image, trimap, steps=3, seed=0, tile_size=0)
    tiled = tiny_engine.refine(image, trimap, steps=3, seed=0, tile_size=64)
    stats = tiny_engine.last_stats
    assert stats.tiles > 1 and stats.sparse == (sparse == "1")
    if sparse == "0":
        assert stats.tiles < stats.cores
    unknown = trimap == 128
    diff = np.abs(tiled - whole)[unknown]
    assert diff.mean() < 2e-3 and diff.max() < 0.05, (diff.mean(), diff.max())
    assert (tiled[trimap == 0] == 0).all() and (tiled[trimap == 255] == 1).all()


@pytest.mark.slow
@pytest.mark.parametrize("sparse", ["1", "0"])
def test_smooth_gradient_has_no_seam_at_tile_borders(monkeypatch, sparse):
    """Default model, alpha = horizontal ramp: the tiled matte steps no more than 1/255
    beyond the whole-image matte's own largest step, at any tile border (sparse tiles,
    the default, use cores of twice tile_size: 128 px here)."""
    monkeypatch.setenv("DIFFMATTE_SPARSE", sparse)
    engine = diffmatte.load_engine("default", device="cpu")
    if engine.model.passes_prior_through():
        # A prior model whose correction is zero never runs the sampler (its x0 is the
        # prior): give its fusion output small weights so the tiled sampler runs with the
        # trained encoder and decoder features (a seam would show at the tile borders).
        with torch.no_grad():
            torch.manual_seed(0)
            engine.model.fusion.out.weight.normal_(0, 0.05)
        assert not engine.model.passes_prior_through()
    h, w = 160, 320
    ramp = np.tile(np.linspace(0.0, 1.0, w, dtype=np.float32), (h, 1))
    fg, bg = np.array([0.95, 0.85, 0.7]), np.array([0.1, 0.2, 0.35])
    yy = np.linspace(0, 1, h)[:, None, None]
    image = ramp[..., None] * fg + (1 - ramp[..., None]) * (bg + 0.1 * yy)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:, :8] = 0
    trimap[:, -8:] = 255
    whole = engine.refine(image, trimap, steps=4, seed=0, tile_size=0)
    tiled = engine.refine(image, trimap, steps=4, seed=0, tile_size=64)
    assert engine.last_stats.tiles >= (6 if sparse == "1" else 8) and engine.last_stats.sparse == (sparse == "1")
    own = max(np.abs(np.diff(whole, axis=1)).max(), np.abs(np.diff(whole, axis=0)).max())
    for axis, n in ((1, w), (0, h)):
        steps = np.abs(np.diff(tiled, axis=axis))
        borders = [b - 1 for b in range(32, n, 32)]  # every possible core edge (32-px grid)
        at_borders = steps.take(borders, axis=axis)
        assert at_borders.max() <= own + 1 / 255, (axis, at_borders.max(), own)


@pytest.mark.slow
def test_incremental_rerun_decodes_only_tiles_near_the_edit(tiny_engine):
    image, trimap = _band_inputs(256, 1024)
    tiny_engine.cache.clear()
    first = tiny_engine.refine(image, trimap, steps=4, seed=3, tile_size=64)
    s1 = tiny_engine.last_stats
    assert s1.reused == 0 and s1.decoded == s1.tiles * 4
    again = tiny_engine.refine(image, trimap, steps=4, seed=3, tile_size=64)
    s2 = tiny_engine.last_stats
    assert s2.decoded == 0 and s2.reused == s1.decoded and np.array_equal(again, first)
    edited = trimap.copy()
    y = int(np.argwhere(trimap[:, 40] == 128)[0, 0])
    edited[y:y + 6, 36:44] = 255  # a small brush stroke on the band
    inc = tiny_engine.refine(image, edited, steps=4, seed=3, tile_size=64)
    s3 = tiny_engine.last_stats
    assert 0 < s3.decoded < s3.tile_steps // 2, (s3.decoded, s3.tile_steps)
    tiny_engine.cache.clear()
    fresh = tiny_engine.refine(image, edited, steps=4, seed=3, tile_size=64)
    assert tiny_engine.last_stats.reused == 0
    assert np.abs(inc - fresh).max() < 1e-4


def test_memory_budget_refuses_up_front(tiny_engine):
    image, trimap = _band_inputs()
    seen = []
    with pytest.raises(MemoryBudgetError, match="needs about .* GB .* allows"):
        tiny_engine.refine(image, trimap, steps=2, max_memory="1MB", progress=lambda d, t: seen.append(d))
    assert seen == []  # refused before any work
    assert tiny_engine.refine(image, trimap, steps=1, max_memory="2G").shape == trimap.shape
    assert parse_bytes("1.5GiB") == int(1.5 * 2 ** 30) and parse_bytes("512M") == 512 * 2 ** 20
    assert parse_bytes(1000) == 1000
    for bad in ("lots", "-1G", 0):
        with pytest.raises(ValueError):
            parse_bytes(bad)


def test_progress_counts_tile_steps_and_cancel_stops_between_tiles(tiny_engine):
    image, trimap = _band_inputs()
    calls = []
    tiny_engine.refine(image, trimap, steps=3, seed=0, samples=2, tile_size=64,
                       progress=lambda d, t: calls.append((d, t)))
    s = tiny_engine.last_stats
    total = s.encoder_tiles + s.tiles * 3 * 2
    assert calls[-1] == (total, total) and [d for d, _ in calls] == list(range(1, total + 1))
    cancel = threading.Event()
    done = []

    def stop_after_three(d, t):
        done.append(d)
        if len(done) == s.encoder_tiles + 3:
            cancel.set()
    with pytest.raises(Cancelled):
        tiny_engine.refine(image, trimap, steps=3, seed=0, tile_size=64, cancel=cancel, progress=stop_after_three)
    assert len(done) == s.encoder_tiles + 3


def test_bad_tile_size_is_refused(tiny_engine):
    image, trimap = _band_inputs(64, 64)
    with pytest.raises(ValueError, match="tile_size"):
        tiny_engine.refine(image, trimap, steps=1, tile_size=100)


@pytest.mark.skipif(not cpu_bf16_supported(), reason="CPU without bf16 kernels")
def test_bf16_on_cpu_is_close_to_fp32(tiny_weights):
    image, trimap = _band_inputs(96, 128)
    fp32 = diffmatte.load_engine(tiny_weights, device="cpu", precision="fp32").refine(image, trimap, steps=2, seed=0)
    bf16 = diffmatte.load_engine(tiny_weights, device="cpu", precision="bf16").refine(image, trimap, steps=2, seed=0)
    unknown = trimap == 128
    assert np.abs(bf16 - fp32)[unknown].mean() < 0.02
    assert diffmatte.load_engine(tiny_weights, device="cpu", precision="auto").precision == "bf16"
    assert diffmatte.load_engine(tiny_weights, device="cpu").precision == "bf16"  # auto is the default


@pytest.mark.slow
def test_batched_tiles_match_one_by_one(tiny_engine):
    """Same-shaped tiles decoded in one call (the GPU setting) give the one-by-one result."""
    from diffmatte.engine import _null
    from diffmatte.sampling.tile_cache import TileCache
    from diffmatte.sampling.tiled import TiledSampler, TileSettings

    image, trimap = _band_inputs(256, 512)
    img, tri = to_float_rgb(image), to_trimap(trimap)
    sampler = TiledSampler(tiny_engine.model, torch.device("cpu"), tiny_engine.schedule, _null, TileCache(0), "t")

    def start():
        return torch.randn((1, 1) + tri.shape, generator=torch.Generator().manual_seed(0))
    out = {}
    for batch in (1, 4):
        settings = TileSettings(tile=64, halo=64, encoder_tile=256, encoder_halo=128, batch=batch, sparse=False)
        with torch.inference_mode():
            out[batch], stats = sampler.run(img, tri, None, [start], 2, settings)
        assert stats.decoded == stats.tiles * 2 and stats.encoder_tiles > 1
    assert np.abs(out[1] - out[4]).max() < 1e-5


def test_cli_memory_budget_and_tile_options(tiny_weights, tmp_path, capsys, monkeypatch):
    from PIL import Image

    from diffmatte.cli import main

    monkeypatch.delenv("DIFFMATTE_MAX_MEMORY", raising=False)
    monkeypatch.delenv("DIFFMATTE_TILE_SIZE", raising=False)
    image, trimap = _band_inputs(96, 160)
    Image.fromarray(image).save(tmp_path / "im.png")
    Image.fromarray(trimap).save(tmp_path / "tri.png")
    base = ["refine", str(tmp_path / "im.png"), "--trimap", str(tmp_path / "tri.png"), "--weights", str(tiny_weights),
            "--device", "cpu", "--steps", "2", "-o", str(tmp_path / "a.png")]
    try:
        assert main(base + ["--max-memory", "1M"]) == 2
        assert "needs about" in capsys.readouterr().err and not (tmp_path / "a.png").exists()
        assert main(base + ["--tile-size", "100"]) == 2
        assert "--tile-size" in capsys.readouterr().err
        assert main(base + ["--tile-size", "64", "--max-memory", "2G"]) == 0
        assert "tile-steps" in capsys.readouterr().err and (tmp_path / "a.png").is_file()
    finally:  # main() exports the options for engines loaded later in this process
        os.environ.pop("DIFFMATTE_MAX_MEMORY", None)
        os.environ.pop("DIFFMATTE_TILE_SIZE", None)
