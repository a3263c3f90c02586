"""Test doubles of the engine: checkpoints for tests and benches (``diffmatte.testing``
before issue #26 moved it out of the product).

* Tiny random-weight models that load and run fast (``write_tiny_checkpoint``).
* Conformance ("golden") checkpoints: a port of the seeded weight generator that
  produced the official-code reference outputs (``../shared/golden/make_weights.py``,
  whose docstring specifies the recipe so that it can be ported). It lets the golden
  case committed under ``tests/data/golden`` run on any machine, and builds any official
  layout from this project's own module tree without the key lists.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from diffmatte.modeling.config import ModelConfig
from diffmatte.modeling.model import build_model
from diffmatte.weights.checkpoint import PREFIX, save_safetensors

#: A very small ResNet-D DiffMatte (about 0.2 M parameters): meaningless mattes, real code path.
TINY_CONFIG = ModelConfig(name="tiny", backbone="resnet_d", in_chans=6, layers=(1, 1, 1, 1), stem=(8, 8, 16),
                          widths=(16, 16, 32, 32), spectral_norm=False, downsample_in=(7, 8, 8, 16, 16),
                          upsample_in=(32, 16, 16, 16, 8, 8), time_channels=16, emb_channels=16, head_channels=8)


def write_tiny_checkpoint(path: Union[str, os.PathLike], seed: int = 0,
                          config: Optional[ModelConfig] = None) -> Path:
    """Write a small random-weight model as safetensors (with its config) and return the path."""
    torch.manual_seed(seed)
    model = build_model(config or TINY_CONFIG).eval()
    # Random (not identity-initialised) BN/head weights so outputs depend on the inputs.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
    return save_safetensors(model, path)


# -- golden conformance checkpoints -------------------------------------------------------
Row = Tuple[str, Tuple[int, ...], str]

_POS_EMBED_SCALE = 0.2   # the generator's scales (see make_weights.py's docstring)
_REL_POS_SCALE = 0.1
_SN_SIGMA = 2.0
_CONVT = re.compile(r"(^|\.)decoder\.(mid_blk|up_blks\.\d+)\.conv1\.weight$")
_SN_ORDER = {"weight_u": 0, "weight_v": 1, "weight_bar": 2}


def official_rows(cfg: ModelConfig) -> List[Row]:
    """(key, shape, dtype) of every state_dict entry, in the official code's order.

    The generator draws its random numbers row by row, so the order matters. Our modules
    register in the official order except in two places: the official ``DUNet`` creates
    ``time_embed`` after ``down_blks``, and its ``SpectralNorm`` holds ``weight_u``,
    ``weight_v``, ``weight_bar`` in that order (ours: ``weight_bar`` first).
    """
    sd = build_model(cfg).state_dict()
    rows = [(PREFIX + k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in sd.items()]
    time_rows = [r for r in rows if r[0].startswith("model.decoder.time_embed.")]
    rows = [r for r in rows if r not in time_rows]
    last_down = max(i for i, r in enumerate(rows) if r[0].startswith("model.decoder.down_blks."))
    rows[last_down + 1:last_down + 1] = time_rows
    # Within each spectral-norm module, reorder bar/u/v to u/v/bar (they are adjacent).
    i = 0
    while i < len(rows):
        leaf = rows[i][0].rsplit(".", 1)[-1]
        if leaf in _SN_ORDER:
            rows[i:i + 3] = sorted(rows[i:i + 3], key=lambda r: _SN_ORDER[r[0].rsplit(".", 1)[-1]])
            i += 3
        else:
            i += 1
    return rows


def golden_state(cfg: ModelConfig, seed: int) -> "OrderedDict[str, np.ndarray]":
    """Seeded conformance weights for ``cfg``, identical to ``make_weights.py KEYS SEED``.

    numpy ``default_rng(seed)`` draws ``standard_normal(shape)`` once per float32 row in
    the official order; scales keep activations O(1) (conv/linear 1/sqrt(fan_in),
    norm weights 1 + 0.1 z, biases 0.02 z, ...). Spectral-norm weights get a rank-1
    correction so that the eval-time sigma = u . (W v) is exactly 2.
    """
    rng = np.random.default_rng(seed)
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for key, shape, dtype in official_rows(cfg):
        if dtype == "int64":
            out[key] = np.zeros(shape, dtype=np.int64)  # num_batches_tracked: no draw
            continue
        z = rng.standard_normal(size=shape)
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "running_mean":
            v = 0.1 * z
        elif leaf == "running_var":
            v = 1.0 + 0.1 * np.abs(z)
        elif leaf == "pos_embed":
            v = _POS_EMBED_SCALE * z
        elif leaf in ("rel_pos_h", "rel_pos_w"):
            v = _REL_POS_SCALE * z
        elif leaf in ("weight_u", "weight_v"):
            v = z / math.sqrt(float(np.sum(z * z)))
        elif leaf == "weight_bar":
            v = _SN_SIGMA * z / math.sqrt(float(np.prod(shape[1:])))
        elif leaf == "bias":
            v = 0.02 * z
        elif leaf == "weight" and len(shape) == 1:
            v = 1.0 + 0.1 * z
        elif leaf == "weight" and _CONVT.search(key):
            v = z / math.sqrt(float(shape[0] * 4))
        elif leaf == "weight" and len(shape) >= 2:
            v = z / math.sqrt(float(np.prod(shape[1:])))
        else:
            raise ValueError(f"no generator rule for {key} {shape}")
        # Spectral-norm rows stay float64 until the rank-1 fix; the rest is cast now (less memory).
        out[key] = v if leaf in _SN_ORDER else v.astype(np.float32)
    for key in [k for k in out if k.endswith(".weight_bar")]:
        p = key[: -len("weight_bar")]
        u, v = out[p + "weight_u"], out[p + "weight_v"]
        w2 = out[key].reshape(out[key].shape[0], -1)
        s0 = float(np.sum(u[:, None] * w2 * v[None, :]))
        out[key] = (w2 + (_SN_SIGMA - s0) * (u[:, None] * v[None, :])).reshape(out[key].shape)
    for key in out:
        if out[key].dtype == np.float64:
            out[key] = out[key].astype(np.float32)
    return out


def values_digest(state: "OrderedDict[str, np.ndarray]") -> str:
    """SHA-256 over all values in order (little-endian, C order): the golden ``weights_values_sha256``."""
    h = hashlib.sha256()
    for v in state.values():
        h.update(np.ascontiguousarray(v).astype(v.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()


def write_golden_checkpoint(path: Union[str, os.PathLike], cfg: ModelConfig, seed: int,
                            container: str = "model") -> Path:
    """Write ``golden_state(cfg, seed)`` as an official-style ``.pth`` (``container`` "model"
    = ``{"model": sd}``, "bare" = the state_dict itself) or as ``.npz``; returns the path."""
    if container not in ("model", "bare"):
        raise ValueError(f"container must be 'model' or 'bare', got {container!r}")
    state = golden_state(cfg, seed)
    dest = Path(path)
    if dest.suffix == ".npz":
        np.savez(dest, **state)
        return dest
    sd: Dict[str, torch.Tensor] = OrderedDict((k, torch.from_numpy(v)) for k, v in state.items())
    torch.save({"model": sd} if container == "model" else sd, dest)
    return dest
