"""Information-flow matting (diffmatte/prior/information_flow.py), the default model's prior."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffmatte.prior.flows import lle_weights
from diffmatte.prior.information_flow import expand_known
from diffmatte.prior.solve import information_flow_alpha
from diffmatte.modeling import build_model
from diffmatte.prior.solve import solve_prior
from diffmatte.modeling.variants import get_config
from test_prior import two_colour as _two_colour


def test_lle_weights_equal_the_regularised_k_by_k_solve():
    """The Woodbury form (a 3 x 3 solve per pixel) against the K x K system it replaces,
    including neighbours identical to the pixel (D = 0: uniform weights) and rank-1 ones."""
    rng = np.random.default_rng(2)
    n, k, reg = 300, 20, 1e-3
    fp = rng.random((n, 3))
    fq = fp[:, None, :] + 0.05 * rng.standard_normal((n, k, 3))
    fq[:10] = fp[:10, None, :]
    fq[10:20, :, 1:] = fp[10:20, None, 1:]
    d = fq - fp[:, None, :]
    gram = d @ d.transpose(0, 2, 1)
    tr = np.trace(gram, axis1=1, axis2=2)
    gram += ((reg * tr + 1e-9) / k)[:, None, None] * np.eye(k)
    want = np.linalg.solve(gram, np.ones((n, k, 1)))[..., 0]
    want /= want.sum(1, keepdims=True)
    got = lle_weights(fp, fq, reg=reg, chunk=64)   # several chunks
    np.testing.assert_allclose(got, want, atol=1e-10)
    np.testing.assert_allclose(got[:10], 1.0 / k)


def test_two_colour_composite_is_recovered():
    img, tri, alpha = _two_colour()
    out = information_flow_alpha(img, tri)
    unknown = tri == 0.5
    assert out.dtype == np.float32 and out.shape == tri.shape
    assert np.abs(out - alpha)[unknown].mean() < 0.02
    assert (out[tri == 0] == 0).all() and (out[tri == 1] == 1).all()


def test_single_precision_searches_give_the_double_precision_alpha(monkeypatch):
    # The colour-mixture and intra-U searches run in float32: a neighbour may swap with one
    # a rounding away, which must not move the matte (dev photos: mean difference ~1e-6).
    import diffmatte.prior.flows as flows

    rng = np.random.default_rng(5)
    img, tri, _ = _two_colour(96, 128)
    img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)
    single = information_flow_alpha(img, tri)
    monkeypatch.setattr(flows, "SEARCH_DTYPE", np.float64)
    double = information_flow_alpha(img, tri)
    d = np.abs(single - double)[tri == 0.5]
    assert d.mean() < 1e-4 and d.max() < 2e-2


def test_uint8_trimap_gives_the_same_alpha():
    img, tri, _ = _two_colour()
    a = information_flow_alpha(img, tri)
    b = information_flow_alpha((img * 255).round().astype(np.uint8) / 255.0,
                               np.round(tri * 255).astype(np.uint8))
    assert np.abs(a - b).max() < 0.02


def test_a_hole_far_from_the_band_is_found_by_colour():
    # Background seen through a hole inside the unknown region, 20+ px from any known
    # background pixel: the non-local flows must still call it background, where purely
    # local smoothness leaves a solid blob (closed_form_prior gives 1.0 there).
    h, w = 64, 64
    img = np.zeros((h, w, 3)) + np.array([0.85, 0.2, 0.2])   # red foreground
    img[:, :8] = [0.1, 0.5, 0.9]                             # blue background strip (known)
    img[28:36, 36:44] = [0.1, 0.5, 0.9]                      # blue hole, inside the band
    tri = np.full((h, w), 0.5)
    tri[:, :6] = 0.0
    tri[:, -4:] = 1.0
    out = information_flow_alpha(img, tri)
    assert out[30:34, 38:42].max() < 0.1
    assert out[10:20, 50:58].min() > 0.9


def test_a_region_of_colours_no_known_pixel_has_does_not_turn_transparent():
    """A blue flag held by a sand-coloured subject on green, all inside the unknown band
    (issue #27): no known pixel has its colour, so the K-to-U flow's mix of the nearest
    known colours is an extrapolation and must not decide it. The flag then follows the
    subject around it (it used to come out at alpha 0.09); the subject's edge is solved as
    before, and a hole whose colour the known background has still turns transparent
    (the test above)."""
    from scipy import ndimage as ndi

    n = 160
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:n, 0:n]
    d = np.hypot(yy - n / 2, xx - n / 2) - n / 3
    alpha = np.clip(0.5 - d / 3, 0, 1)
    flag = (np.abs(yy - n / 2 + 10) < 14) & (np.abs(xx - n / 2 - 8) < 22)
    fg = np.array([0.8, 0.7, 0.5]) + 0.04 * np.sin(xx / 5)[..., None]
    fg = np.where(flag[..., None], np.array([0.1, 0.2, 0.85]), fg)
    bg = np.array([0.2, 0.45, 0.2]) + 0.04 * np.cos(yy / 6)[..., None]
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg + rng.normal(0, 0.01, (n, n, 3))
    unknown = (np.abs(d) <= 6) | ndi.binary_dilation(flag, iterations=4)
    tri = np.where(unknown, 0.5, np.where(d < 0, 1.0, 0.0))
    out = information_flow_alpha(img.clip(0, 1).astype(np.float32), tri)
    assert out[flag].mean() > 0.95
    edge = unknown & ~ndi.binary_dilation(flag, iterations=4)
    assert np.abs(out - alpha)[edge].mean() < 0.05


def test_known_region_expansion():
    img = np.zeros((20, 20, 3)) + 0.5
    img[:, 10:] = 0.9
    label = np.full((20, 20), -1, np.int8)
    label[:, :2] = 0
    label[:, -2:] = 1
    out = expand_known(img, label)
    assert (out[:, 2:9] == 0).all()          # same colour, within 8 px of background
    assert (out[:, 10:18] == 1).all()        # same colour, within reach of foreground
    assert (out[:, 9] == -1).all() or (out[:, 9] == 0).all()
    # a different colour never takes the label
    img2 = img.copy()
    img2[:, 2:9] = 0.1
    assert (expand_known(img2, label)[:, 2:9] == -1).all()


def test_known_region_expansion_split_between_threads_gives_the_same_labels(monkeypatch):
    import diffmatte.prior.information_flow as ifm

    rng = np.random.default_rng(3)
    # a noisy two-colour photo with a wide band: tens of thousands of candidates
    img = np.where(rng.random((300, 300, 1)) < 0.5, 0.2, 0.8) + rng.normal(0, 0.01, (300, 300, 3))
    label = np.full((300, 300), -1, np.int8)
    label[:, :60], label[:, 240:] = 0, 1
    label[rng.random((300, 300)) < 0.05] = 1
    split = []
    real = ifm._closest_labels
    monkeypatch.setattr(ifm, "_closest_labels", lambda *a, **k: split.append(len(a[2])) or real(*a, **k))
    one = expand_known(img, label, threads=1)
    two = expand_known(img, label, threads=2)
    assert len(split) == 3 and split[0] > ifm.SPLIT_MIN and split[1] + split[2] == split[0]
    assert (one == two).all() and (one != label).sum() > 1000


def test_degenerate_trimaps():
    img = np.random.default_rng(0).random((16, 16, 3))
    all_known = np.zeros((16, 16))
    all_known[:, 8:] = 1
    np.testing.assert_array_equal(information_flow_alpha(img, all_known), all_known)
    only_fg = np.full((16, 16), 0.5)
    only_fg[:, -3:] = 1
    a = information_flow_alpha(img, only_fg)
    assert np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1
    assert (information_flow_alpha(img, np.full((16, 16), 0.5)) == 0.5).all()
    with pytest.raises(ValueError, match="H x W x 3"):
        information_flow_alpha(img[..., 0], all_known)
    with pytest.raises(ValueError, match="trimap shape"):
        information_flow_alpha(img, all_known[:8])


def test_untrained_ifm_model_returns_the_prior():
    img, tri, _ = _two_colour(32, 40)
    image = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    trimap = torch.from_numpy(tri)[None, None].float()
    prior = solve_prior("ifm", image, trimap)
    model = build_model(get_config("lite_ifm")).eval()
    for p in list(model.fusion.out.parameters()) + list(model.decoder.matting_head.matting_convs[3].parameters()):
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        logit = model(image, trimap, torch.zeros_like(trimap), torch.tensor([0.5]), prior=prior)
    got = torch.sigmoid(logit)
    np.testing.assert_allclose(got.numpy(), prior.clamp(1e-3, 1 - 1e-3).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="unknown prior"):
        solve_prior("nope", image, trimap)


def test_ifm_prior_runs_with_denormals_flushed_and_restores_the_mode():
    # Training sets torch.set_flush_denormal(True); scipy's KD-tree build recursed without
    # end under it on a training crop (a segfault found with gdb), so the prior turns the
    # mode off around the solver and back on afterwards.
    from diffmatte.prior.solve import denormals_flushed

    img, tri, _ = _two_colour(24, 32)
    image = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    trimap = torch.from_numpy(tri)[None, None].float()
    assert not denormals_flushed()
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        assert denormals_flushed()
        out = solve_prior("ifm", image, trimap)
        assert denormals_flushed()
    finally:
        torch.set_flush_denormal(False)
    assert torch.isfinite(out).all()


def _spy_solves(monkeypatch):
    import diffmatte.prior.information_flow as ifm

    calls = []
    real = ifm._solve

    def spy(im, lab, check=lambda f: None, **kw):
        calls.append((lab.shape, int((lab < 0).sum()), kw.get("pinned") is not None))
        return real(im, lab, check, **kw)

    monkeypatch.setattr(ifm, "_solve", spy)
    return calls


def test_a_band_too_large_is_solved_in_full_resolution_windows(monkeypatch):
    import diffmatte.prior.information_flow as ifm
    import diffmatte.prior.windows as ift

    img, tri, alpha = _two_colour(96, 160)
    whole = information_flow_alpha(img, tri)
    monkeypatch.setattr(ifm, "MAX_UNKNOWN", 5000)        # 14,208 unknown pixels: windows
    monkeypatch.setattr(ift, "COARSE_UNKNOWN", 4000)     # coarse solve at half resolution
    monkeypatch.setattr(ift, "TILE_CORE", 64)
    monkeypatch.setattr(ift, "TILE_MARGIN", 16)
    calls = _spy_solves(monkeypatch)
    fracs = []
    tiled = information_flow_alpha(img, tri, check=fracs.append)
    assert calls[0][0] == (48, 80) and not calls[0][2]   # the coarse solve, half resolution
    windows = calls[1:]
    assert len(windows) == 2 * 3 and all(p for _, _, p in windows)
    # memory bound: no window holds more than (core + 2 margin)^2 pixels
    assert all(shape[0] <= 96 and shape[1] <= 96 for shape, _, _ in windows)
    unknown = tri == 0.5
    assert np.abs(tiled - whole)[unknown].mean() < 2e-3
    assert np.abs(tiled - alpha)[unknown].mean() < 0.02
    assert (tiled[tri == 0] == 0).all() and (tiled[tri == 1] == 1).all()
    assert fracs == sorted(fracs) and 0 <= fracs[0] and fracs[-1] <= 1 and fracs[-1] > 0.9


@pytest.mark.parametrize("parallel", [1, 2])
def test_windows_solved_side_by_side_run_their_stages_in_one_thread(monkeypatch, parallel):
    # Two windows at once, each with its flows and CG in two threads, kept four or more
    # threads busy on two cores (24 MP, 30 % band: 206.8 s against 193.2 s with one each).
    import diffmatte.prior.information_flow as ifm
    import diffmatte.prior.windows as ift

    img, tri, _ = _two_colour(96, 160)
    monkeypatch.setattr(ift, "PARALLEL_WINDOWS", parallel)
    seen = []
    real = ifm._solve

    def spy(im, lab, check=lambda f: None, **kw):
        seen.append((kw.get("pinned") is not None, kw.get("threads")))
        return real(im, lab, check, **kw)

    monkeypatch.setattr(ifm, "_solve", spy)
    out = information_flow_alpha(img, tri, tile=64)
    coarse, windows = seen[0], seen[1:]
    assert not coarse[0] and coarse[1] is None          # the coarse solve runs alone: STAGE_THREADS
    assert windows and all(pinned for pinned, _ in windows)
    assert {t for _, t in windows} == ({1} if parallel > 1 else {None})
    monkeypatch.setattr(ifm, "_solve", real)
    assert np.abs(out - information_flow_alpha(img, tri, tile=64)).max() < 1e-6


def test_windows_cross_fade_without_seams():
    # A smooth ramp crossing window borders (every 32 px): the tiled alpha's steps are
    # those of the whole solve's, within 1/255.
    img, tri, _ = _two_colour(64, 200)
    yy, xx = np.mgrid[0:64, 0:200]
    alpha = np.clip((xx - 6) / 188, 0, 1)
    fg, bg = np.array([0.9, 0.3, 0.2]), np.array([0.1, 0.4, 0.8])
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    whole = information_flow_alpha(img, tri, tile=0)
    tiled = information_flow_alpha(img, tri, tile=32)
    step_w, step_t = np.abs(np.diff(whole, axis=1)), np.abs(np.diff(tiled, axis=1))
    assert (step_t - step_w).max() <= 1 / 255
    assert np.abs(tiled - whole).max() < 0.01


def test_windows_with_no_known_pixel_still_get_the_bands_information(monkeypatch):
    # The middle windows of a band 180 px wide hold no known pixel at all: the coarse
    # alpha on their rims and the band's known pixels (K-to-U) must still anchor them
    # (with window-local K-to-U sources this ramp came out S-shaped, errors up to 0.08).
    import diffmatte.prior.windows as ift

    monkeypatch.setattr(ift, "TILE_MARGIN", 16)
    h, w = 40, 200
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = np.clip((xx - 10) / 180, 0, 1)
    fg, bg = np.array([0.9, 0.3, 0.2]), np.array([0.1, 0.4, 0.8])
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    tri = np.full((h, w), 0.5)
    tri[:, :10] = 0.0
    tri[:, -10:] = 1.0
    calls = _spy_solves(monkeypatch)
    out = information_flow_alpha(img, tri, tile=32)
    assert any(n == shape[0] * shape[1] for shape, n, pinned in calls[1:])  # a window with no known pixel
    assert np.abs(out - alpha)[tri == 0.5].mean() < 0.02


def test_window_core_must_hold_the_cross_fade():
    img, tri, _ = _two_colour(32, 40)
    with pytest.raises(ValueError, match="at least 32"):
        information_flow_alpha(img, tri, tile=16)


def test_engine_skips_the_sampler_for_a_pass_through_prior_model():
    # A prior model whose correction layers are zero returns the prior at every step, so
    # the engine returns the prior without sampling; once a correction is non-zero the
    # sampler runs again.
    from diffmatte.engine import PRIOR_UNITS, Engine
    from diffmatte.prior.white_point import prior_matte

    img, tri, _ = _two_colour(32, 40)
    model = build_model(get_config("lite_ifm")).eval()
    for p in list(model.fusion.out.parameters()) + list(model.decoder.matting_head.matting_convs[3].parameters()):
        torch.nn.init.zeros_(p)
    assert model.passes_prior_through()
    assert not build_model(get_config("lite")).passes_prior_through()
    engine = Engine(model, torch.device("cpu"), "test")
    ticks, steps_seen = [], []
    out = engine.refine(img.astype(np.float32), tri, steps=5, seed=0, progress=lambda d, t: ticks.append((d, t)),
                        callback=lambda s: steps_seen.append((s.index, s.total)))
    prior = information_flow_alpha(img, tri)
    np.testing.assert_array_equal(out, prior_matte("ifm", prior))   # the prior with its white point
    # progress counts the prior's solve in PRIOR_UNITS, rising, ending at the total
    assert ticks[-1] == (PRIOR_UNITS, PRIOR_UNITS) and all(t == PRIOR_UNITS for _, t in ticks)
    assert [d for d, _ in ticks] == sorted(set(d for d, _ in ticks)) and len(ticks) >= 3
    assert steps_seen == [(5, 5)]
    with torch.no_grad():
        model.fusion.out.bias.fill_(0.5)   # a (silly) non-zero correction: every logit + 0.5
    assert not model.passes_prior_through()
    out2 = engine.refine(img.astype(np.float32), tri, steps=2, seed=0)
    unknown = tri == 0.5
    assert (out2[unknown] > prior[unknown] + 1e-3).mean() > 0.9


def test_cancel_stops_the_prior_solve():
    import threading

    from diffmatte.engine import Engine
    from diffmatte.errors import Cancelled

    img, tri, _ = _two_colour(32, 40)
    model = build_model(get_config("lite_ifm")).eval()
    for p in list(model.fusion.out.parameters()) + list(model.decoder.matting_head.matting_convs[3].parameters()):
        torch.nn.init.zeros_(p)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        Engine(model, torch.device("cpu"), "test").refine(img.astype(np.float32), tri, steps=2, cancel=cancel)
    calls = []
    information_flow_alpha(img, tri, check=calls.append)
    assert len(calls) >= 4      # between stages and inside CG
    assert all(0 <= f <= 1 for f in calls) and calls[0] == 0.0 and calls[-1] == 1.0


@pytest.mark.parametrize("tile", [0, 64])
def test_the_solve_reports_its_progress_in_small_rising_steps(monkeypatch, tile):
    """Issue #23: the prior is the default model's whole refine, so its progress is what a
    front end shows. Every stage reports (neighbour searches and weights in chunks, every CG
    iteration, every window): from 0.0 at once, never backwards, no big jump, 1.0 at the end."""
    import diffmatte.prior.flows as flows

    monkeypatch.setattr(flows, "QUERY_CHUNK", 2000)   # the chunking of a large photo, on a small one
    img, tri, _ = _two_colour(120, 160)
    calls = []
    alpha = information_flow_alpha(img, tri, check=calls.append, tile=tile)
    assert calls[0] == 0.0 and calls[-1] == 1.0
    assert all(b >= a for a, b in zip(calls, calls[1:]))
    assert len(set(calls)) >= 20
    assert max(b - a for a, b in zip(calls, calls[1:])) < 0.2
    monkeypatch.setattr(flows, "QUERY_CHUNK", 20_000)
    # the same matte (windows are summed in the order they finish: float32 rounding)
    np.testing.assert_allclose(alpha, information_flow_alpha(img, tri, tile=tile), atol=1e-6)


def test_the_solve_reports_its_set_up():
    """The known / unknown maps and the crop (a second or two at 24 MP) have a share of the
    solve of their own, reported before the solve's stages (issue #23: the bars sat still)."""
    from diffmatte.prior.solve import SETUP_SHARE

    img, tri, _ = _two_colour(32, 40)
    calls = []
    information_flow_alpha(img, tri, check=calls.append)
    assert calls[:3] == [0.0, SETUP_SHARE / 2, SETUP_SHARE] and min(calls[3:]) >= SETUP_SHARE


def test_the_engine_reports_the_prior_from_its_start():
    """A prior-only engine's ``progress(done, PRIOR_UNITS)`` starts at 0 (the front ends show
    "Solving the matte… 0 %" at once) and rises through many values to PRIOR_UNITS."""
    from diffmatte.engine import PRIOR_UNITS, Engine

    img, tri, _ = _two_colour(120, 160)
    model = build_model(get_config("lite_ifm")).eval()
    for p in list(model.fusion.out.parameters()) + list(model.decoder.matting_head.matting_convs[3].parameters()):
        torch.nn.init.zeros_(p)
    ticks = []
    Engine(model, torch.device("cpu"), "test").refine(img.astype(np.float32), tri, steps=10,
                                                      progress=lambda d, t: ticks.append(d))
    assert ticks[0] == 0 and ticks[-1] == PRIOR_UNITS and len(ticks) >= 20
    assert ticks == sorted(ticks)


def test_prior_memory_follows_one_solve_and_is_capped_for_windows():
    from diffmatte.sampling.memory import prior_bytes
    import diffmatte.prior.information_flow as ifm

    small, large = prior_bytes("ifm", 1000, 1000, 10_000), prior_bytes("ifm", 1000, 1000, 400_000)
    assert large - small == 2400 * 390_000
    # beyond one solve the peak is one window's, whatever the band's size
    import diffmatte.prior.windows as ift

    huge = prior_bytes("ifm", 6000, 4000, 7_000_000)
    assert huge == prior_bytes("ifm", 6000, 4000, ifm.MAX_UNKNOWN + 1)
    windows = ift.PARALLEL_WINDOWS * (ift.TILE_CORE + 2 * ift.TILE_MARGIN) ** 2
    from diffmatte.prior.memo import ENTRIES

    # plus the memo's kept solves (5 bytes per pixel each), which stay between refines
    kept = 5 * ENTRIES * 6000 * 4000
    assert huge == kept + 64 * 6000 * 4000 + 2400 * max(ift.COARSE_UNKNOWN, windows) < 4 * 2**30
    assert prior_bytes("", 1000, 1000, 10) == 0


def test_a_prior_solve_that_cannot_fit_is_refused_before_it_starts(monkeypatch):
    import diffmatte.prior.solve as ifm
    from diffmatte.engine import Engine
    from diffmatte.sampling.memory import MemoryBudgetError, prior_bytes

    img, tri, _ = _two_colour(64, 80)
    model = build_model(get_config("lite_ifm")).eval()
    engine = Engine(model, torch.device("cpu"), "test")
    n_params = sum(p.numel() for p in model.parameters())
    unknown = int((tri == 0.5).sum())
    budget = n_params * 4 + 52 * tri.size + prior_bytes("ifm", *tri.shape, unknown) // 2
    monkeypatch.setattr(ifm, "information_flow_alpha", lambda *a, **k: pytest.fail("the solve started"))
    with pytest.raises(MemoryBudgetError, match="ifm prior solve"):
        engine.refine(img.astype(np.float32), tri, steps=1, max_memory=budget)


def test_cancel_during_windows_stops_every_window(monkeypatch):
    import threading

    import diffmatte.prior.information_flow as ifm

    img, tri, _ = _two_colour(64, 200)
    solves = []
    real = ifm._solve
    monkeypatch.setattr(ifm, "_solve", lambda im, lab, check=None, **kw: solves.append(1) or real(im, lab, check, **kw))
    before = threading.active_count()

    def check(fraction: float) -> None:
        if len(solves) > 2:          # the coarse solve and a window have started
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        information_flow_alpha(img, tri, check=check, tile=32)
    assert len(solves) < 1 + 7       # not every window ran
    assert threading.active_count() == before   # no solve left running


@pytest.mark.parametrize("where", ["flows", "windows"])
def test_a_cancel_does_not_wait_for_a_silent_or_long_worker(monkeypatch, where):
    """Issue #23 (a Cancel in Krita took 13 s at 24 MP): the solving thread checks for cancel
    every RELAY_SECONDS / 0.25 s whether or not a worker reported (the cancel is seen while
    a window is silent), and a flow's worker stage ends at its next report once the solve is
    cancelled, instead of running to its end."""
    import threading
    import time

    import diffmatte.prior.information_flow as ifm
    import diffmatte.prior.windows as win

    img, tri, _ = _two_colour(64, 120)
    started = threading.Event()
    seen = []

    def long_worker(rg, report):              # 20 s of work, reporting every 10 ms
        started.set()
        for i in range(2000):
            report(i / 2000)
            time.sleep(0.01)
        raise AssertionError("the worker ran to its end")

    def silent_window(image, label, coarse, w, progress, torch_cg=None):
        started.set()
        time.sleep(2.0)                         # a silent stretch (the samples' trees, an assembly)
        progress(0.0)
        raise AssertionError("a window solve went on after the cancel")

    if where == "flows":
        monkeypatch.setattr(ifm, "local_and_intra_u", long_worker)
    else:
        monkeypatch.setattr(win, "_solve_window", silent_window)

    def check(fraction: float) -> None:
        if started.is_set():
            seen.append(time.perf_counter())
            raise KeyboardInterrupt

    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        information_flow_alpha(img, tri, check=check, tile=0 if where == "flows" else 32)
    assert seen[0] - t0 < 1.5              # seen while the worker was silent or busy
    assert time.perf_counter() - t0 < 3.0  # and the workers ended soon after


def test_a_cancel_before_the_solve_stops_the_engine_before_the_memo(monkeypatch):
    """Issue #23: the prior's first check comes before the memo's digest and the solve's
    set-up (seconds at 24 MP), so a cancel pressed then ends the refine at once."""
    import threading

    from diffmatte.engine import Engine
    from diffmatte.errors import Cancelled

    img, tri, _ = _two_colour(32, 40)
    model = build_model(get_config("lite_ifm")).eval()
    for p in list(model.fusion.out.parameters()) + list(model.decoder.matting_head.matting_convs[3].parameters()):
        torch.nn.init.zeros_(p)
    engine = Engine(model, torch.device("cpu"), "test")
    monkeypatch.setattr(engine.prior_memo, "solve", lambda *a, **k: pytest.fail("the memo ran after a cancel"))
    cancel = threading.Event()
    cancel.set()
    ticks = []
    with pytest.raises(Cancelled):
        engine.refine(img.astype(np.float32), tri, steps=3, cancel=cancel, progress=lambda d, t: ticks.append(d))
    assert ticks == []


def test_the_prior_matte_moves_information_flows_white_point():
    """Information flow's alpha stops a few percent short of 1 inside solid subjects (in the
    dev photos' trimap2 mattes, 74 % of the error on pixels whose truth is opaque lay at
    alpha 0.8-0.98): the matte of a prior-only model is the prior stretched by 1 / WHITE_POINT
    and clipped, so 0 stays 0, partial alpha keeps its order and the veil goes."""
    from diffmatte.prior.white_point import WHITE_POINT, prior_matte

    prior = np.array([[0.0, 0.2, 0.5], [WHITE_POINT - 0.01, WHITE_POINT, 1.0]], np.float32)
    out = prior_matte("ifm", prior)
    assert out.dtype == np.float32 and out[0, 0] == 0.0 and (out[1, 1:] == 1.0).all()
    np.testing.assert_allclose(out[0, 1:], prior[0, 1:] / WHITE_POINT, rtol=1e-6)
    assert (np.diff(out.ravel()) > 0).sum() == 4 and out[1, 0] < 1.0
    np.testing.assert_array_equal(prior_matte("cf", prior), prior)   # closed form: as it is
    assert prior[1, 1] == np.float32(WHITE_POINT)                   # the input is not changed


def test_the_widening_reads_the_first_passs_own_alpha_and_the_white_point_comes_last(monkeypatch):
    """Engine.refine(widen_band=True): trimap.widen's thresholds (0.98 / 0.02) were measured
    on the prior's alpha, so the widening must see it before the white point (a prior of 0.96
    along the band's inner boundary is partial alpha cut by the band, though the matte shows
    1 there); the result of the second pass gets the white point."""
    from diffmatte.engine import Engine
    from diffmatte.prior.white_point import WHITE_POINT

    model = build_model(get_config("lite_ifm")).eval()
    for p in list(model.fusion.out.parameters()) + list(model.decoder.matting_head.matting_convs[3].parameters()):
        torch.nn.init.zeros_(p)
    engine = Engine(model, torch.device("cpu"), "test")
    tri = np.zeros((48, 48), np.float32)
    tri[8:40, 8:40] = 0.5
    tri[16:32, 16:32] = 1.0
    passes = []

    def once(img, t, *args):
        passes.append(t.copy())
        alpha = np.where(t == 1.0, 1.0, np.where(t == 0.5, 0.96, 0.0)).astype(np.float32)
        return alpha

    monkeypatch.setattr(engine, "_refine_once", once)
    out = engine.refine(np.zeros((48, 48, 3), np.float32), tri, widen_band=True, band=4)
    assert len(passes) == 2 and (passes[1] == 0.5).sum() > (tri == 0.5).sum()   # widened at 0.96 < 0.98
    np.testing.assert_allclose(out[passes[1] == 0.5], 0.96 / WHITE_POINT, rtol=1e-6)


def test_a_refine_can_keep_the_priors_own_alpha_or_move_its_white_point():
    """Engine.refine(white_point=...): 1.0 keeps information flow's own alpha (glass, where
    partial alpha must stay exact), another value moves it there; out-of-range values are
    refused before any work."""
    from diffmatte.engine import Engine
    from diffmatte.errors import InputError
    from diffmatte.prior.white_point import prior_matte

    img, tri, _ = _two_colour(32, 40)
    model = build_model(get_config("lite_ifm")).eval()
    for p in list(model.fusion.out.parameters()) + list(model.decoder.matting_head.matting_convs[3].parameters()):
        torch.nn.init.zeros_(p)
    engine = Engine(model, torch.device("cpu"), "test")
    prior = information_flow_alpha(img, tri)
    np.testing.assert_array_equal(engine.refine(img.astype(np.float32), tri, white_point=1.0), prior)
    np.testing.assert_array_equal(engine.refine(img.astype(np.float32), tri, white_point=0.9),
                                  prior_matte("ifm", prior, 0.9))
    for bad in (0.2, 1.5, float("nan"), "x"):
        with pytest.raises(InputError, match="white_point"):
            engine.refine(img.astype(np.float32), tri, white_point=bad)
