"""The DiffMatte training objective (spec section 3.4) as one ``nn.Module`` call.

Wrapping both modes in a single forward keeps DistributedDataParallel happy: the
self-aligned stage runs the encoder once and the decoder twice inside one call.
"""
from __future__ import annotations

import torch
from torch import nn

from ..diffusion import Schedule, normalize_xt
from ..modeling import DiffMatteModel
from ..prior.solve import prior_for


def logit_to_x0(logit: torch.Tensor) -> torch.Tensor:
    """Decoder output to an x0 prediction in [-1, 1] (the official ``phas``)."""
    return 2.0 * torch.sigmoid(logit.float()) - 1.0


def sample_times(batch: int, self_align: bool, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, t_prev) per sample. Normal mode: t ~ U(0,1) and t_prev = t (unused).

    Self-aligned (uniform time intervals): d ~ U(0,1), t ~ U(0,1)(1-d), t_prev = t + d.
    """
    if not self_align:
        t = torch.rand(batch, generator=generator)
        return t, t.clone()
    d = torch.rand(batch, generator=generator)
    t = torch.rand(batch, generator=generator) * (1 - d)
    return t, (t + d).clamp(max=1.0)


class DiffusionObjective(nn.Module):
    """``forward`` returns the x0 prediction (B,1,H,W in [-1,1]) that the losses compare
    with the ground truth x0 = 2 alpha - 1."""

    def __init__(self, model: DiffMatteModel, schedule: Schedule | None = None) -> None:
        super().__init__()
        self.model = model
        self.schedule = schedule or Schedule(scale=model.cfg.scale)

    def forward(self, image: torch.Tensor, trimap: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor,
                t: torch.Tensor, t_prev: torch.Tensor, self_align: bool) -> torch.Tensor:
        m = self.model
        c = m.condition(image, trimap, prior_for(m.cfg.prior, image, trimap))
        feats = m.encode(c)
        if not self_align:
            x_t = self.schedule.q_sample(x0, t, noise)
            return logit_to_x0(m.decode(feats, c, normalize_xt(x_t), t))
        # Stage 2: first pass from the ground-truth sample at t_prev, detached;
        # the second pass starts from the model's own estimate with the same noise.
        x_prev = self.schedule.q_sample(x0, t_prev, noise)
        with torch.no_grad():
            x0_prev = logit_to_x0(m.decode(feats, c, normalize_xt(x_prev), t_prev)).clamp(-1, 1)
        x_t = self.schedule.q_sample(x0_prev.to(x0.dtype), t, noise)
        return logit_to_x0(m.decode(feats, c, normalize_xt(x_t), t))
