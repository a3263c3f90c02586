"""diffmatte.prior.device_flows: information flow's searches and weights in torch (issue #23),
run on the CPU against the numpy path (KD-trees), so the GPU path is tested on every machine."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from diffmatte.prior import device_flows, information_flow, windows
from diffmatte.prior.cg import TorchCG
from diffmatte.prior.flow_rules import lle_weights
from diffmatte.prior.solve import information_flow_alpha

DEV = Path(__file__).resolve().parents[4] / "shared" / "data" / "dev" / "alphamatting-real"
ON_DEVICE = TorchCG("cpu", "float64", flows=True)


def _pixels(n: int, seed: int) -> np.ndarray:
    """(n, 5) features like a photo's: 8-bit colours, positions on a pixel grid (ties happen)."""
    rng = np.random.default_rng(seed)
    col = rng.integers(100, 140, (n, 3)) / 255.0
    xy = np.stack([rng.integers(0, 60, n) / 60, rng.integers(0, 40, n) / 40], 1)
    return np.concatenate([col, xy], 1)


@pytest.mark.parametrize("coarse", [torch.float32, torch.float64])
def test_knn_finds_the_kd_trees_neighbours_up_to_ties(coarse):
    data, queries = _pixels(3000, 0), _pixels(700, 1)
    k = 8
    got = device_flows.knn(torch.from_numpy(data), torch.from_numpy(queries), k, coarse=coarse,
                           budget=200_000).numpy()          # many chunks
    dist, want = cKDTree(data).query(queries, k + 1)
    got_d = np.sqrt(((data[got] - queries[:, None]) ** 2).sum(-1))
    np.testing.assert_allclose(got_d, dist[:, :k], rtol=0, atol=1e-12)   # the same distances
    clear = dist[:, k - 1] < dist[:, k] - 1e-12                        # no tie at the k-th
    assert clear.mean() > 0.5
    same = np.sort(got[clear], 1) == np.sort(want[clear, :k], 1)
    assert same.all()


def test_knn_is_exact_where_float32_cannot_tell_the_candidates_apart():
    """Intra-U-like features: two colours far apart, positions weighing 1/20 of a 600 px image, so
    the distances among one colour's pixels (~1e-9) are below float32's rounding of the
    squared norms (~1e-7): the uncertain queries are searched again in float64."""
    rng = np.random.default_rng(4)
    n = 4000
    col = rng.choice([0.0, 1.0], (n, 1)).repeat(3, 1)
    xy = rng.integers(0, 80, (n, 2)) / 600 / 20
    data = np.concatenate([col, xy], 1)
    k = 6
    got = device_flows.knn(torch.from_numpy(data), torch.from_numpy(data[:500]), k).numpy()
    dist = cKDTree(data).query(data[:500], k)[0]
    got_d = np.sqrt(((data[got] - data[:500, None]) ** 2).sum(-1))
    np.testing.assert_allclose(got_d, dist, rtol=0, atol=1e-15)


def test_knn_breaks_ties_by_the_lower_index_and_returns_self_first():
    yy, xx = np.mgrid[0:5, 0:5]
    grid = torch.from_numpy(np.stack([yy.ravel(), xx.ravel()], 1).astype(np.float64))
    centre = 12                                          # (2, 2): four neighbours at distance 1
    nb = device_flows.knn(grid, grid[[centre]], 5)[0].tolist()
    assert nb == [12, 7, 11, 13, 17]


def test_lle_weights_in_torch_equal_numpys():
    rng = np.random.default_rng(3)
    fp = rng.random((500, 3))
    fq = fp[:, None, :] + 0.05 * rng.standard_normal((500, 20, 3))
    fq[:5] = fp[:5, None, :]                            # D = 0: uniform weights
    want = lle_weights(fp, fq, chunk=128)
    got = lle_weights(torch.from_numpy(fp), torch.from_numpy(fq), chunk=128)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-8)


def _noisy_band(h: int, w: int):
    from test_prior import two_colour

    img, tri, _ = two_colour(h, w)
    noise = 0.08 * np.random.default_rng(0).standard_normal(img.shape)
    return np.clip(img + noise, 0, 1).astype(np.float32), tri


def _counting(monkeypatch) -> list:
    calls = []
    knn = device_flows.knn
    monkeypatch.setattr(device_flows, "knn", lambda *a, **kw: calls.append(len(a[1])) or knn(*a, **kw))
    return calls


