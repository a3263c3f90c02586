"""Turn a training checkpoint into a deployable safetensors file (fp16 by default)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..modeling import build_model
from ..modeling.config import ModelConfig
from .state import LAST, load_training_state


def export_weights(checkpoint: str | os.PathLike, dest: str | os.PathLike, *, use_ema: bool = True,
                   half: bool = True) -> Path:
    """Write the EMA (or live) weights of ``checkpoint`` (a ``.pt`` file or a run folder) to ``dest``.

    The model config and the training step go into the safetensors metadata, so the
    engine can rebuild the architecture from the file alone.
    """
    from ..weights import save_safetensors

    src = Path(checkpoint)
    if src.is_dir():
        src = src / LAST
    if not src.exists():
        raise ValueError(f"training checkpoint not found: {src}")
    dest = Path(dest)
    if dest.resolve() == src.resolve():
        raise ValueError("export destination must differ from the checkpoint")
    state = load_training_state(src)
    cfg = ModelConfig.from_json(state["model_config"])
    model = build_model(cfg)
    weights = state.get("ema") if use_ema and state.get("ema") is not None else state["model"]
    model.load_state_dict(weights)
    train_cfg = json.loads(state.get("train_config", "{}"))
    meta = {
        "train_step": str(int(state["step"])),
        "train_hours": f"{float(state.get('trained_seconds', 0.0)) / 3600:.2f}",
        "weights_kind": "ema" if weights is state.get("ema") else "live",
        "train_crop": str(train_cfg.get("crop", "")),
        "train_data": ",".join(train_cfg.get("data", [])),
    }
    return save_safetensors(model.eval(), dest, half=half, extra_metadata=meta)
