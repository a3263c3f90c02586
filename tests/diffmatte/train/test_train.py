"""Tiny training runs: the loss falls, resume is exact, export loads in the engine."""
import numpy as np
import pytest
import torch

from diffmatte.train.config import TrainConfig
from diffmatte.train.loop import Trainer
from diffmatte.train.run_setup import BatchStream, lr_factor
from diffmatte.train.photos import PhotoPool
from diffmatte.train.synth import SynthMattingDataset, procedural_background


@pytest.fixture(scope="module")
def dataset():
    rng = np.random.default_rng(0)
    pool = PhotoPool([(procedural_background(96, rng) * 255).astype(np.uint8) for _ in range(3)])
    return SynthMattingDataset(pool, size=64, seed=0)


class FixedBatch:
    """Always the same two samples: a net must fit them, so the loss has to fall."""

    def __init__(self, ds):
        self.items = [ds[0], ds[1]]

    def __len__(self):
        return 10 ** 9

    def __getitem__(self, i):
        return self.items[i % 2]


def _cfg(out, **kw):
    base = dict(out=str(out), crop=64, batch=2, workers=0, lr=1e-3, warmup=2, max_iters=1000,
                self_align_step=1000, eval_every=0, log_every=1000, ckpt_minutes=1e9, keep_every=0, threads=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)


def test_loss_falls_on_a_fixed_batch(tmp_path, dataset):
    tr = Trainer(_cfg(tmp_path), log=lambda s: None, dataset=FixedBatch(dataset))
    hist = tr.run(max_steps=30)
    tr.close()
    losses = [h["loss"] for h in hist]
    assert len(losses) == 30 and all(np.isfinite(losses))
    assert np.mean(losses[-6:]) < 0.75 * np.mean(losses[:6]), losses


def test_resume_is_exact_including_self_aligned_stage(tmp_path, dataset):
    # Self-aligned (UTI) stage from step 2, so both modes are exercised.
    kw = dict(self_align_step=2)
    a = Trainer(_cfg(tmp_path / "a", **kw), log=lambda s: None, dataset=dataset)
    hist_a = a.run(max_steps=4)
    a.close()

    b1 = Trainer(_cfg(tmp_path / "b", **kw), log=lambda s: None, dataset=dataset)
    hist_b = b1.run(max_steps=2)   # saves last.pt at the end
    b1.close()
    b2 = Trainer(_cfg(tmp_path / "b", **kw), log=lambda s: None, dataset=dataset)
    assert b2.step == 2
    hist_b += b2.run(max_steps=2)
    b2.close()

    assert [h["loss"] for h in hist_a] == [h["loss"] for h in hist_b]
    for (na, pa), (nb, pb) in zip(a.model.state_dict().items(), b2.model.state_dict().items()):
        assert na == nb and torch.equal(pa, pb), na
    for pa, pb in zip(a.ema.model.parameters(), b2.ema.model.parameters()):
        assert torch.equal(pa, pb)


def test_export_loads_in_engine(tmp_path, dataset):
    tr = Trainer(_cfg(tmp_path / "run"), log=lambda s: None, dataset=dataset)
    tr.run(max_steps=1)
    tr.close()
    from diffmatte.train.export import export_weights
    from diffmatte.weights import load_model
    path = export_weights(tmp_path / "run", tmp_path / "m.safetensors")
    model = load_model(path)
    assert model.cfg.name == "lite"
    ema = tr.ema.model.state_dict()
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, ema[k].to(torch.float16).float())
    with pytest.raises(ValueError, match="not found"):
        export_weights(tmp_path / "missing", tmp_path / "x.safetensors")


def test_resume_refuses_other_variant(tmp_path, dataset):
    tr = Trainer(_cfg(tmp_path), log=lambda s: None, dataset=dataset)
    tr.run(max_steps=1)
    tr.close()
    with pytest.raises(ValueError, match="variant"):
        Trainer(_cfg(tmp_path, variant="Res34"), log=lambda s: None, dataset=dataset)


def test_schedule_and_batch_stream():
    cfg = TrainConfig(lr=1.0, warmup=10, max_iters=110, min_lr_factor=0.1)
    assert lr_factor(0, cfg) == pytest.approx(0.001)
    assert lr_factor(10, cfg) == pytest.approx(1.0)
    assert lr_factor(60, cfg) == pytest.approx(0.55)
    assert lr_factor(110, cfg) == pytest.approx(0.1)
    it = iter(BatchStream(start_step=3, batch=2, world=2, rank=1))
    assert next(it) == [14, 15] and next(it) == [18, 19]


def test_cli_export_preview_and_errors(tmp_path, dataset, monkeypatch, capsys):
    import argparse

    from diffmatte.train import cli as train_cli
    from diffmatte.train import run_setup

    parser = argparse.ArgumentParser()
    train_cli.register(parser.add_subparsers())
    # Export from a run folder that has no checkpoint: a clear error, exit code 2.
    args = parser.parse_args(["train", "--out", str(tmp_path / "none"), "--export", str(tmp_path / "x.safetensors")])
    assert args.func(args) == 2
    assert "not found" in capsys.readouterr().out
    args = parser.parse_args(["train", "--out", str(tmp_path), "--crop", "100"])
    assert args.func(args) == 2
    # Preview sheet of the training stream (dataset swapped for the tiny in-memory one).
    monkeypatch.setattr(run_setup, "build_dataset", lambda cfg, seed: dataset)
    png = tmp_path / "sheet.png"
    args = parser.parse_args(["train", "--preview-data", str(png), "--preview-count", "3"])
    assert args.func(args) == 0
    from PIL import Image
    w, h = Image.open(png).size
    assert h == 3 * 64 and w >= 3 * 64


def test_init_from_exported_weights(tmp_path, dataset):
    tr = Trainer(_cfg(tmp_path / "src"), log=lambda s: None, dataset=dataset)
    tr.run(max_steps=1)
    tr.close()
    from diffmatte.train.export import export_weights
    w = export_weights(tmp_path / "src", tmp_path / "w.safetensors", half=False)
    ft = Trainer(_cfg(tmp_path / "ft", init=str(w)), log=lambda s: None, dataset=dataset)
    assert ft.step == 0
    for (k, a), b in zip(ft.model.state_dict().items(), tr.ema.model.state_dict().values()):
        assert torch.equal(a, b), k
    ft.close()
