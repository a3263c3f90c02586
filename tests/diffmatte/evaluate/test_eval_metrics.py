"""Composition-1k metrics on hand-made arrays with known answers."""
import numpy as np
import pytest

from diffmatte.evaluate.metrics import all_metrics, conn, grad, gradient_magnitude, mse, unknown_region, unknown_sad


def _trimap(h=20, w=30, box=(5, 15, 5, 25)):
    t = np.zeros((h, w), np.uint8)
    t[box[0]:box[1], box[2]:box[3]] = 128
    return t


def test_sad_and_mse_known_values():
    tri = _trimap()
    gt = np.zeros(tri.shape, np.float32)
    pred = gt.copy()
    pred[tri == 128] = 0.1
    pred[tri == 0] = 0.9  # errors outside the unknown region must not count
    n = int((tri == 128).sum())
    assert n == 200
    assert unknown_sad(pred, gt, tri) == pytest.approx(0.1 * n / 1000)
    assert mse(pred, gt, tri) == pytest.approx(0.01)


def test_uint8_inputs_are_scaled():
    tri = _trimap()
    gt = np.zeros(tri.shape, np.uint8)
    pred = np.full(tri.shape, 255, np.uint8)
    assert unknown_sad(pred, gt, tri) == pytest.approx(200 / 1000)
    assert mse(pred, gt, tri) == pytest.approx(1.0)


def test_float_trimap_and_empty_region():
    tri = _trimap().astype(np.float32) / 255
    tri[tri > 0] = 0.5
    assert unknown_region(tri).sum() == 200
    empty = np.zeros((4, 4), np.uint8)
    a = np.zeros((4, 4), np.float32)
    assert unknown_sad(a, a, empty) == 0.0 and mse(a, a, empty) == 0.0


def test_identical_predictions_score_zero():
    rng = np.random.default_rng(0)
    gt = rng.random((32, 32)).astype(np.float32)
    tri = _trimap(32, 32, (4, 28, 4, 28))
    assert all_metrics(gt, gt, tri) == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}


def test_grad_ignores_constant_offset_and_sees_blur():
    ys, xs = np.mgrid[0:40, 0:40]
    gt = (xs >= 20).astype(np.float64)
    tri = _trimap(40, 40, (10, 30, 10, 30))
    # A constant offset keeps gradients (away from the clipped range) identical.
    shifted = gt * 0.5 + 0.25
    assert grad(gt * 0.5, gt * 0.5, tri) == 0.0
    assert grad(shifted, gt * 0.5 + 0.25, tri) == pytest.approx(0.0, abs=1e-12)
    blurred = np.clip((xs - 14) / 12, 0, 1)
    assert grad(blurred, gt, tri) > 0.0
    # The derivative kernel is L2-normalised: a unit step gives a finite, positive peak.
    mag = gradient_magnitude(gt)
    assert mag[:, 19:21].max() > 0.3 and mag[:, :10].max() < 1e-6


def test_conn_all_missing_foreground():
    # gt = 1 everywhere, pred = 0: every pixel drops out at threshold 0.1, so l = 0,
    # phi_gt = 1 - 1 = 0 and phi_pred = 1: Conn = #unknown / 1000.
    tri = _trimap()
    gt = np.ones(tri.shape)
    pred = np.zeros(tri.shape)
    assert conn(pred, gt, tri) == pytest.approx(200 / 1000)


def test_conn_small_differences_below_015_are_free():
    tri = _trimap()
    gt = np.full(tri.shape, 0.5)
    pred = np.full(tri.shape, 0.55)
    # Both stay in the largest component until 0.6 (l = 0.5): d = 0 and 0.05 < 0.15.
    assert conn(pred, gt, tri) == 0.0


def test_shape_and_range_errors():
    tri = _trimap()
    with pytest.raises(ValueError, match="shape"):
        unknown_sad(np.zeros((3, 3)), np.zeros(tri.shape), tri)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        unknown_sad(np.full(tri.shape, 2.0), np.zeros(tri.shape), tri)
    with pytest.raises(ValueError, match="unknown metrics"):
        all_metrics(np.zeros(tri.shape), np.zeros(tri.shape), tri, which=("sad", "psnr"))
