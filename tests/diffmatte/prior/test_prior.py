"""The closed-form prior (diffmatte/prior/closed_form.py) and the prior-conditioned model around it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffmatte.modeling import build_model
from diffmatte.prior.closed_form import closed_form_prior
from diffmatte.modeling.variants import get_config
from diffmatte.prior.solve import prior_for


def two_colour(h: int = 48, w: int = 64):
    """(image, {0, 0.5, 1} trimap, true alpha): I = a F + (1 - a) B with constant F and B,
    a soft wavy edge, known bands of 6 px on the left (bg) and right (fg)."""
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = np.clip((xx - 16) / 32 + 0.1 * np.sin(yy / 5), 0, 1)
    fg, bg = np.array([0.9, 0.3, 0.2]), np.array([0.1, 0.4, 0.8])
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    tri = np.full((h, w), 0.5)
    tri[:, :6] = 0.0
    tri[:, -6:] = 1.0
    return img, tri, alpha


def test_two_colour_composite_is_recovered():
    # Alpha is affine in I, which is exactly the closed-form model, so the solver must
    # find it from a thin band of known pixels.
    img, tri, alpha = two_colour()
    out = closed_form_prior(torch.from_numpy(img).permute(2, 0, 1)[None].float(),
                            torch.from_numpy(tri)[None, None].float())[0, 0].numpy()
    unknown = tri == 0.5
    assert np.abs(out - alpha)[unknown].mean() < 0.01
    assert (out[tri == 0] == 0).all() and (out[tri == 1] == 1).all()


def test_no_unknown_pixels_and_bad_shapes():
    img = torch.rand(1, 3, 10, 12)
    tri = torch.zeros(1, 1, 10, 12)
    tri[..., 6:] = 1
    assert torch.equal(closed_form_prior(img, tri), tri)
    with pytest.raises(ValueError, match="closed_form_prior needs"):
        closed_form_prior(img[:, :2], tri)


def test_constant_image_gives_finite_values():
    img = torch.full((1, 3, 20, 20), 0.5)
    tri = torch.full((1, 1, 20, 20), 0.5)
    tri[..., :3] = 0
    tri[..., -3:] = 1
    out = closed_form_prior(img, tri)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_untrained_prior_model_returns_the_prior_and_extension_keeps_it():
    from diffmatte.train.run_setup import extend_into

    torch.manual_seed(0)
    img = torch.rand(1, 3, 40, 52)
    tri = torch.full((1, 1, 40, 52), 0.5)
    tri[..., :10] = 0
    tri[..., -10:] = 1
    prior = closed_form_prior(img, tri).clamp(1e-3, 1 - 1e-3)
    base = build_model(get_config("lite")).eval()
    model = build_model(get_config("lite_cf")).eval()
    notes = extend_into(model, base.state_dict())
    assert "3 input convolutions widened" in notes
    with torch.no_grad():
        c = model.condition(img, tri, prior_for("cf", img, tri))
        logit = model.decode(model.encode(c), c, torch.randn(1, 1, 40, 52), torch.tensor([0.7]))
    np.testing.assert_allclose(torch.sigmoid(logit).numpy(), prior.numpy(), atol=1e-5)
    # the base model's weights arrived in the shared layers
    assert torch.equal(model.decoder.mid_blk.conv2.weight, base.decoder.mid_blk.conv2.weight)


def test_recalibration_repairs_poisoned_batchnorm_statistics():
    from diffmatte.train.recalibrate import recalibrate_bn

    model = build_model(get_config("lite_cf")).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(float("nan"))
    gen = torch.Generator().manual_seed(0)
    tri = torch.full((2, 1, 64, 64), 0.5)
    tri[..., :8] = 0
    tri[..., -8:] = 1
    batches = [{"image": torch.rand(2, 3, 64, 64, generator=gen), "alpha": torch.rand(2, 1, 64, 64, generator=gen),
                "trimap": tri} for _ in range(2)]
    assert recalibrate_bn(model, batches) == 2
    assert all(torch.isfinite(b).all() for b in model.buffers())
    assert not model.training  # the caller's mode is restored
