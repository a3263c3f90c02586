"""Checkpoint safety and strict validation."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from diffmatte.errors import WeightsError
from diffmatte.weights.checkpoint import (convert_to_safetensors, detect_config, load_model, read_checkpoint,
                                          save_safetensors)


class _Exploit:
    """Pickles to a call of os.system: loading it with plain pickle would run a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _official_style_pth(tiny_weights: Path, dest: Path, container: bool = True) -> Path:
    sd, _ = read_checkpoint(tiny_weights)
    torch.save({"model": sd} if container else sd, dest)
    return dest


def test_pickled_code_is_refused_without_running(tiny_weights: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    sd, _ = read_checkpoint(tiny_weights)
    evil = tmp_path / "evil.pth"
    torch.save({"model": sd, "payload": _Exploit(marker)}, evil)
    with pytest.raises(WeightsError, match="refused"):
        load_model(evil)
    assert not marker.exists()


def test_wrong_shape_names_the_key(tiny_weights: Path, tmp_path: Path) -> None:
    sd, _ = read_checkpoint(tiny_weights)
    key = "model.decoder.matting_head.matting_convs.0.weight"
    sd[key] = torch.zeros(5, *sd[key].shape[1:])
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    from diffmatte.testing import TINY_CONFIG

    with pytest.raises(WeightsError, match="matting_convs.0.weight"):
        load_model(bad, config=TINY_CONFIG)


def test_missing_and_unexpected_keys_are_named(tiny_weights: Path, tmp_path: Path) -> None:
    from diffmatte.testing import TINY_CONFIG

    sd, _ = read_checkpoint(tiny_weights)
    del sd["model.decoder.time_embed.2.bias"]
    sd["model.decoder.extra.weight"] = torch.zeros(3)
    bad = tmp_path / "bad.pth"
    torch.save({"model": sd}, bad)
    with pytest.raises(WeightsError) as err:
        load_model(bad, config=TINY_CONFIG)
    assert "time_embed.2.bias" in str(err.value) and "decoder.extra.weight" in str(err.value)


@pytest.mark.parametrize("container", [True, False])
def test_official_containers_and_prefixes(tiny_weights: Path, tmp_path: Path, container: bool) -> None:
    pth = _official_style_pth(tiny_weights, tmp_path / "x.pth", container)
    sd, _ = read_checkpoint(pth)
    assert all(k.startswith("model.") for k in sd)
    model = load_model(pth)  # architecture detected from the keys alone (no metadata in .pth)
    assert model.cfg.backbone == "resnet_d"
    ddp = {"module." + k: v for k, v in sd.items()}
    torch.save(ddp, tmp_path / "ddp.pth")
    assert set(read_checkpoint(tmp_path / "ddp.pth")[0]) == set(sd)


def test_detect_matches_stored_config(tiny_weights: Path) -> None:
    sd, meta = read_checkpoint(tiny_weights)
    stored = detect_config(sd, meta)
    guessed = detect_config(sd, None)
    assert guessed.replace(name=stored.name) == stored


def test_convert_roundtrip_half(tiny_weights: Path, tmp_path: Path) -> None:
    pth = _official_style_pth(tiny_weights, tmp_path / "x.pth")
    out = convert_to_safetensors(pth, tmp_path / "x.safetensors", half=True)
    a, b = load_model(pth), load_model(out)
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(va.float(), vb.float(), atol=1e-2, rtol=1e-2), k


def test_garbage_files_give_clear_errors(tmp_path: Path) -> None:
    for name, data in [("a.pth", b"not a checkpoint"), ("b.safetensors", b"\x00" * 10), ("c.npz", b"zz")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(WeightsError):
            load_model(tmp_path / name)
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "missing.pth")


def test_nan_weights_rejected(tiny_weights: Path, tmp_path: Path) -> None:
    from diffmatte.modeling import build_model
    from diffmatte.testing import TINY_CONFIG

    model = build_model(TINY_CONFIG)
    with torch.no_grad():
        model.decoder.time_embed[0].weight[0, 0] = float("nan")
    p = save_safetensors(model, tmp_path / "nan.safetensors")
    with pytest.raises(WeightsError, match="NaN"):
        load_model(p)
