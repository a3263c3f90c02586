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
    from doubles.checkpoints import TINY_CONFIG

    with pytest.raises(WeightsError, match="matting_convs.0.weight"):
        load_model(bad, config=TINY_CONFIG)


def test_missing_and_unexpected_keys_are_named(tiny_weights: Path, tmp_path: Path) -> None:
    from doubles.checkpoints import TINY_CONFIG

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
    from doubles.checkpoints import TINY_CONFIG

    model = build_model(TINY_CONFIG)
    with torch.no_grad():
        model.decoder.time_embed[0].weight[0, 0] = float("nan")
    p = save_safetensors(model, tmp_path / "nan.safetensors")
    with pytest.raises(WeightsError, match="NaN"):
        load_model(p)


# -- hostile and broken files (issue #15) ----------------------------------------------------
@pytest.mark.parametrize("name", ["empty.pth", "empty.safetensors", "empty.npz", "empty.ckpt"])
def test_an_empty_file_is_named_as_empty(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(WeightsError, match=r"empty \(0 bytes\)"):
        load_model(tmp_path / name)


@pytest.mark.parametrize("data,needle", [
    (b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>x</body></html>",
     "HTML page ('Google Drive - Quota exceeded')"),
    (b"\n  <html><body>Sign in</body></html>", "HTML page"),
    (b"404: Not Found\n", "text file"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n", "text file"),
])
def test_html_and_text_saved_as_pth_are_named_and_never_advise_running_them(tmp_path: Path, data, needle):
    path = tmp_path / "DiffMatte_ViTS_Com_1024.pth"
    path.write_bytes(data)
    with pytest.raises(WeightsError) as err:
        load_model(path)
    text = str(err.value)
    assert needle in text
    assert "weights_only" not in text and "possibly executable" not in text


def test_random_bytes_saved_as_pth_are_not_called_code(tmp_path: Path) -> None:
    path = tmp_path / "noise.pth"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint") as err:
        load_model(path)
    assert "weights_only" not in str(err.value)


def test_a_truncated_pth_is_a_clear_error(tiny_weights: Path, tmp_path: Path) -> None:
    pth = _official_style_pth(tiny_weights, tmp_path / "x.pth")
    data = pth.read_bytes()
    pth.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint") as err:
        load_model(pth)
    assert str(err.value).strip().endswith(")") and "weights_only" not in str(err.value)


def test_pickled_code_message_names_the_global_without_torch_advice(tiny_weights: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"payload": _Exploit(marker)}, evil)
    with pytest.raises(WeightsError, match="refused") as err:
        load_model(evil)
    assert "system" in str(err.value) and "weights_only" not in str(err.value)
    assert not marker.exists()


def _with_config(tiny_weights: Path, dest: Path, **changes) -> Path:
    """The tiny checkpoint with its stored config edited (tensors unchanged)."""
    import json

    from safetensors.torch import save_file

    from diffmatte.weights.checkpoint import CONFIG_METADATA_KEY

    sd, meta = read_checkpoint(tiny_weights)
    cfg = json.loads(meta[CONFIG_METADATA_KEY])
    cfg.update(changes)
    meta[CONFIG_METADATA_KEY] = json.dumps(cfg)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(dest), metadata=meta)
    return dest


@pytest.mark.parametrize("changes,needle", [
    (dict(widths=[16, 16, 32, 8192]), "widths=8192"),
    (dict(layers=[1, 1, -1, 1]), "layers=-1"),
    (dict(stem=[8, -8, 16]), "stem=-8"),
    (dict(in_chans=-6), "in_chans=-6"),
    (dict(time_channels=10**7), "time_channels"),
    (dict(depth=10**6), "depth"),
    (dict(embed_dim=8192), "embed_dim=8192"),
    (dict(backbone="evil"), "backbone"),
    (dict(mlp_ratio=float("inf")), "mlp_ratio"),
    (dict(mlp_ratio="4"), "mlp_ratio"),
    (dict(spectral_norm="yes"), "spectral_norm"),
    (dict(downsample_in=list(range(1, 40))), "downsample_in"),
    (dict(widths=[16, 16, 32, True]), "widths"),
    (dict(window_block_indexes=[0, 99]), "window_block_indexes"),
    (dict(colour="red"), "unknown model config fields"),
    (dict(prior="rm -rf"), "prior"),
])
def test_a_stored_config_out_of_bounds_is_refused_before_building(tiny_weights: Path, tmp_path: Path,
                                                                   monkeypatch, changes, needle) -> None:
    import diffmatte.weights.checkpoint as ckpt

    built = []
    monkeypatch.setattr(ckpt, "build_model", lambda cfg: built.append(cfg))
    path = _with_config(tiny_weights, tmp_path / "cfg.safetensors", **changes)
    with pytest.raises(WeightsError, match="model config") as err:
        load_model(path)
    assert needle in str(err.value)
    assert built == []  # nothing was allocated


def test_a_config_within_bounds_but_not_matching_the_tensors_never_builds(tiny_weights: Path, tmp_path: Path,
                                                                          monkeypatch) -> None:
    import diffmatte.weights.checkpoint as ckpt

    built = []
    monkeypatch.setattr(ckpt, "build_model", lambda cfg: built.append(cfg))
    path = _with_config(tiny_weights, tmp_path / "wide.safetensors", widths=[16, 16, 32, 4096],
                        upsample_in=[4096, 16, 16, 16, 8, 8])
    with pytest.raises(WeightsError, match="shape mismatches"):
        load_model(path)
    assert built == []


def test_shapes_from_the_file_that_break_detection_are_a_clear_error(tiny_weights: Path, tmp_path: Path) -> None:
    sd, _ = read_checkpoint(tiny_weights)
    sd["model.decoder.time_embed.0.weight"] = torch.zeros(3)  # rank 1 where rank 2 is read
    bad = tmp_path / "odd.pth"
    torch.save(sd, bad)
    with pytest.raises(WeightsError, match="cannot detect"):
        load_model(bad)


def test_official_variants_pass_the_bounds() -> None:
    from doubles.checkpoints import TINY_CONFIG
    from diffmatte.modeling.variants import VARIANTS
    from diffmatte.weights.bounds import check_config, expected_shapes

    for cfg in [*VARIANTS.values(), TINY_CONFIG]:
        check_config(cfg)
        assert expected_shapes(cfg)


def test_a_prior_conditioned_checkpoint_passes_the_checks(tmp_path: Path) -> None:
    from doubles.checkpoints import TINY_CONFIG, write_tiny_checkpoint

    cfg = TINY_CONFIG.replace(name="tiny_cf", prior="cf")
    model = load_model(write_tiny_checkpoint(tmp_path / "cf.safetensors", config=cfg))
    assert model.cfg.prior == "cf"
