"""Sanity bounds for a model config read from a file, checked before anything is built.

A config stored in a checkpoint is untrusted input: a width of 8192 or a depth of
10**6 would allocate gigabytes (or hang) in ``build_model`` before any tensor is
compared, and negative sizes crash deep inside torch. :func:`check_config` bounds
every field generically (ints, floats, int tuples, strings, bools), so fields added
to :class:`ModelConfig` later are bounded too; :func:`expected_shapes` then builds
the network on the ``meta`` device (no memory) to learn the tensor shapes that the
file must match before the real model is built.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Dict, Mapping, Tuple

import torch

from ..errors import WeightsError
from ..modeling import config as config_module
from ..modeling.config import ModelConfig

# Generous ceilings: the largest official variant (ViTB) uses 768 channels, 12 blocks,
# 1024-pixel windows and ~100 M parameters.
MAX_CHANNELS = 4096
MAX_DEPTH = 64
MAX_IMAGE_SIDE = 4096
MAX_TUPLE_LEN = 16
MAX_PARAMETERS = 2_000_000_000
MAX_CONFIG_JSON = 64 * 1024

# Per-field (low, high) for ints and the ints inside tuples; unnamed int fields get
# (0, MAX_CHANNELS). Index lists are checked against ``depth`` separately.
INT_BOUNDS: Dict[str, Tuple[int, int]] = {
    "in_chans": (1, 16), "embed_dim": (1, MAX_CHANNELS), "depth": (1, MAX_DEPTH),
    "num_heads": (1, 64), "patch_size": (1, 64), "img_size": (1, MAX_IMAGE_SIDE),
    "pretrain_img_size": (1, MAX_IMAGE_SIDE), "window_size": (1, 256),
    "window_block_indexes": (0, MAX_DEPTH - 1), "residual_block_indexes": (0, MAX_DEPTH - 1),
    "layers": (1, MAX_DEPTH), "stem": (1, MAX_CHANNELS), "widths": (1, MAX_CHANNELS),
    "downsample_in": (1, MAX_CHANNELS), "upsample_in": (1, MAX_CHANNELS),
    "time_channels": (1, MAX_CHANNELS), "emb_channels": (1, MAX_CHANNELS),
    "head_channels": (1, MAX_CHANNELS),
}
FLOAT_BOUNDS: Dict[str, Tuple[float, float]] = {"mlp_ratio": (0.25, 16.0), "scale": (1e-6, 100.0)}
DEFAULT_FLOAT_BOUNDS = (-1e6, 1e6)


def allowed_strings() -> Dict[str, Tuple[str, ...]]:
    """String fields whose values come from a fixed set (``name`` is free text)."""
    return {"backbone": ("vit", "resnet_d"),
            "prior": config_module.PRIORS}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value: Any, bounds: Tuple[int, int]) -> None:
    if not _is_int(value):
        raise WeightsError(f"the stored model config is invalid: {name} must be an integer, "
                           f"got {type(value).__name__}")
    low, high = bounds
    if not low <= value <= high:
        raise WeightsError(f"the stored model config is out of bounds: {name}={value} "
                           f"(allowed {low}..{high})")


def _field_kind(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if hint is bool:
        return "bool"
    if hint is int:
        return "int"
    if hint is float:
        return "float"
    if hint is str:
        return "str"
    if origin in (tuple, Tuple):
        return "int_tuple"
    if origin in (dict, Dict):
        return "dict"
    return "other"


def check_config(cfg: ModelConfig) -> None:
    """Raise :class:`WeightsError` unless every field of ``cfg`` is within sane bounds."""
    hints = typing.get_type_hints(ModelConfig)
    strings = allowed_strings()
    for field in dataclasses.fields(ModelConfig):
        name, value = field.name, getattr(cfg, field.name)
        kind = _field_kind(hints.get(name))
        if kind == "bool":
            if not isinstance(value, bool):
                raise WeightsError(f"the stored model config is invalid: {name} must be true or false")
        elif kind == "int":
            _check_int(name, value, INT_BOUNDS.get(name, (0, MAX_CHANNELS)))
        elif kind == "float":
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise WeightsError(f"the stored model config is invalid: {name} must be a finite number")
            low, high = FLOAT_BOUNDS.get(name, DEFAULT_FLOAT_BOUNDS)
            if not low <= value <= high:
                raise WeightsError(f"the stored model config is out of bounds: {name}={value} "
                                   f"(allowed {low:g}..{high:g})")
        elif kind == "int_tuple":
            if not isinstance(value, tuple) or len(value) > MAX_TUPLE_LEN:
                raise WeightsError(f"the stored model config is invalid: {name} must be a list of at "
                                   f"most {MAX_TUPLE_LEN} integers")
            for item in value:
                _check_int(name, item, INT_BOUNDS.get(name, (0, MAX_CHANNELS)))
        elif kind == "str":
            if not isinstance(value, str):
                raise WeightsError(f"the stored model config is invalid: {name} must be a string")
            allowed = strings.get(name)
            if allowed is not None and value not in allowed:
                raise WeightsError(f"the stored model config is invalid: {name}={value[:40]!r} "
                                   f"(known: {', '.join(repr(a) for a in allowed)})")
            if len(value) > 128 or not value.isprintable():
                raise WeightsError(f"the stored model config is invalid: {name} must be short printable text")
        elif kind == "dict":
            if not isinstance(value, dict) or len(value) > 64:
                raise WeightsError(f"the stored model config is invalid: {name} must be a small object")
    depth = cfg.depth
    for name in ("window_block_indexes", "residual_block_indexes"):
        if any(i >= depth for i in getattr(cfg, name)):
            raise WeightsError(f"the stored model config is invalid: {name} refers to blocks beyond "
                               f"depth={depth}")
    if cfg.backbone == "vit" and cfg.embed_dim % cfg.num_heads:
        raise WeightsError(f"the stored model config is invalid: embed_dim={cfg.embed_dim} is not a "
                           f"multiple of num_heads={cfg.num_heads}")


def config_from_json(text: str) -> ModelConfig:
    """Parse a stored config (bounded size), then :func:`check_config` it."""
    if not isinstance(text, str) or len(text) > MAX_CONFIG_JSON:
        raise WeightsError(f"the stored model config is invalid: longer than {MAX_CONFIG_JSON} characters")
    try:
        cfg = ModelConfig.from_json(text)
    except (ValueError, TypeError, RecursionError) as exc:  # json errors are ValueErrors
        raise WeightsError(f"the stored model config is invalid: {exc}") from None
    check_config(cfg)
    return cfg


def expected_shapes(cfg: ModelConfig) -> Dict[str, Tuple[int, ...]]:
    """Shapes of the state_dict of ``cfg``'s network, built on the meta device (no memory).

    Raises :class:`WeightsError` when the network cannot be built from ``cfg`` or would
    have more than ``MAX_PARAMETERS`` parameters.
    """
    from ..modeling.model import build_model  # torch-heavy, only when needed

    check_config(cfg)
    try:
        with torch.device("meta"):
            model = build_model(cfg)
    except (ValueError, TypeError, RuntimeError, IndexError, ZeroDivisionError) as exc:
        raise WeightsError(f"the stored model config does not describe a buildable network: "
                           f"{type(exc).__name__}: {exc}") from None
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    total = sum(math.prod(s) for s in shapes.values())
    if total > MAX_PARAMETERS:
        raise WeightsError(f"the stored model config describes {total:,} parameters "
                           f"(more than {MAX_PARAMETERS:,}); refused")
    return shapes


def shapes_of(sd: Mapping[str, torch.Tensor]) -> Dict[str, Tuple[int, ...]]:
    """``{key: shape}`` of a state_dict."""
    return {k: tuple(v.shape) for k, v in sd.items()}
