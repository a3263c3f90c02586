"""Continuous-time Gaussian diffusion of DiffMatte (the official ``UniformGauss``).

Kept separate from the network, like a diffusers scheduler: it knows the schedule,
the x_t normalisation and the DDIM update, and calls a ``denoise`` function.

x0 = 2*alpha - 1 in [-1, 1]; x_t = a(t) x0 + s(t) eps with gamma(t) = 1 - t,
a(t) = scale * sqrt(gamma), s(t) = sqrt(1 - gamma), scale = 0.2.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch


@dataclass(frozen=True)
class Schedule:
    """Linear gamma schedule with input scaling."""

    scale: float = 0.2

    @staticmethod
    def gamma(t: torch.Tensor) -> torch.Tensor:
        return (1.0 - t).clamp(min=1e-9)

    def alpha_sigma(self, t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(a(t), s(t)) for a tensor of times."""
        g = self.gamma(t)
        return self.scale * torch.sqrt(g), torch.sqrt(1.0 - g)

    def ddim_step(self, x: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor,
                  tmp: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The DDIM update (eta = 0) from time ``t`` to ``t_next`` given the x0 prediction:
        eps = (x - a x0) / s, x' = a' x0 + s' eps. The one implementation: the whole-image
        loop below, the tiled sampler and the sparse sampler call it. With ``tmp`` (a buffer
        shaped like ``x``) the same operations run in place and ``x`` is overwritten (the
        sparse sampler's per-step buffers)."""
        a, s = self.alpha_sigma(t)
        a_next, s_next = self.alpha_sigma(t_next)
        if tmp is None:
            eps = (x - a * x0) / s.clamp(min=1e-10)
            return a_next * x0 + s_next * eps
        eps = torch.sub(x, torch.mul(x0, a, out=tmp), out=tmp).div_(s.clamp(min=1e-10))
        return torch.mul(x0, a_next, out=x).add_(eps.mul_(s_next))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Forward process: x_t for per-sample times ``t`` of shape (B,)."""
        a, s = self.alpha_sigma(t.view(-1, *([1] * (x0.dim() - 1))))
        return a * x0 + s * noise


def normalize_xt(x: torch.Tensor) -> torch.Tensor:
    """Divide each sample by its population std over C*H*W (what the decoder sees)."""
    std = x.flatten(1).std(dim=1, unbiased=False).clamp(min=1e-5)
    return x / std.view(-1, *([1] * (x.dim() - 1)))


def time_grid(steps: int, device: Optional[torch.device] = None) -> torch.Tensor:
    """Uniform time intervals linspace(1, 0, steps + 1) (float32, like the official code)."""
    if not 1 <= int(steps) <= 1000:
        raise ValueError(f"steps must be between 1 and 1000, got {steps}")
    return torch.linspace(1.0, 0.0, int(steps) + 1, device=device)


Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepHook = Callable[[int, float, torch.Tensor], None]


def ddim_sample(denoise: Denoiser, noise: torch.Tensor, steps: int, schedule: Schedule = Schedule(),
                on_step: Optional[StepHook] = None) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) from x_T = ``noise`` over uniform intervals.

    ``denoise(x_t_normalised, t_batch)`` returns x0 in [-1, 1]. ``on_step(k, t, x0)`` is
    called after each step with the (clamped) x0 prediction. Returns alpha in [0, 1]
    space, unclamped: (x / scale + 1) / 2.
    """
    x = noise
    grid = time_grid(steps, device=noise.device)
    batch = noise.shape[0]
    for k in range(int(steps)):
        t, t_next = grid[k], grid[k + 1]
        x0 = denoise(normalize_xt(x), t.expand(batch)).clamp(-1.0, 1.0)
        x = schedule.ddim_step(x, x0, t, t_next)
        if on_step is not None:
            on_step(k, float(t), x0)
    return (x / schedule.scale + 1.0) / 2.0