# Measured: 1.4e-6 (one solve); windows 1.2e-7 with exact searches on both paths, 7e-4 with
# the numpy path's approximate K-to-U search far from the known pixels (windows.SAMPLE_EPS).
# The windows' looser CG stop rule (WINDOW_RTOL) is set to one solve's here: the two paths'
# CGs stop at different iterates (6.8e-5 apart at 1e-4), which is not what is compared.
@pytest.mark.parametrize("tile,eps,tol", [(0, None, 1e-5), (40, 0.0, 1e-5)])
def test_the_whole_alpha_in_torch_agrees_with_numpy(monkeypatch, tile, eps, tol):
    if eps is not None:
        monkeypatch.setattr(windows, "SAMPLE_EPS", eps)
    monkeypatch.setattr(windows, "WINDOW_RTOL", information_flow.RTOL)
    img, tri = _noisy_band(40, 80)
    want = information_flow_alpha(img, tri, tile=tile)
    calls = _counting(monkeypatch)
    got = information_flow_alpha(img, tri, tile=tile, torch_cg=ON_DEVICE)
    assert len(calls) >= 4                               # colour mixture, intra-U, K-to-U fg and bg
    assert np.abs(got - want).max() <= tol
    assert (got[tri == 0] == 0).all() and (got[tri == 1] == 1).all()


@pytest.mark.parametrize("name", ["GT02.png", "GT05.png"])
def test_a_dev_photo_crop_agrees_with_numpy(name):
    """An 80 x 110 crop of a real photo and its trimap (8-bit colours: ties in the searches)."""
    if not (DEV / "input" / name).exists():
        pytest.skip("dev photos not present")
    from PIL import Image

    img = np.asarray(Image.open(DEV / "input" / name).convert("RGB"), np.float32) / 255
    tri = np.asarray(Image.open(DEV / "trimap1" / name).convert("L"))
    ys, xs = np.nonzero(tri == 128)
    y0, x0 = max(0, int(np.median(ys)) - 40), max(0, int(np.median(xs)) - 55)
    img, tri = img[y0:y0 + 80, x0:x0 + 110], tri[y0:y0 + 80, x0:x0 + 110]
    assert (tri == 128).mean() > 0.1
    want = information_flow_alpha(img, tri)
    got = information_flow_alpha(img, tri, torch_cg=ON_DEVICE)
    assert np.abs(got - want).max() <= 1e-3          # measured 3.3e-6 (GT02), 3.0e-5 (GT05)


def test_the_engine_takes_the_device_path_on_cuda_and_when_asked():
    from diffmatte.engine import Engine
    from diffmatte.modeling import build_model
    from diffmatte.modeling.variants import get_config

    engine = Engine(build_model(get_config("lite_ifm")).eval(), torch.device("cpu"), "test")
    assert engine.prior_cg() is None                      # auto on a CPU: numpy (faster there)
    engine.prior_solver = "torch"
    assert engine.prior_cg() == TorchCG(torch.device("cpu"), "float64", flows=True)
    engine.prior_solver, engine.device = "auto", torch.device("cuda")   # (no GPU needed to ask)
    assert engine.prior_cg() == TorchCG(torch.device("cuda"), "float64", flows=True)
    engine.prior_solver = "numpy"
    assert engine.prior_cg() is None


@pytest.mark.parametrize("k", [1, 7, 21])
def test_the_numpy_paths_kd_tree_search_is_exact_and_eps_stays_within_its_bound(k, monkeypatch):
    """flows._query (pykdtree, in chunks): the same neighbour distances as scipy's exact search
    (ties on the pixel grid may swap indices), k = 1 shaped (n, 1) like the others, and an
    approximate search (eps) within (1 + eps) x the true k-th distance."""
    from diffmatte.prior import flows

    monkeypatch.setattr(flows, "QUERY_CHUNK", 150)   # several chunks
    data, queries = _pixels(3000, 2), _pixels(700, 3)
    tree = flows._tree(data)
    got = flows._query(tree, queries, k)
    assert got.shape == (700, k) and got.dtype == np.int64
    dist = cKDTree(data).query(queries, k)[0].reshape(700, k)
    got_d = np.sqrt(((data[got] - queries[:, None]) ** 2).sum(-1))
    np.testing.assert_allclose(got_d, dist, rtol=0, atol=1e-12)
    rough = flows._query(tree, queries, k, eps=1.0)
    rough_d = np.sqrt(((data[rough] - queries[:, None]) ** 2).sum(-1))
    assert (rough_d.max(1) <= 2.0 * dist[:, -1] + 1e-12).all()
