"""Safe loading, validation and conversion of DiffMatte checkpoints.

Accepts the official ``.pth`` files (``{"model": state_dict}`` or a bare state_dict,
keys ``model.backbone.*`` / ``model.decoder.*``), ``.safetensors`` and ``.npz``.
Pickles are only read with ``torch.load(weights_only=True)``, which refuses any
object that is not plain tensors/containers, so no code from a file ever runs.

Unlike the official loader (which warns and skips mismatching tensors), every
missing, unexpected or mis-shaped key is an error that names the keys.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from ..errors import WeightsError
from ..modeling.config import ModelConfig
from ..modeling.model import DiffMatteModel, build_model
from .bounds import check_config, config_from_json, expected_shapes

CONFIG_METADATA_KEY = "refine_matte.config"
PREFIX = "model."

StateDict = Dict[str, torch.Tensor]


_SNIFF = 512
_TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".tar")


def _first_line(exc: BaseException) -> str:
    """First line of an exception's text, or its type name when the text is empty."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _html_title(head: bytes) -> str:
    match = re.search(rb"<title[^>]*>([^<]{1,120})", head, re.IGNORECASE)
    return " ".join(match.group(1).decode("utf-8", "replace").split()) if match else ""


def sniff(path: Path) -> None:
    """Name an empty, HTML, text or foreign file for what it is, before any parser runs.

    A failed download (Google Drive saves its quota or sign-in page under the
    checkpoint's name) must not reach ``torch.load``, whose error text for it advises
    ``weights_only=False``, i.e. running the file.
    """
    size = path.stat().st_size
    if size == 0:
        raise WeightsError(f"{path}: the file is empty (0 bytes), not a checkpoint; a download or copy "
                           "probably failed: download it again")
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF)
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:64].lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<!--", b"<body", b"<?xml", b"<meta")):
        title = _html_title(head)
        raise WeightsError(
            f"{path}: this is an HTML page{f' ({title!r})' if title else ''}, not a checkpoint: a failed "
            "download (Google Drive saves its quota, virus-scan or sign-in page under the file's name). "
            "Download the file again (diffmatte download, or in a browser)")
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text[:-4]):
            shown = " ".join(text.split())[:60]
            raise WeightsError(f"{path}: this is a text file ({shown!r}...), not a checkpoint; "
                               "a download or copy probably failed")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        length = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
        if not (2 <= length <= size - 8 and head[8:9] == b"{"):
            raise WeightsError(f"{path}: not a safetensors file (its header is missing or damaged)")
    elif suffix == ".npz":
        if not head.startswith(b"PK\x03\x04"):
            raise WeightsError(f"{path}: not an .npz archive (no zip header)")
    elif suffix in _TORCH_SUFFIXES and not (head.startswith(b"PK\x03\x04")
                                           or (head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05")):
        raise WeightsError(f"{path}: not a PyTorch checkpoint (neither the zip format of torch.save "
                           f"nor a pickle; it starts with {head[:8]!r})")


def _torch_load(path: Path) -> Mapping:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own text advises weights_only=False; never pass that on. Keep only
        # the unpickler's reason (e.g. "Unsupported global: GLOBAL os.system").
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = [line for line in lines if "weights_only" not in line and "torch.load" not in line]
        reason = re.sub(r"^\w*Unpickler error:\s*", "", detail[0])[:200] if detail else ""
        if re.search(r"global|reduce|build|callable", reason, re.IGNORECASE):
            raise WeightsError(
                f"{path}: refused to load: the file holds pickled Python objects other than tensors "
                f"({reason}); nothing from it was run. Only plain tensor checkpoints are accepted; "
                "do not open this file with tools that execute pickles unless you trust its source") from None
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint (damaged or truncated"
                           f"{': ' + reason if reason else ''})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, IndexError,
            TypeError, AttributeError, MemoryError, OverflowError) as exc:
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({_first_line(exc)})") from None


def _read_raw(path: Path) -> Tuple[Mapping, Dict[str, str]]:
    sniff(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import safe_open
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
                return {k: f.get_tensor(k) for k in f.keys()}, meta
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise WeightsError(f"{path}: not a readable safetensors file ({_first_line(exc)})") from None
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: torch.from_numpy(np.array(npz[k])) for k in npz.files}, {}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError, TypeError) as exc:
            raise WeightsError(f"{path}: not a readable .npz weights archive ({_first_line(exc)})") from None
    obj = _torch_load(path)
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return obj, {}


def unwrap_state_dict(obj: Mapping) -> StateDict:
    """Take the state_dict out of its container and normalise key prefixes to ``model.``."""
    for container_key in ("model", "state_dict"):
        inner = obj.get(container_key) if isinstance(obj, Mapping) else None
        if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            obj = inner
            break
    sd: StateDict = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue  # e.g. "iteration" counters next to the weights
        k = key[len("module."):] if key.startswith("module.") else key
        if k.startswith("backbone.") or k.startswith("decoder."):
            k = PREFIX + k
        sd[k] = value
    if not sd:
        raise WeightsError("the checkpoint holds no tensors")
    return sd


def read_checkpoint(path: os.PathLike | str) -> Tuple[StateDict, Dict[str, str]]:
    """Read a checkpoint file safely; returns (state_dict with ``model.`` keys, metadata)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file not found: {p}")
    raw, meta = _read_raw(p)
    return unwrap_state_dict(raw), meta


def _count(sd: StateDict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd for m in [rx.match(k)] if m})


def _shape(sd: StateDict, key: str) -> Tuple[int, ...]:
    if key not in sd:
        raise WeightsError(f"cannot detect the architecture: key {key!r} is missing")
    return tuple(sd[key].shape)


def _decoder_config(sd: StateDict) -> dict:
    n_down = _count(sd, r"model\.decoder\.down_blks\.(\d+)\.")
    n_up = _count(sd, r"model\.decoder\.up_blks\.(\d+)\.")
    if n_down == 0 or n_up == 0:
        raise WeightsError("cannot detect the decoder: no model.decoder.down_blks / up_blks keys")
    down = [_shape(sd, "model.decoder.down_blks.0.conv1.weight")[1]]
    down += [_shape(sd, f"model.decoder.down_blks.{i}.conv1.weight")[0] for i in range(n_down)]
    mid = _shape(sd, "model.decoder.mid_blk.conv1.weight")  # ConvTranspose (in, out, k, k)
    up = [mid[0], mid[1]] + [_shape(sd, f"model.decoder.up_blks.{i}.conv1.weight")[1] for i in range(n_up)]
    time_w = _shape(sd, "model.decoder.time_embed.0.weight")
    head = _shape(sd, "model.decoder.matting_head.matting_convs.0.weight")
    return dict(downsample_in=tuple(down), upsample_in=tuple(up), time_channels=time_w[1],
                emb_channels=time_w[0], head_channels=head[0])


def detect_config(sd: StateDict, metadata: Optional[Mapping[str, str]] = None) -> ModelConfig:
    """Work out the architecture from the keys and shapes (or the stored config)."""
    from ..modeling.variants import OFFICIAL, VARIANTS

    if metadata and CONFIG_METADATA_KEY in metadata:
        return config_from_json(metadata[CONFIG_METADATA_KEY])
    try:
        cfg = _detect(sd)
    except WeightsError:
        raise
    except (KeyError, IndexError, ZeroDivisionError, TypeError, ValueError) as exc:
        # The shapes come from the file: odd ranks or empty dimensions end up here.
        raise WeightsError(f"cannot detect the architecture from the tensor shapes "
                           f"({type(exc).__name__}: {exc})") from None
    for name in OFFICIAL:
        if VARIANTS[name].replace(name="custom") == cfg:
            return VARIANTS[name]
    check_config(cfg)  # shapes read from the file are untrusted too
    return cfg


def _detect(sd: StateDict) -> ModelConfig:
    if any(".relative_position_bias_table" in k for k in sd):
        raise WeightsError("this looks like a DiffMatte-SwinT checkpoint; SwinT is not supported "
                           "(its released code does not match the published parameter count)")
    dec = _decoder_config(sd)
    if "model.backbone.pos_embed" in sd:
        pos = _shape(sd, "model.backbone.pos_embed")
        patch = _shape(sd, "model.backbone.patch_embed.proj.weight")
        embed_dim, in_chans, patch_size = patch[0], patch[1], patch[2]
        depth = _count(sd, r"model\.backbone\.blocks\.(\d+)\.")
        rel = {i: _shape(sd, f"model.backbone.blocks.{i}.attn.rel_pos_h") for i in range(depth)}
        head_dim = rel[0][1]
        lengths = sorted({r[0] for r in rel.values()})
        win_len = lengths[0]
        glob_len = lengths[-1]
        window_blocks = tuple(i for i in range(depth) if rel[i][0] == win_len) if len(lengths) > 1 else ()
        residual = tuple(i for i in range(depth) if f"model.backbone.blocks.{i}.residual.conv1.weight" in sd)
        pre = int(round((pos[1] - 1) ** 0.5)) * patch_size
        cfg = ModelConfig(name="custom", backbone="vit", in_chans=in_chans, embed_dim=embed_dim, depth=depth,
                          num_heads=embed_dim // head_dim, patch_size=patch_size,
                          img_size=(glob_len + 1) // 2 * patch_size, pretrain_img_size=pre,
                          window_size=(win_len + 1) // 2 if window_blocks else 14,
                          window_block_indexes=window_blocks, residual_block_indexes=residual,
                          mlp_ratio=_shape(sd, "model.backbone.blocks.0.mlp.fc1.weight")[0] / embed_dim, **dec)
    elif "model.backbone.conv1.module.weight_bar" in sd or "model.backbone.conv1.weight" in sd:
        sn = "model.backbone.conv1.module.weight_bar" in sd
        wkey = ".module.weight_bar" if sn else ".weight"
        stem = tuple(_shape(sd, f"model.backbone.conv{i}{wkey}")[0] for i in (1, 2, 3))
        in_chans = _shape(sd, f"model.backbone.conv1{wkey}")[1]
        names = ("layer1", "layer2", "layer3", "layer_bottleneck")
        layers = tuple(_count(sd, rf"model\.backbone\.{n}\.(\d+)\.") for n in names)
        widths = tuple(_shape(sd, f"model.backbone.{n}.0.conv1{wkey}")[0] for n in names)
        cfg = ModelConfig(name="custom", backbone="resnet_d", in_chans=in_chans, layers=layers, stem=stem,
                          widths=widths, spectral_norm=sn, **dec)
    else:
        raise WeightsError("cannot detect the encoder: neither ViT (model.backbone.pos_embed) nor "
                           "ResNet-D (model.backbone.conv1.*) keys are present")
    return cfg


def validate_state_dict(model: DiffMatteModel, sd: StateDict) -> None:
    """Raise WeightsError naming every missing, unexpected and mis-shaped key."""
    check_shapes({k: tuple(v.shape) for k, v in model.state_dict().items()}, sd, model.cfg.name)


def check_shapes(expected_model: Mapping[str, Tuple[int, ...]], sd: StateDict, name: str) -> None:
    """Compare a state_dict with the model's ``{key: shape}``; raise WeightsError naming
    every missing, unexpected and mis-shaped key, or a NaN/infinite tensor."""
    expected = {PREFIX + k: tuple(v) for k, v in expected_model.items()}
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    mismatched = sorted(f"{k}: checkpoint {tuple(sd[k].shape)} vs model {expected[k]}"
                        for k in set(sd) & set(expected) if tuple(sd[k].shape) != expected[k])
    if missing or unexpected or mismatched:
        def show(items: List[str]) -> str:
            return ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
        parts = []
        if missing:
            parts.append(f"missing keys: {show(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {show(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches: {show(mismatched)}")
        raise WeightsError(f"checkpoint does not match the {name} architecture; " + "; ".join(parts))
    for k, v in sd.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise WeightsError(f"checkpoint tensor {k} contains NaN or infinite values")


def load_model(path: os.PathLike | str, config: Optional[ModelConfig] = None) -> DiffMatteModel:
    """Read, detect, validate and build a model in eval mode (float32, CPU).

    The config is bounds-checked and the tensors are compared with the shapes of the
    network built on the meta device *before* the real network is allocated.
    """
    sd, meta = read_checkpoint(path)
    cfg = config or detect_config(sd, meta)
    check_shapes(expected_shapes(cfg), sd, cfg.name)
    model = build_model(cfg)
    own = {k[len(PREFIX):]: v.to(torch.float32) if v.is_floating_point() else v for k, v in sd.items()}
    model.load_state_dict(own, strict=True)
    return model.eval()


def save_safetensors(model: DiffMatteModel, path: os.PathLike | str, *, half: bool = False,
                     extra_metadata: Optional[Mapping[str, str]] = None) -> Path:
    """Write the model's weights (official key layout) + its config as safetensors, atomically."""
    from safetensors.torch import save_file

    sd = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point():
            v = v.to(torch.float16)
        sd[PREFIX + k] = v
    meta = {CONFIG_METADATA_KEY: model.cfg.to_json(), "format": "pt"}
    meta.update(extra_metadata or {})
    from ..io.fsutil import atomic_path

    dest = Path(path)
    with atomic_path(dest) as tmp:
        save_file(sd, tmp, metadata=meta)
    return dest


def convert_to_safetensors(src: os.PathLike | str, dest: os.PathLike | str, *, half: bool = False) -> Path:
    """Validate an official (or any supported) checkpoint and write it as safetensors."""
    model = load_model(src)
    digest = hashlib.sha256(Path(src).read_bytes()).hexdigest()
    return save_safetensors(model, dest, half=half,
                            extra_metadata={"source_sha256": digest, "source_name": Path(src).name})
