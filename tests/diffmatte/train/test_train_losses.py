"""DiffMatte losses and the training objective on hand-made tensors."""
import pytest
import torch

from diffmatte.train.losses import laplacian_loss, laplacian_pyramid, matting_losses, sobel, total_loss
from diffmatte.train.objective import sample_times


def _trimap(b=2, h=32, w=32):
    t = torch.zeros(b, 1, h, w)
    t[..., 8:24, 8:24] = 0.5
    t[..., 12:20, 12:20] = 1.0
    return t


def test_perfect_prediction_has_zero_loss():
    x0 = torch.rand(2, 1, 32, 32) * 2 - 1
    terms = matting_losses(x0.clone(), x0, _trimap())
    assert set(terms) == {"mse", "unknown_l1", "known_l1", "grad", "laplacian"}
    # The grad term keeps its 0.01 |grad pred| regulariser even for a perfect prediction.
    assert all(v.item() == 0 for k, v in terms.items() if k != "grad")
    assert terms["grad"].item() >= 0


def test_masked_l1_terms_are_per_pixel_means():
    tri = _trimap()
    target = torch.zeros(2, 1, 32, 32)
    pred = torch.zeros(2, 1, 32, 32)
    unknown = (tri == 0.5)
    pred[unknown] = 0.4          # error only in the unknown band
    pred[tri == 0] = -0.2        # and a different error in known background
    terms = matting_losses(pred, target, tri)
    assert terms["unknown_l1"].item() == pytest.approx(0.4)
    n_known_bg, n_known = (tri == 0).sum().item(), (tri != 0.5).sum().item()
    assert terms["known_l1"].item() == pytest.approx(0.2 * n_known_bg / n_known)
    expected_mse = (0.16 * unknown.sum() + 0.04 * n_known_bg) / tri.numel()
    assert terms["mse"].item() == pytest.approx(expected_mse.item())


def test_sobel_on_a_ramp():
    ramp = torch.arange(16.0).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    gx, gy = sobel(ramp)
    assert torch.allclose(gx[..., 1:-1, 1:-1], torch.full((14, 14), 8.0))
    assert torch.allclose(gy[..., 1:-1, 1:-1], torch.zeros(14, 14))


def test_laplacian_pyramid_levels_and_constant_input():
    x = torch.full((1, 1, 65, 128), 0.3)
    levels = laplacian_pyramid(x, 5)
    assert len(levels) == 6
    assert levels[0].shape[-2:] == (64, 128)  # odd sizes are cropped to even
    assert levels[1].shape[-2:] == (32, 64)
    assert len(laplacian_pyramid(torch.zeros(1, 1, 32, 32), 5)) == 5  # a 2x2 level is left out
    # Reflect padding keeps a constant image free of band-pass energy.
    assert all(lv.abs().max() < 1e-6 for lv in levels[:-1])
    noisy = x + 0.1 * torch.randn_like(x)
    assert laplacian_loss(noisy, x).item() > 0


def test_total_loss_weights():
    terms = {"a": torch.tensor(1.0), "b": torch.tensor(2.0)}
    assert total_loss(terms).item() == 3.0
    assert total_loss(terms, {"b": 0.5}).item() == 2.0


def test_uniform_time_intervals():
    g = torch.Generator().manual_seed(0)
    t, t_prev = sample_times(20000, True, g)
    assert (t >= 0).all() and (t_prev <= 1).all() and (t_prev >= t).all()
    d = t_prev - t
    # The interval is uniform over (0, 1): mean 1/2, and t_prev reaches the whole range.
    assert d.mean().item() == pytest.approx(0.5, abs=0.02)
    assert t_prev.max().item() > 0.99
    t2, tp2 = sample_times(5, False, g)
    assert torch.equal(t2, tp2)
