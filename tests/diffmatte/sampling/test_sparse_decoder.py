"""Sparse decoding (diffmatte/sampling/sparse_plan.py, sparse_decoder.py): exact where asked, cheaper on a thin band."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffmatte.modeling import build_model
from diffmatte.sampling.sparse_decoder import sparse_decoder_for
from diffmatte.sampling.sparse_plan import dense_macs_per_px, plan_sparse
from diffmatte.modeling.variants import get_config


def _model(name: str):
    torch.manual_seed(0)
    m = build_model(get_config(name)).eval()
    for mod in m.modules():  # non-trivial BatchNorm statistics, so that folding them matters
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    if m.fusion is not None:
        torch.nn.init.normal_(m.fusion.out.weight, std=0.1)
    return m.to(memory_format=torch.channels_last)


def _band(h: int, w: int, half: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.abs(yy - h * 0.45 - h * 0.2 * np.sin(xx / 37.0)) < half


@pytest.mark.parametrize("name", ["lite", "ViTS", "lite_cf"])
def test_sparse_decode_equals_dense_decode_on_the_needed_pixels(name):
    m = _model(name)
    hp, wp, rh, rw = 192, 256, 180, 250  # region with a padded margin, like an image edge tile
    need = _band(hp, wp, 5)
    need[:4, :] = True                   # the image border rows and columns too
    need[:, wp - 10:] = True
    need[rh:, :] = False
    need[:, rw:] = False
    g = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        img = torch.rand((1, 3, rh, rw), generator=g)
        tri = torch.full((1, 1, rh, rw), 0.5)
        prior = torch.rand((1, 1, rh, rw), generator=g) if m.cfg.prior else None
        c = m.condition(img, tri, prior) if prior is not None else m.condition(img, tri)
        s = m.cfg.stride
        f = torch.randn((1, m.cfg.feature_channels, hp // s, wp // s), generator=g).contiguous(
            memory_format=torch.channels_last)
        x = torch.randn((1, 1, rh, rw), generator=g)
        t = torch.tensor([0.4])
        dense = m.decode(f, c, x, t)[0, 0]
        plan = plan_sparse(m, need)
        sparse = sparse_decoder_for(m).decode(plan, f, c, x, t)[0, 0, :rh, :rw]
        again = sparse_decoder_for(m).decode(plan, f, c, x, t)[0, 0, :rh, :rw]  # reused buffers
    mask = torch.from_numpy(need[:rh, :rw])
    scale = float(dense.abs().max())
    assert float((sparse - dense).abs()[mask].max()) <= 1e-5 * max(1.0, scale)
    assert torch.equal(sparse[mask], again[mask])
    assert plan.macs < plan.dense_macs  # computes less than the dense region


def test_thin_band_costs_a_fraction_of_the_dense_decode():
    m = _model("lite")
    yy, xx = np.mgrid[0:512, 0:1024]
    need = np.abs(yy - 0.3 * xx - 60 - 40 * np.sin(xx / 150)) < 8  # a 16-px band, 3 % of the region
    plan = plan_sparse(m, need)
    assert plan.dense_macs == pytest.approx(dense_macs_per_px(m) * 512 * 1024, rel=1e-6)
    # The decoder's context (up to ~100 px at the coarse levels) is the floor: 0.29 measured.
    assert plan.macs < 0.35 * plan.dense_macs, plan.macs / plan.dense_macs
    assert plan.feature_need.shape == (512 // 32, 1024 // 32)
    assert 0 < plan.feature_need.mean() < 1


def test_sparse_decoder_is_rebuilt_when_weights_change():
    m = _model("lite")
    first = sparse_decoder_for(m)
    assert sparse_decoder_for(m) is first
    with torch.no_grad():
        m.decoder.matting_head.matting_convs[0].weight.mul_(2)
    assert sparse_decoder_for(m) is not first


def test_region_must_be_a_multiple_of_the_feature_stride():
    with pytest.raises(ValueError, match="multiple of 32"):
        plan_sparse(_model("lite"), np.ones((100, 128), bool))


def test_stage_needs_are_the_decoders_receptive_field():
    """The propagated needs hold every input the needed outputs depend on (the input
    gradient's support) and little more: the feature cells the plan reads are the
    gradient's support, and x_t / the conditioning are read only where the plan says."""
    from diffmatte.sampling.sparse_plan import stage_needs

    m = _model("lite")
    hp = wp = 256
    need = np.zeros((hp, wp), bool)
    need[100:104, 60:180] = True         # a short horizontal band
    need[40:150, 200:203] = True         # and a vertical one
    g = torch.Generator().manual_seed(2)
    img = torch.rand((1, 3, hp, wp), generator=g)
    c = m.condition(img, torch.full((1, 1, hp, wp), 0.5))
    s = m.cfg.stride
    f = torch.randn((1, m.cfg.feature_channels, hp // s, wp // s), generator=g, requires_grad=True)
    x = torch.randn((1, 1, hp, wp), generator=g, requires_grad=True)
    m.decode(f, c, x, torch.tensor([0.4]))[0, 0][torch.from_numpy(need)].sum().backward()
    up, _down = stage_needs(m, need)
    f_support = (f.grad[0].abs().sum(0) > 0).numpy()
    assert not (f_support & ~up[-1]).any()            # nothing read outside the need
    assert f_support.sum() >= 0.9 * up[-1].sum()      # and the need is (nearly) tight
    plan = plan_sparse(m, need)
    x_support = (x.grad[0, 0].abs() > 0).numpy()
    assert not (x_support & ~plan.read).any()


def test_sparse_decode_is_exact_when_every_stage_is_blocked():
    """A thin band in a large region: every stage (down ones included) runs on several
    blocks, so each stage's crop halo must be enough for the blocks to be exact."""
    m = _model("lite")
    hp, wp = 512, 768
    yy, xx = np.mgrid[0:hp, 0:wp]
    need = np.abs(yy - 0.4 * xx - 80 - 30 * np.sin(xx / 90)) < 3
    g = torch.Generator().manual_seed(3)
    with torch.inference_mode():
        c = m.condition(torch.rand((1, 3, hp, wp), generator=g), torch.full((1, 1, hp, wp), 0.5))
        f = torch.randn((1, m.cfg.feature_channels, hp // 32, wp // 32), generator=g).contiguous(
            memory_format=torch.channels_last)
        x = torch.randn((1, 1, hp, wp), generator=g)
        t = torch.tensor([0.7])
        plan = plan_sparse(m, need)
        assert all(sum(len(b) for _, b in s.groups) > 1 for s in plan.stages), \
            [(s.kind, sum(len(b) for _, b in s.groups)) for s in plan.stages]
        dense = m.decode(f, c, x, t)[0, 0]
        sparse = sparse_decoder_for(m).decode(plan, f, c, x, t)[0, 0]
    mask = torch.from_numpy(need)
    assert float((sparse - dense).abs()[mask].max()) <= 1e-5 * max(1.0, float(dense.abs().max()))


def test_std_of_the_known_pixels_in_closed_form_matches_the_iterated_sampler():
    """sampling.sparse keeps x_t only on the live pixels; the std over the whole image adds
    the other (known, x0 fixed) pixels in closed form. It must match iterating the DDIM
    update over every pixel, step by step, to float rounding."""
    from diffmatte.diffusion import Schedule, time_grid
    from diffmatte.sampling.sparse import _KnownSums

    g = torch.Generator().manual_seed(4)
    n = 3 * (1 << 20) + 12345                      # several chunks and a remainder
    forced = torch.where(torch.rand(n, generator=g) < 0.3, 1.0, -1.0)
    live = torch.rand(n, generator=g) < 0.1
    forced[live & (torch.rand(n, generator=g) < 0.5)] = 0.0   # unknown pixels are live
    live_idx = torch.nonzero(live)[:, 0]
    x_T = torch.randn(n, generator=g)
    sched, grid = Schedule(), time_grid(6)
    a0, s0 = sched.alpha_sigma(grid[0])
    known = _KnownSums(x_T, forced, live_idx, a0, s0)
    x = x_T.clone()
    x0 = forced.clone()
    x0[live_idx] = torch.rand(len(live_idx), generator=g) * 2 - 1   # any prediction on the live pixels
    for k in range(6):
        a, s = sched.alpha_sigma(grid[k])
        a_next, s_next = sched.alpha_sigma(grid[k + 1])
        ref = x.std(unbiased=False)
        got = known.std(x[live_idx], a, s)[0]
        assert abs(float(got) - float(ref)) <= 2e-6 * float(ref), (k, float(got), float(ref))
        x = a_next * x0 + s_next * ((x - a * x0) / s.clamp(min=1e-10))
