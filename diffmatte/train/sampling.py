"""DDIM prediction with a bare model, for validation during training and for ``diffmatte eval``
when a checkpoint (rather than the product engine) is evaluated."""
from __future__ import annotations

import numpy as np
import torch

from ..diffusion import Schedule, ddim_sample
from ..io.images import trimap_to_unit
from ..modeling import DiffMatteModel
from ..prior.solve import prior_for
from .objective import logit_to_x0


@torch.no_grad()
def predict_alpha(model: DiffMatteModel, image: np.ndarray, trimap: np.ndarray, steps: int = 10,
                  seed: int = 0, device: str | torch.device = "cpu") -> np.ndarray:
    """Alpha (H x W float32 in [0, 1]) for one image.

    ``image``: H x W x 3 float in [0, 1]; ``trimap``: H x W uint8 0/128/255.
    Background is forced to 0 and foreground to 1 (the product's behaviour).
    """
    model.eval()
    dev = torch.device(device)
    img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()[None].to(dev)
    tri_u8 = np.asarray(trimap)
    tri = trimap_to_unit(tri_u8)
    tri_t = torch.from_numpy(tri)[None, None].to(dev)
    c = model.condition(img, tri_t, prior_for(model.cfg.prior, img, tri_t))
    feats = model.encode(c)
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(1, 1, *image.shape[:2], generator=gen).to(dev)

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return logit_to_x0(model.decode(feats, c, x_t, t))

    alpha = ddim_sample(denoise, noise, steps, Schedule(scale=model.cfg.scale))
    a = alpha.clamp(0, 1)[0, 0].float().cpu().numpy()
    a[tri == 0] = 0.0
    a[tri == 1] = 1.0
    return a.astype(np.float32)
