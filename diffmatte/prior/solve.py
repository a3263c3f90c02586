"""The prior's entry points: :func:`solve_prior`, a model's prior by name (torch in and
out; the one dispatch the engine, training and the benches use), and
:func:`information_flow_alpha`, information flow at any size (one solve, or a coarse
solve plus full-resolution windows for a band too large for one)."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from ..trimap_codes import background, foreground
from . import information_flow as ifm
from .progress import Progress, ignore, monotone, span
from .cg import TorchCG
from .closed_form import closed_form_prior
from .windows import solve_tiled

#: the share of a solve that its set-up takes (the known and unknown maps, the crop: a second
#: or two at 24 MP, of a solve that takes minutes there), reported as it goes so that the
#: bars move during it (issue #23)
SETUP_SHARE = 0.002


def information_flow_alpha(image: np.ndarray, trimap: np.ndarray,
                           check: Optional[Callable[[float], None]] = None,
                           tile: Optional[int] = None, torch_cg: Optional[TorchCG] = None) -> np.ndarray:
    """Alpha (H, W) float32 in [0, 1] of ``image`` (H, W, 3) in [0, 1] given ``trimap``.

    ``check(fraction)`` is called with the share of the solve done so far, rising from 0.0
    at the start to 1.0 at the end, never backwards: within every stage (neighbour searches
    and weights in chunks, every CG iteration, every window), so at most a second or two
    apart at any size; it may raise to stop the solve (the engine raises ``Cancelled``
    there and reports progress from it).

    A band of more than ``information_flow.MAX_UNKNOWN`` unknown pixels is solved as a coarse solve plus
    full-resolution windows (``windows.py``), so memory stays bounded and time
    follows the band; ``tile`` = N forces windows with N-px cores, 0 forces one solve.

    ``torch_cg`` (e.g. ``TorchCG("cuda")``, cg.py): the linear solve (CG) in torch on that
    device, in float64 or float32, and with ``flows=True`` the neighbour searches and the
    flows' weights too (device_flows.py); None (the default): numpy on the CPU. The sparse
    rows are assembled by scipy on the CPU either way.

    ``trimap`` is (H, W): {0, 0.5, 1} floats or 0/128/255 uint8; below a quarter of the
    range is background, above three quarters foreground, the rest unknown.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3, got shape {img.shape}")
    t = np.asarray(trimap)
    if t.shape != img.shape[:2]:
        raise ValueError(f"trimap shape {t.shape} differs from the image's {img.shape[:2]}")
    report = monotone(check or ignore)
    report(0.0)
    alpha = _information_flow(img, t, report, tile, torch_cg)
    report(1.0)
    return alpha


def _information_flow(img: np.ndarray, t: np.ndarray, check: Progress,
                      tile: Optional[int], torch_cg: Optional[TorchCG]) -> np.ndarray:
    """:func:`information_flow_alpha` after its checks; ``check`` is monotone."""
    scale = 255.0 if t.dtype == np.uint8 or (t.size and float(t.max()) > 1.0) else 1.0
    fg = foreground(t, scale)   # the engine's binning rule (trimap_codes; trimap.as_trimap's too)
    bg = background(t, scale)
    alpha = fg.astype(np.float32)
    unknown = ~(fg | bg)
    check(SETUP_SHARE / 2)
    if not unknown.any():
        return alpha
    if not (fg.any() or bg.any()):
        alpha[:] = 0.5  # nothing known: no information to propagate
        return alpha
    (y0, y1), (x0, x1) = ifm._bbox(unknown, ifm.SEARCH_MARGIN + ifm.EXPAND_RADIUS)
    # over the crop only, in int8 from the start (np.where's int64 maps of the whole image
    # were a second at 24 MP, issue #23)
    label = np.full((y1 - y0, x1 - x0), -1, np.int8)
    label[bg[y0:y1, x0:x1]] = 0
    label[fg[y0:y1, x0:x1]] = 1
    crop = np.asarray(img[y0:y1, x0:x1], dtype=np.float32)
    check(SETUP_SHARE)
    check = span(check, SETUP_SHARE, 1.0)
    if tile is None:
        tile = -1 if int(unknown.sum()) > ifm.MAX_UNKNOWN else 0
    if tile:
        alpha[y0:y1, x0:x1] = solve_tiled(crop, label, check, core=int(tile) if tile > 0 else None,
                                          torch_cg=torch_cg)
        return alpha
    label = ifm.expand_known(crop, label, check=span(check, 0.0, 0.03))
    alpha[y0:y1, x0:x1] = ifm._solve(crop, label, span(check, 0.03, 1.0), torch_cg=torch_cg)
    return alpha


def solve_prior(kind: str, image: torch.Tensor, trimap: torch.Tensor,
                check: Optional[Callable[[float], None]] = None,
                torch_cg: Optional[TorchCG] = None) -> torch.Tensor:
    """The alpha prior of a prior model: ``kind`` is ``ModelConfig.prior`` ("cf" closed-form,
    closed_form.py; "ifm" information flow, information_flow.py). Same shapes as
    :func:`closed_form_prior`: image (B,3,H,W) in [0, 1], trimap (B,1,H,W) {0, 0.5, 1}.
    ``check(fraction done)`` (information flow) is called during the solve and may raise
    to cancel it. ``torch_cg``: information flow's CG in torch on that device (see
    :func:`information_flow_alpha`); None, the default, solves it with numpy."""
    if kind == "cf":
        return closed_form_prior(image, trimap)
    if kind == "ifm":
        img = image.detach().float().cpu().permute(0, 2, 3, 1).numpy()
        tri = trimap.detach().float().cpu()[:, 0].numpy()
        flushed = denormals_flushed()
        if flushed:
            # scipy's KD-tree build can recurse without end (stack overflow, a segfault)
            # when the CPU flushes denormals, which training turns on for speed.
            torch.set_flush_denormal(False)
        try:
            out = [torch.from_numpy(information_flow_alpha(i, t, check, torch_cg=torch_cg)) for i, t in zip(img, tri)]
        finally:
            if flushed:
                torch.set_flush_denormal(True)
        return torch.stack(out)[:, None].to(image.device)
    raise ValueError(f"unknown prior {kind!r}; known: cf, ifm")


def denormals_flushed() -> bool:
    """True when this thread's CPU flushes denormal floats to zero (``torch.set_flush_denormal``)."""
    return float(np.float64(1e-300) * np.float64(1e-10)) == 0.0


def prior_for(kind: str, image: torch.Tensor, trimap: torch.Tensor) -> Optional[torch.Tensor]:
    """What a model with ``cfg.prior == kind`` takes as ``prior`` (None for a model without
    one): :func:`solve_prior` in fp32 outside any autocast, for training and one-shot passes
    (the engine keeps its own, through :class:`~diffmatte.prior.memo.PriorMemo`)."""
    if not kind:
        return None
    with torch.autocast(image.device.type, enabled=False):
        return solve_prior(kind, image.float(), trimap.float())
