"""Training run settings (one dataclass, saved in every checkpoint)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults: the bundled ``lite`` model on CPU."""

    out: str = "runs/default"
    variant: str = "lite"
    crop: int = 256
    batch: int = 4                     # per process (per GPU under torchrun)
    lr: float = 4e-4
    weight_decay: float = 0.05
    warmup: int = 250                  # linear warm-up from 0.001 x lr (detectron2 style)
    max_iters: int = 30000
    min_lr_factor: float = 0.02        # cosine decay ends at lr x this
    self_align_step: int = -1          # -1: half of max_iters; the UTI stage runs from here on
    grad_clip: float = 1.0             # 0 disables
    ema: float = 0.999                 # 0 disables the EMA copy
    loss_weights: dict[str, float] = field(default_factory=dict)  # unit weights unless set
    data: list[str] = field(default_factory=lambda: ["synth"])    # "synth" and/or folders
    photos: list[str] = field(default_factory=list)               # extra photo folders
    real_weight: float = 0.7           # share of real-data samples when mixed with synth
    workers: int = 1
    threads: int = 0                   # torch CPU threads (0: leave torch's default)
    device: str = "auto"
    amp: str = "auto"                  # auto | off | bf16 | fp16
    channels_last: bool = True         # NHWC convolutions: up to ~1.25x faster steps on CPU (bench/bench_train_step.py)
    seed: int = 0
    ckpt_minutes: float = 10.0
    ckpt_every: int = 0                # also save every N steps (0: only by time)
    keep_every: int = 5000             # keep a numbered copy every N steps (0: never)
    eval_every: int = 500
    eval_steps: int = 10               # DDIM steps used by periodic evaluation
    val_size: int = 16                 # synthetic validation crops
    eval_dir: str = ""                 # optional real set (e.g. ../shared/data/dev/comp1k-crops)
    eval_limit: int = 10
    log_every: int = 10
    init: str = ""                     # weights to fine-tune from (fresh runs only)
    minutes: float = 0.0               # stop (and save) after this much wall time in one call (0: no limit)
    jpeg: float = 0.0                  # share of composites re-encoded as JPEG (camera-like artefacts)
    # Trimap style mix (erosion, dilation, coarse, product); see diffmatte/train/trimaps.py.
    trimap_mix: list[float] = field(default_factory=lambda: [0.35, 0.35, 0.30, 0.0])

    def resolved_self_align_step(self) -> int:
        return self.max_iters // 2 if self.self_align_step < 0 else self.self_align_step

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
