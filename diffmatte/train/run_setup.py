"""What a training run is built from: its batch order and learning-rate schedule, the
optimiser's parameter groups, the device and autocast precision, the data stream, and
the initialisation of a prior model from weights without the prior. The loop itself is
:mod:`diffmatte.train.loop`."""
from __future__ import annotations

import math
from typing import Any, Iterator

import torch

from .config import TrainConfig


class BatchStream:
    """Infinite batch sampler: batch k of rank r holds items k*B*W + r*B + [0, B)."""

    def __init__(self, start_step: int, batch: int, world: int = 1, rank: int = 0) -> None:
        self.start, self.batch, self.world, self.rank = start_step, batch, world, rank

    def __iter__(self) -> Iterator[list[int]]:
        k = self.start
        while True:
            base = (k * self.world + self.rank) * self.batch
            yield list(range(base, base + self.batch))
            k += 1


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up from 0.001, then cosine decay to ``min_lr_factor`` at ``max_iters``."""
    if step < cfg.warmup:
        return 0.001 + (1 - 0.001) * step / max(cfg.warmup, 1)
    span = max(cfg.max_iters - cfg.warmup, 1)
    p = min(max(step - cfg.warmup, 0) / span, 1.0)
    return cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * p))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on norms, biases and other 1-D parameters (weight_decay_norm = 0)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") or "pos_embed" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available")
    return dev


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: bf16 on CUDA when supported, else fp16; off on CPU unless asked."""
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        return torch.float16
    if mode != "auto":
        raise ValueError(f"--amp must be auto, off, bf16 or fp16, got {mode!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def build_dataset(cfg: TrainConfig, seed: int):
    """The training stream named by ``cfg.data`` ("synth" and/or real folders)."""
    from .folder_data import FolderMattingDataset, MixedDataset
    from .photos import PhotoPool, default_photo_dirs
    from .synth import SynthMattingDataset

    pool = PhotoPool.from_dirs(default_photo_dirs() + list(cfg.photos))
    parts: list[Any] = []
    weights: list[float] = []
    folders = [d for d in cfg.data if d != "synth"]
    for d in folders:
        parts.append(FolderMattingDataset(d, pool, size=cfg.crop, seed=seed, trimap_mix=cfg.trimap_mix))
        weights.append(cfg.real_weight / len(folders))
    if "synth" in cfg.data or not parts:
        parts.append(SynthMattingDataset(pool, size=cfg.crop, seed=seed, trimap_mix=cfg.trimap_mix, jpeg=cfg.jpeg))
        weights.append(1.0 - cfg.real_weight if folders else 1.0)
    return parts[0] if len(parts) == 1 else MixedDataset(parts, weights, seed=seed)


def extend_into(model: torch.nn.Module, src: dict[str, torch.Tensor]) -> str:
    """Load a model without a prior into a prior model of the same base layout.

    Tensors of equal shape are copied; input convolutions that gained the prior channel
    get the old weights for the old channels and zeros for the new one; the decoder's
    last layer and the fusion head keep their zero initialisation, so the extended
    model starts out returning the prior exactly.
    """
    own = model.state_dict()
    copied, widened = 0, 0
    keep_zero = ("decoder.matting_head.matting_convs.3.",)
    for name, t in own.items():
        if name.startswith("fusion.") or name.startswith(keep_zero) or name not in src:
            continue
        s = src[name].to(t.dtype)
        if s.shape == t.shape:
            own[name] = s.clone()
            copied += 1
        elif s.dim() == t.dim() == 4 and s.shape[0] == t.shape[0] and s.shape[1] + 1 == t.shape[1] \
                and s.shape[2:] == t.shape[2:]:
            w = torch.zeros_like(t)
            w[:, :s.shape[1]] = s
            own[name] = w
            widened += 1
        else:
            raise ValueError(f"cannot initialise {name}: shape {tuple(s.shape)} vs {tuple(t.shape)}")
    model.load_state_dict(own)
    return f"{copied} tensors copied, {widened} input convolutions widened for the prior"
