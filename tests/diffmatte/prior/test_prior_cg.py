"""diffmatte.prior.cg: the one Jacobi-preconditioned CG of both priors (issue #26)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffmatte.prior import cg


def _spd(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n, n))
    return m @ m.T + n * np.diag(rng.uniform(0.5, 2.0, n))


def test_numpy_solve_meets_its_relative_tolerance_and_reports_progress():
    a = _spd(60, 0)
    b = np.random.default_rng(1).normal(size=60)
    x0 = np.zeros(60)
    seen = []
    x = cg.pcg(lambda v: a @ v, b, x0, lambda r: r / np.diag(a), rtol=1e-10, maxiter=500, check=seen.append)
    assert np.linalg.norm(a @ x - b) <= 1e-10 * np.linalg.norm(b)
    assert not x0.any()                               # the start is not changed
    assert seen and all(0.0 <= f <= 1.0 for f in seen) and max(seen) > 0.5


def test_a_solved_system_takes_no_step():
    a = _spd(20, 2)
    x = np.random.default_rng(3).normal(size=20)
    calls = []
    out = cg.pcg(lambda v: calls.append(1) or a @ v, a @ x, x, lambda r: r, rtol=1e-12, maxiter=50)
    assert np.array_equal(out, x) and len(calls) == 1  # only the start's residual


def test_torch_batch_fixed_iterations_match_numpy_one_system_at_a_time():
    mats = [_spd(30, s) for s in (4, 5)]
    bs = [np.random.default_rng(s).normal(size=30) for s in (6, 7)]
    bs[1][:] = 0.0                                     # the second system has nothing to do
    a_t = torch.from_numpy(np.stack(mats))
    b_t = torch.from_numpy(np.stack(bs))[:, :, None]
    diag_t = torch.diagonal(a_t, dim1=1, dim2=2)[:, :, None]
    x = cg.pcg(lambda v: a_t @ v, b_t, torch.zeros_like(b_t), lambda r: r / diag_t, maxiter=25,
               dot=lambda u, v: (u * v).flatten(1).sum(1).view(-1, 1, 1), select=torch.where)
    for i, (a, b) in enumerate(zip(mats, bs)):
        want = cg.pcg(lambda v: a @ v, b, np.zeros(30), lambda r: r / np.diag(a), maxiter=25)
        np.testing.assert_allclose(x[i, :, 0].numpy(), want, rtol=0, atol=1e-12)
    assert not x[1].any()


def test_a_batch_without_select_is_refused_when_only_some_systems_can_step():
    a_t = torch.from_numpy(np.stack([_spd(10, 8)] * 2))
    b_t = torch.zeros(2, 10, 1, dtype=torch.float64)
    b_t[0] = 1.0
    with pytest.raises(ValueError, match="select"):
        cg.pcg(lambda v: a_t @ v, b_t, torch.zeros_like(b_t), lambda r: r, maxiter=5,
               dot=lambda u, v: (u * v).flatten(1).sum(1).view(-1, 1, 1))


def _noisy_band(h: int = 96, w: int = 128):
    from test_prior import two_colour

    img, tri, _ = two_colour(h, w)
    noise = 0.08 * np.random.default_rng(0).standard_normal(img.shape)
    return np.clip(img + noise, 0, 1).astype(np.float32), tri


# Measured: float64 8e-7 (one solve) and 1e-7 (windows); float32 8e-6 and 5e-6. On the dev
# photos (GT01, GT02, GT05, trimap2): float64 <= 8e-5, float32 <= 2e-4.
@pytest.mark.parametrize("tile", [0, 48])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-5), ("float32", 1e-4)])
def test_information_flow_cg_in_torch_on_the_cpu_agrees_with_numpy(monkeypatch, tile, dtype, tol):
    """The GPU path's arithmetic (cg.TorchCG: torch sparse CSR products, torch CG) run on
    the CPU, against the numpy solve: so the GPU path is tested on every machine. The
    windows' looser CG stop rule is set to one solve's: the two CGs would otherwise stop at
    iterates further apart than their arithmetic differs."""
    from diffmatte.prior import information_flow, windows
    from diffmatte.prior.solve import information_flow_alpha

    monkeypatch.setattr(windows, "WINDOW_RTOL", information_flow.RTOL)
    img, tri = _noisy_band()
    want = information_flow_alpha(img, tri, tile=tile)
    calls = []
    torch_dot = cg.TorchCG.dot
    monkeypatch.setattr(cg.TorchCG, "dot", staticmethod(lambda a, b: calls.append(a.dtype) or torch_dot(a, b)))
    got = information_flow_alpha(img, tri, tile=tile, torch_cg=cg.TorchCG("cpu", dtype))
    assert calls and set(calls) == {getattr(torch, dtype)}   # the solve ran in torch
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() <= tol
    assert (got[tri == 0] == 0).all() and (got[tri == 1] == 1).all()



def test_the_engine_solves_the_prior_in_torch_when_asked_and_agrees_with_numpy(monkeypatch):
    """Engine.prior_solver = "torch" on a CPU takes the GPU path (TorchCG on the engine's
    device) through the public API; its matte agrees with the numpy solve's within the
    float64 tolerance above. "auto" on a CPU keeps numpy (the default, unchanged)."""
    from diffmatte.engine import Engine
    from diffmatte.modeling import build_model
    from diffmatte.modeling.variants import get_config

    model = build_model(get_config("lite_ifm")).eval()
    for p in list(model.fusion.out.parameters()) + list(model.decoder.matting_head.matting_convs[3].parameters()):
        torch.nn.init.zeros_(p)
    assert model.passes_prior_through()           # the matte is the prior: the default model's case
    with pytest.raises(ValueError, match="prior_solver"):
        Engine(model, torch.device("cpu"), "test", prior_solver="gpu")
    engine = Engine(model, torch.device("cpu"), "test")
    assert engine.prior_solver == "auto" and engine.prior_cg() is None       # CPU: numpy
    img, tri = _noisy_band(64, 80)
    calls = []
    torch_dot = cg.TorchCG.dot
    monkeypatch.setattr(cg.TorchCG, "dot", staticmethod(lambda a, b: calls.append(a.dtype) or torch_dot(a, b)))
    want = engine.refine(img, tri, steps=1)
    assert not calls
    engine.prior_solver = "torch"
    assert engine.prior_cg() == cg.TorchCG(torch.device("cpu"), "float64", flows=True)
    got = engine.refine(img, tri, steps=1)       # not the memo's numpy alpha: its key holds the solver
    assert calls and set(calls) == {torch.float64}                          # the solve ran in torch
    assert np.abs(got - want).max() <= 1e-5
    calls.clear()                                 # a local edit is re-solved in torch too
    tri2 = tri.copy()
    ys, xs = np.nonzero(tri == 0.5)
    tri2[ys[0]:ys[0] + 3, xs[0]:xs[0] + 3] = 1.0
    engine.refine(img, tri2, steps=1)
    assert engine.prior_memo.last.how in ("updated", "solved") and calls
