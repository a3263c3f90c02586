"""The priors' one matting Laplacian (diffmatte/prior/laplacian.py, issue #26): the
matrix-free form (closed-form matting) and the sparse one (information flow's local flow)
against the definition and against each other."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffmatte.prior.laplacian import MatrixFree, sparse_laplacian, window_coefficients


def _explicit_laplacian(img: np.ndarray, eps: float) -> np.ndarray:
    """Levin et al.'s matting Laplacian for 3x3 windows, built entry by entry (slow, obvious)."""
    h, w, _ = img.shape
    n = h * w
    L = np.zeros((n, n))
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            idx = [(y + dy) * w + (x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            win = img.reshape(-1, 3)[idx]
            mu = win.mean(0)
            cov = (win - mu).T @ (win - mu) / 9 + eps / 9 * np.eye(3)
            inv = np.linalg.inv(cov)
            d = win - mu
            L[np.ix_(idx, idx)] += np.eye(9) - (1 + d @ inv @ d.T) / 9
    return L


def _sparse(img: np.ndarray, eps: float) -> np.ndarray:
    """The sparse form over every window of ``img`` (dense, for comparing)."""
    h, w, _ = img.shape
    centres = np.array([y * w + x for y in range(1, h - 1) for x in range(1, w - 1)])
    return sparse_laplacian(img.reshape(-1, 3), w, centres, np.arange(h * w), h * w, eps=eps).toarray()


def test_matrix_free_laplacian_equals_the_explicit_one():
    rng = np.random.default_rng(0)
    img = rng.random((7, 6, 3))
    L = _explicit_laplacian(img, 1e-6)
    lap = MatrixFree(torch.from_numpy(img).permute(2, 0, 1)[None], eps=1e-6)
    p = rng.random((7, 6))
    got = lap.apply(torch.from_numpy(p)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got.ravel(), L @ p.ravel(), atol=1e-9)
    np.testing.assert_allclose(lap.diagonal()[0, 0].numpy().ravel(), np.diag(L), atol=1e-9)


def test_sparse_laplacian_equals_the_explicit_one():
    img = np.random.default_rng(1).random((7, 6, 3))
    np.testing.assert_allclose(_sparse(img, 1e-6), _explicit_laplacian(img, 1e-6), atol=1e-9)


@pytest.mark.parametrize("eps", [1e-6, 1e-7])   # closed-form's and information flow's
def test_the_matrix_free_and_the_sparse_form_are_one_operator(eps):
    """Smooth colours (near-singular window covariances, where the regulariser matters) and
    a flat patch: both forms give the same products and diagonal."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:10, 0:9] / 10.0
    img = np.stack([0.3 + 0.2 * xx, 0.5 - 0.1 * yy, 0.2 + 0.1 * xx * yy], -1) + 1e-3 * rng.random((10, 9, 3))
    img[:4, :4] = 0.6
    L = _sparse(img, eps)
    lap = MatrixFree(torch.from_numpy(img).permute(2, 0, 1)[None], eps=eps)
    p = rng.random((10, 9))
    got = lap.apply(torch.from_numpy(p)[None, None])[0, 0].numpy().ravel()
    scale = np.abs(L).max()
    np.testing.assert_allclose(got / scale, L @ p.ravel() / scale, atol=1e-9)
    np.testing.assert_allclose(lap.diagonal()[0, 0].numpy().ravel() / scale, np.diag(L) / scale, atol=1e-9)


def test_window_coefficients_invert_the_regularised_covariance_in_numpy_and_torch():
    rng = np.random.default_rng(4)
    win = rng.random((50, 9, 3))
    win[:5] = win[:5, :1]                      # flat windows: only the regulariser
    eps = 1e-7
    mu = win.mean(1)
    moment = [(win[..., i] * win[..., j]).mean(1) for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))]
    got = window_coefficients([mu[:, k] for k in range(3)], moment, eps)
    xc = win - mu[:, None]
    want = np.linalg.inv(xc.transpose(0, 2, 1) @ xc / 9 + eps / 9 * np.eye(3))
    # Relative to each inverse's largest entry (9 / eps in a flat window, where E[I I^T] -
    # mu mu^T leaves ~1e-17 of rounding in the covariance: ~2e-8 of the largest entry)
    scale = np.abs(want).max((1, 2))
    for v, (i, j) in zip(got, ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))):
        np.testing.assert_allclose(v / scale, want[:, i, j] / scale, atol=1e-7)
    tgot = window_coefficients([torch.from_numpy(mu[:, k]) for k in range(3)],
                               [torch.from_numpy(m) for m in moment], eps)
    for v, t in zip(got, tgot):
        np.testing.assert_allclose(t.numpy() / scale, v / scale, atol=1e-12)
