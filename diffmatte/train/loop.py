"""The training loop: resumable, CPU or CUDA, single process or ``torchrun`` (DDP).

Reproducibility: the data item for (step, rank, i) is a pure function of the seed, and
the diffusion times and noise of a step come from a generator seeded by (seed, step,
rank). A run resumed from ``last.pt`` therefore continues exactly as if never stopped.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ..modeling import build_model
from ..modeling.config import ModelConfig
from ..modeling.variants import get_config
from .config import TrainConfig
from .losses import matting_losses, total_loss
from .objective import DiffusionObjective, sample_times
from .run_setup import BatchStream, build_dataset, extend_into, lr_factor, param_groups, resolve_amp, resolve_device
from .state import EMA, LAST, atomic_torch_save, load_training_state


def _fmt_time(sec: float) -> str:
    sec = int(max(sec, 0))
    h, m = divmod(sec // 60, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{sec % 60:02d}s"


# ----------------------------------------------------------------------------- trainer

class Trainer:
    """Owns model, optimiser, EMA and data; ``run()`` trains until ``max_iters`` or a stop."""

    def __init__(self, cfg: TrainConfig, log: Callable[[str], None] | None = None,
                 dataset: Any = None) -> None:
        self.cfg = cfg
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo"
            dist.init_process_group(backend)
        self.device = resolve_device(cfg.device, self.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.amp_dtype = resolve_amp(cfg.amp, self.device)
        self.out = Path(cfg.out)
        self.is_main = self.rank == 0
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.out / "train.log", "a", encoding="utf-8") if self.is_main else None
        self._print = log or (lambda s: print(s, flush=True))
        self.stop_requested = False

        self.model_cfg: ModelConfig = get_config(cfg.variant)
        self.step = 0
        resume = self.out / LAST
        state = load_training_state(resume) if resume.exists() else None
        if state is not None:
            saved = ModelConfig.from_json(state["model_config"])
            if saved != self.model_cfg:
                raise ValueError(f"{resume} was trained with variant {saved.name!r}, not {cfg.variant!r}; "
                                 "use another --out folder")
        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        self.model = build_model(self.model_cfg)
        if state is None and cfg.init:
            self._load_init(cfg.init)
        self.model.to(self.device)
        self._fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model.to(memory_format=self._fmt)
        self.ema = EMA(self.model, cfg.ema) if cfg.ema > 0 else None
        self.opt = torch.optim.AdamW(param_groups(self.model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.trained_seconds = 0.0
        if state is not None:
            self.model.load_state_dict(state["model"])
            if self.ema is not None and state.get("ema") is not None:
                self.ema.model.load_state_dict(state["ema"])
            self.opt.load_state_dict(state["optimizer"])
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            self.step = int(state["step"])
            self.trained_seconds = float(state.get("trained_seconds", 0.0))
            self.log(f"resumed from {resume} at step {self.step}")
        objective = DiffusionObjective(self.model).to(self.device)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            ids = [self.device.index] if self.device.type == "cuda" else None
            objective = DDP(objective, device_ids=ids)
        self.objective = objective
        self.dataset = dataset if dataset is not None else build_dataset(cfg, cfg.seed)
        self._val = None

    # -- setup helpers
    def _load_init(self, path: str) -> None:
        from ..weights import load_model
        if str(path).endswith(".pt"):
            sd = load_training_state(path)
            src = sd.get("ema") or sd["model"]
        else:
            src = load_model(path).state_dict()
        if self.model_cfg.prior:
            notes = extend_into(self.model, src)
            self.log(f"initialised weights from {path} ({notes})")
            return
        self.model.load_state_dict(src)
        self.log(f"initialised weights from {path}")

    def log(self, msg: str) -> None:
        if not self.is_main:
            return
        line = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
        self._print(line)
        if self._log_file:
            self._log_file.write(line + "\n")
            self._log_file.flush()

    def _jsonl(self, record: dict[str, Any]) -> None:
        if self.is_main:
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    # -- checkpoints
    def save(self, reason: str = "") -> Path | None:
        if not self.is_main:
            return None
        state = {
            "model": self.model.state_dict(),
            "ema": self.ema.model.state_dict() if self.ema is not None else None,
            "optimizer": self.opt.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "step": self.step,
            "trained_seconds": self.trained_seconds,
            "model_config": self.model_cfg.to_json(),
            "train_config": json.dumps(self.cfg.to_dict()),
        }
        path = atomic_torch_save(state, self.out / LAST)
        if self.cfg.keep_every and self.step % self.cfg.keep_every == 0 and self.step > 0:
            atomic_torch_save(state, self.out / f"step_{self.step:07d}.pt")
        self.log(f"saved checkpoint at step {self.step}{' (' + reason + ')' if reason else ''}")
        return path

    # -- one optimisation step
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.cfg
        image = batch["image"].to(self.device, non_blocking=True).contiguous(memory_format=self._fmt)
        alpha = batch["alpha"].to(self.device, non_blocking=True)
        trimap = batch["trimap"].to(self.device, non_blocking=True).contiguous(memory_format=self._fmt)
        x0 = alpha * 2 - 1
        gen = torch.Generator().manual_seed(int(cfg.seed) * 1_000_003 + self.step * 7919 + self.rank)
        self_align = self.step >= cfg.resolved_self_align_step()
        t, t_prev = sample_times(x0.shape[0], self_align, gen)
        noise = torch.randn(x0.shape, generator=gen)
        t, t_prev, noise = t.to(self.device), t_prev.to(self.device), noise.to(self.device)

        for group in self.opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(self.step, cfg)
        self.model.train()
        # BatchNorm statistics change in the forward pass, before the loss can be checked:
        # keep a copy so that a skipped non-finite batch leaves no trace (cheap: buffers only).
        buffers = [b.detach().clone() for b in self.model.buffers()]
        ctx = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        with ctx:
            pred = self.objective(image, trimap, x0, noise, t, t_prev, self_align)
        terms = matting_losses(pred, x0, trimap)
        loss = total_loss(terms, cfg.loss_weights)
        if not torch.isfinite(loss):
            # One bad batch must not end a run that cannot be restarted (a GPU burst): skip
            # it, count it, and stop only if it keeps happening.
            self.bad_steps = getattr(self, "bad_steps", 0) + 1
            self.log(f"non-finite loss at step {self.step} (skipped; {self.bad_steps} so far)")
            if self.bad_steps > 20:
                raise FloatingPointError(f"loss became {loss.item()} at step {self.step}; lower --lr or use --amp off")
            with torch.no_grad():
                for b, saved in zip(self.model.buffers(), buffers):
                    b.copy_(saved)
            self.opt.zero_grad(set_to_none=True)
            self.step += 1
            return {k: 0.0 for k in (*terms, "loss")}
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model, self.step)
        self.step += 1
        out = {k: float(v.detach()) for k, v in terms.items()}
        out["loss"] = float(loss.detach())
        return out

    # -- evaluation
    def _validation_set(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, str]]:
        if self._val is None:
            from .synth import SynthMattingDataset
            from .photos import PhotoPool, default_photo_dirs
            ds = getattr(self.dataset, "pool", None)
            pool = ds if ds is not None else PhotoPool.from_dirs(default_photo_dirs() + list(self.cfg.photos))
            synth = SynthMattingDataset(pool, size=self.cfg.crop, seed=self.cfg.seed + 10_007)
            self._val = []
            for i in range(self.cfg.val_size):
                r = synth.raw(i)
                self._val.append((r["image"], r["alpha"], r["trimap"], f"synth{i}"))
        return self._val

    def evaluate(self) -> dict[str, float]:
        """Mean SAD / MSE of the EMA (or live) model on synthetic val and, if set, a real set."""
        from ..evaluate.metrics import mse, unknown_sad
        from .sampling import predict_alpha

        model = self.ema.model if self.ema is not None else self.model
        results: dict[str, float] = {}
        sets = {"val": self._validation_set()}
        if self.cfg.eval_dir:
            from ..evaluate.datasets import load_samples
            sets["real"] = [(s.image, s.alpha, s.trimap, s.name)
                            for s in load_samples(self.cfg.eval_dir, limit=self.cfg.eval_limit)]
        for key, samples in sets.items():
            sads, mses = [], []
            for image, alpha, trimap, _name in samples:
                pred = predict_alpha(model, image, trimap, steps=self.cfg.eval_steps, seed=0, device=self.device)
                sads.append(unknown_sad(pred, alpha, trimap))
                mses.append(mse(pred, alpha, trimap))
            results[f"{key}_sad"] = float(np.mean(sads))
            results[f"{key}_mse"] = float(np.mean(mses))
        return results

    # -- main loop
    def _install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            self.stop_requested = True
            self.log(f"received signal {signum}: saving and stopping after this step")
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, handler)
            except ValueError:  # not in the main thread (e.g. tests)
                pass

    def run(self, max_steps: int | None = None) -> list[dict[str, float]]:
        """Train until ``max_iters`` (or ``max_steps`` more steps); returns per-step losses."""
        cfg = self.cfg
        self._install_signal_handlers()
        end = cfg.max_iters if max_steps is None else min(cfg.max_iters, self.step + max_steps)
        loader = DataLoader(self.dataset, batch_sampler=BatchStream(self.step, cfg.batch, self.world, self.rank),
                            num_workers=cfg.workers, pin_memory=self.device.type == "cuda",
                            persistent_workers=False, prefetch_factor=4 if cfg.workers > 0 else None)
        n_params = sum(p.numel() for p in self.model.parameters())
        self.log(f"training {cfg.variant} ({n_params / 1e6:.2f} M params) on {self.device}"
                 f"{' x' + str(self.world) if self.world > 1 else ''}, amp={self.amp_dtype}, crop {cfg.crop}, "
                 f"batch {cfg.batch}, lr {cfg.lr:g}, steps {self.step} -> {end}, "
                 f"self-aligned stage from step {cfg.resolved_self_align_step()}")
        bar = None
        if self.is_main and sys.stderr.isatty():
            from tqdm import tqdm
            bar = tqdm(total=end, initial=self.step, unit="it", dynamic_ncols=True)
        history: list[dict[str, float]] = []
        last_save = time.time()
        window: list[dict[str, float]] = []
        t_window = time.time()
        data_time = 0.0
        it = iter(loader)
        deadline = time.time() + cfg.minutes * 60 if cfg.minutes > 0 else float("inf")
        while self.step < end and not self.stop_requested:
            if time.time() >= deadline:
                self.log(f"time limit of {cfg.minutes:g} min reached at step {self.step}")
                break
            t0 = time.time()
            batch = next(it)
            data_time += time.time() - t0
            rec = self.train_step(batch)
            self.trained_seconds += time.time() - t0
            history.append(rec)
            window.append(rec)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{rec['loss']:.4f}", lr=f"{self.opt.param_groups[0]['lr']:.2e}")
            if self.step % cfg.log_every == 0 or self.step == end:
                n = len(window)
                mean = {k: sum(r[k] for r in window) / n for k in window[0]}
                spi = (time.time() - t_window) / n
                stage = "self-aligned" if self.step > cfg.resolved_self_align_step() else "normal"
                self.log(f"step {self.step}/{end} [{stage}] loss {mean['loss']:.4f} "
                         f"(mse {mean['mse']:.4f} unk {mean['unknown_l1']:.4f} known {mean['known_l1']:.4f} "
                         f"grad {mean['grad']:.4f} lap {mean['laplacian']:.4f}) "
                         f"lr {self.opt.param_groups[0]['lr']:.2e} {spi:.2f} s/it (data {data_time / n:.2f}) "
                         f"eta {_fmt_time(spi * (end - self.step))}")
                self._jsonl({"step": self.step, **mean, "lr": self.opt.param_groups[0]["lr"], "s_per_it": spi,
                             "time": time.time()})
                window, t_window, data_time = [], time.time(), 0.0
            due_time = time.time() - last_save >= cfg.ckpt_minutes * 60
            due_step = cfg.ckpt_every > 0 and self.step % cfg.ckpt_every == 0
            if due_time or due_step or (cfg.keep_every and self.step % cfg.keep_every == 0):
                self.save("periodic")
                last_save = time.time()
            if cfg.eval_every > 0 and self.step % cfg.eval_every == 0 and self.is_main:
                t_ev = time.time()
                res = self.evaluate()
                self.log("eval step {}: {} ({:.0f} s)".format(
                    self.step, " ".join(f"{k} {v:.4f}" for k, v in res.items()), time.time() - t_ev))
                self._jsonl({"step": self.step, "eval": res, "time": time.time()})
                t_window = time.time()
        if bar is not None:
            bar.close()
        self.save("stop requested" if self.stop_requested else "end")
        return history

    def close(self) -> None:
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
