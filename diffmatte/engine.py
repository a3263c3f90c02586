"""The inference engine: a loaded model plus the sampler, behind ``refine``."""
from __future__ import annotations

import os
import threading
from dataclasses import replace
from typing import Callable, Optional, Union

import numpy as np
import torch

from . import RESULTS_REVISION
from .diffusion import Schedule
from .errors import Cancelled, InputError
from .io.images import check_pair, to_float_rgb, to_trimap
from .sampling.memory import MiB, parse_bytes, plan_memory, prior_bytes
from .sampling.passes import PRIOR_UNITS, StepInfo, refine_widened  # noqa: F401 - StepInfo re-exported
from .modeling.model import DiffMatteModel
from .prior.cg import TorchCG
from .prior.memo import PriorMemo
from .prior.white_point import WHITE_POINT, check_white_point, prior_matte
from .sampling.tile_cache import TileCache
from .sampling.tiled import TiledSampler, TileSettings, default_halos
from .sampling.tiling import PlanStats
from .weights.checkpoint import load_model
from .weights.resolve import DEFAULT_WEIGHTS, default_weights_path, resolve_weights  # noqa: F401 - re-exported


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use device='cpu' or 'auto'")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return torch.device(device)


#: Engine.prior_solver's values: where information flow runs.
PRIOR_SOLVERS = ("auto", "numpy", "torch")


class Engine:
    """A DiffMatte model ready for inference. Create with :func:`load_engine`."""

    def __init__(self, model: DiffMatteModel, device: torch.device, source: str, precision: str = "fp32",
                 prior_solver: str = "auto") -> None:
        if prior_solver not in PRIOR_SOLVERS:
            raise ValueError(f"prior_solver must be one of {', '.join(PRIOR_SOLVERS)}, got {prior_solver!r}")
        if precision not in ("fp32", "fp16", "bf16"):
            raise ValueError(f"precision must be fp32, fp16, bf16 (or 'auto' in load_engine), got {precision!r}")
        if precision == "fp16" and device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device")
        if precision == "bf16" and device.type == "cpu" and not cpu_bf16_supported():
            raise ValueError("precision bf16 on CPU needs AVX512-BF16 or AMX, which this CPU lacks; use fp32")
        # channels_last makes the many full-resolution convolutions of the decoder about
        # 1.5x faster on CPU (oneDNN) and suits cuDNN; numerics stay within ~1e-6.
        self.model = model.to(device, memory_format=torch.channels_last).eval()
        self.device = device
        self.source = source
        self.precision = precision
        self.schedule = Schedule(scale=model.cfg.scale)
        self._lock = threading.Lock()  # one refine at a time per engine
        #: Memory a refine may use (bytes or "4G"); None: automatic from free RAM / VRAM.
        #: The CLI's --max-memory / --tile-size reach every engine via DIFFMATTE_MAX_MEMORY /
        #: DIFFMATTE_TILE_SIZE (also usable for the service and batch workers).
        self.max_memory: Union[int, str, None] = os.environ.get("DIFFMATTE_MAX_MEMORY") or None
        #: Largest decoder tile; None: automatic (memory and work), 0: always the whole image.
        env_tile = os.environ.get("DIFFMATTE_TILE_SIZE", "").strip()
        self.tile_size: Optional[int] = int(env_tile) if env_tile else None
        #: Band-only (sparse) decoding of tiles; False: dense tiles, the previous path kept for
        #: measurements (DIFFMATTE_SPARSE=0; docs/TILING.md).
        self.sparse: bool = os.environ.get("DIFFMATTE_SPARSE", "1") != "0"
        #: Decoder context around each tile in pixels (multiple of 32); None: the measured
        #: default for the architecture (tiled_sampler.default_halos).
        self.tile_halo: Optional[int] = None
        #: Encoder features and tile results of recent refines (content-hashed), so that a
        #: refine after a local trimap edit re-decodes only the tiles the edit reaches.
        self.cache = TileCache(512 * MiB)
        self.cache_bytes = 512 * MiB
        #: The last prior solved (prior models), so that a refine after a local trimap edit
        #: re-solves only around the edit (``prior_memo.last`` says what happened).
        self.prior_memo = PriorMemo()
        #: Where information flow runs (issue #23): "numpy" (KD-trees, scipy, numpy CG on the
        #: CPU), "torch" (neighbour searches, weights and CG in torch on the engine's device,
        #: a CPU included: the GPU path's arithmetic, testable anywhere; the sparse rows are
        #: still assembled by scipy), or "auto": torch on a CUDA device, numpy on a CPU (where
        #: the brute-force searches are 10-20x slower than the KD-trees: docs/TILING.md).
        self.prior_solver = prior_solver
        #: What the last refine did (tiles, decoded and reused tile-steps, memory plan).
        self.last_stats = None

    @property
    def config(self):
        return self.model.cfg

    def info(self) -> dict:
        n_params = sum(p.numel() for p in self.model.parameters())
        # "prior_only": the matte is the model's classical prior (no learned correction), so
        # it does not depend on the seed / variation and no network pass runs.
        return {"variant": self.model.cfg.name, "backbone": self.model.cfg.backbone, "params": n_params,
                "device": str(self.device), "precision": self.precision, "weights": self.source,
                "torch": torch.__version__, "prior": getattr(self.model.cfg, "prior", ""),
                "prior_only": self.model.passes_prior_through(), "results_revision": RESULTS_REVISION}

    def refine(self, image: np.ndarray, trimap: np.ndarray, steps: int = 10, seed: Optional[int] = None,
               noise: Optional[np.ndarray] = None, callback: Optional[Callable[[StepInfo], None]] = None,
               cancel: Optional[threading.Event] = None, force_fg: bool = True,
               samples: int = 1, tile_size: Optional[int] = None,
               max_memory: Union[int, str, None] = None,
               progress: Optional[Callable[[int, int], None]] = None,
               widen_band: bool = False, band: Optional[float] = None,
               white_point: Optional[float] = None) -> np.ndarray:
        """Refine a trimap into an alpha matte (H x W float32 in [0, 1]).

        ``noise`` (H x W float32) is the initial x_T; otherwise it is drawn from ``seed``
        (or randomly). Known background is forced to 0 and, unless ``force_fg=False``
        (official behaviour), known foreground to 1.

        ``samples`` > 1 runs the sampler that many times from independent noise
        (seeds ``seed``, ``seed + 1``, ...; the image encoder runs once) and returns the
        mean alpha: a result that depends less on the noise, at ``samples`` times the
        decoder cost. Not combinable with ``noise``. ``callback`` then counts steps over
        all samples.

        Band-limited tiles (docs/TILING.md): the decoder runs only on tiles that hold
        unknown pixels. ``tile_size`` (default ``engine.tile_size``): None picks tiles from
        the memory budget and uses them where they save work, 0 always decodes the whole
        image as one tile (the reference path), N > 0 uses tiles of at most N pixels.
        ``max_memory`` (default ``engine.max_memory``; bytes or ``"4G"``): the budget, else
        from free RAM / VRAM; a refine that cannot fit raises ``MemoryBudgetError`` before
        any work. ``progress(done, total)`` counts the real work: encoder tiles and
        tile x step decodes (cancel is checked between tiles).

        ``widen_band``: the trimap came from rough input (a lasso, a box, strokes), so its
        band may have missed the edge: where the first matte shows that the band cut
        through partial alpha, the band grows there and the matte is solved once more
        (``trimap.widen``; the prior memo re-solves around the change). ``progress``
        then counts both passes. ``band``: the band radius the trimap was made with (the
        user's band option), by which the band grows; None: the image's default band.

        ``white_point`` (models whose matte is their information-flow prior, the default
        model): the prior's alpha at or above it becomes opaque and partial alpha is
        stretched by 1 / white_point (0.5..1; None: ``prior.white_point.WHITE_POINT``, 0.97; 1.0
        keeps the prior's own alpha, for glass and other partial alpha that must stay exact).
        """
        try:
            wp = WHITE_POINT if white_point is None else check_white_point(white_point)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        img = to_float_rgb(image)
        tri = to_trimap(trimap)
        check_pair(img, tri)
        args = (steps, seed, noise)
        rest = (cancel, force_fg, samples, tile_size, max_memory)

        def finish(alpha: np.ndarray) -> np.ndarray:
            return self._finish(alpha, wp)
        if callback is not None:
            shown = callback
            callback = lambda info: shown(replace(info, x0=finish(info.x0)))  # noqa: E731
        if not widen_band:
            return finish(self._refine_once(img, tri, *args, callback, *rest, progress))

        def solve(t: np.ndarray, cb: Optional[Callable[[StepInfo], None]], pr: Optional[Callable[[int, int], None]]):
            return self._refine_once(img, t, *args, cb, *rest, pr)
        # the widening reads the first pass's own alpha (its thresholds were measured on the
        # prior's), the white point comes after both passes
        return finish(refine_widened(solve, tri, band, int(steps) * int(samples), callback, progress, cancel))

    def _finish(self, alpha: np.ndarray, white_point: float) -> np.ndarray:
        """The matte from a pass's alpha: for a model whose matte is its prior, the prior's
        white point (``prior.white_point.prior_matte``); other models' alpha as it is."""
        if self.model.cfg.prior and self.model.passes_prior_through():
            return prior_matte(self.model.cfg.prior, alpha, white_point)
        return alpha

    def _refine_once(self, img: np.ndarray, tri: np.ndarray, steps, seed, noise, callback, cancel, force_fg,
                     samples, tile_size, max_memory, progress) -> np.ndarray:
        """One refine of a checked image and trimap (see :meth:`refine`)."""
        h, w = tri.shape
        starts = _noise_starts(h, w, seed, noise, samples)
        steps = int(steps)
        if not 1 <= steps <= 1000:
            raise InputError(f"steps must be between 1 and 1000, got {steps}")
        cfg = self.model.cfg
        mem, settings = self._plan(tri, tile_size, max_memory)

        with self._lock, torch.inference_mode():
            self.cache.max_bytes = mem.cache
            self.cache.trim()
            if cfg.backbone == "vit":
                for blk in self.model.backbone.blocks:  # bounded-memory (exact) global attention
                    blk.attn.chunk_tokens = mem.attention_chunk
            prior = self._prior(img, tri, cancel, progress)
            if prior is not None and self.model.passes_prior_through():
                alpha, stats = self._prior_matte(prior, h * w, steps * len(starts), callback, progress)
            else:
                alpha, stats = self._sample(img, tri, prior, starts, steps, settings, callback, progress, cancel)
            stats.memory = mem.as_dict()
            self.last_stats = stats
        alpha[tri == 0] = 0.0
        if force_fg:
            alpha[tri == 1] = 1.0
        return alpha

    def _prior_matte(self, prior: np.ndarray, image_px: int, total_steps: int,
                     callback: Optional[Callable[[StepInfo], None]],
                     progress: Optional[Callable[[int, int], None]]) -> tuple:
        """(alpha, PlanStats) of a model whose correction layers are all zero: every step's x0
        would be the prior whatever the noise, so the sampler would return it (up to the
        logit's 1e-3 clamp) after `steps` network passes. Skip them (docs/MODEL_CARD.md)."""
        alpha, stats = prior.astype(np.float32, copy=True), PlanStats(image_px=image_px)
        # progress first: the step event a service sends carries the work counts
        if progress is not None:
            progress(PRIOR_UNITS, PRIOR_UNITS)
        if callback is not None:
            callback(StepInfo(index=total_steps, total=total_steps, t=0.0, x0=alpha.copy()))
        return alpha, stats

    def _sample(self, img: np.ndarray, tri: np.ndarray, prior: Optional[np.ndarray], starts: list, steps: int,
                settings, callback: Optional[Callable[[StepInfo], None]],
                progress: Optional[Callable[[int, int], None]], cancel: Optional[threading.Event]) -> tuple:
        """(alpha, PlanStats) from the diffusion sampler over the planned tiles."""
        dev = self.device
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16

        def autocast():
            return torch.autocast(dev.type, dtype=dtype) if self.precision != "fp32" else _null()

        def on_step(sample: int, k: int, t: float, x0: torch.Tensor) -> None:
            if callback is not None:
                x0_alpha = ((x0[0, 0] + 1) / 2).float().cpu().numpy()
                callback(StepInfo(index=sample * steps + k + 1, total=steps * len(starts), t=t, x0=x0_alpha))

        sampler = TiledSampler(self.model, dev, self.schedule, autocast, self.cache,
                               f"{self.source}:{self.precision}:{id(self.model)}")
        try:
            # no callback: the sparse sampler then keeps no whole-image x0 for previews
            return sampler.run(img, tri, prior, starts, steps, settings,
                               on_step if callback is not None else None, progress, cancel)
        finally:
            sampler = None
            if dev.type == "cuda":
                torch.cuda.empty_cache()  # release device memory before the next job

    def _plan(self, tri: np.ndarray, tile_size: Optional[int], max_memory: Union[int, str, None]) -> tuple:
        """(MemoryPlan, TileSettings) of a refine: the memory budget and the tiles that fit it.
        A refine that cannot fit raises ``MemoryBudgetError`` here, before any work."""
        h, w = tri.shape
        tile = self.tile_size if tile_size is None else tile_size
        if tile is not None and (int(tile) != 0 and (int(tile) % 32 or not 64 <= int(tile) <= 16384)):
            raise InputError(f"tile_size must be 0 (whole image) or a multiple of 32 in 64..16384, got {tile}")
        cfg = self.model.cfg
        dec_halo, enc_halo = default_halos(cfg)
        if self.tile_halo is not None:
            dec_halo = int(self.tile_halo)
        mem = plan_memory(cfg, sum(p.numel() for p in self.model.parameters()), h, w, self.device, dec_halo,
                          enc_halo, parse_bytes(max_memory if max_memory is not None else self.max_memory),
                          cache=self.cache_bytes, tile=None if tile is None else int(tile),
                          element=4 if self.precision == "fp32" else 2, has_prior=bool(getattr(cfg, "prior", "")),
                          prior_peak=prior_bytes(getattr(cfg, "prior", ""), h, w, int((tri == 0.5).sum())))
        settings = TileSettings(tile=mem.tile, halo=dec_halo, encoder_tile=mem.encoder_tile,
                                encoder_halo=enc_halo, whole_ok=tile is None and mem.whole_fits, batch=mem.batch,
                                sparse=self.sparse)
        return mem, settings

    def _prior(self, img: np.ndarray, tri: np.ndarray, cancel: Optional[threading.Event],
               progress: Optional[Callable[[int, int], None]]) -> Optional[np.ndarray]:
        """A prior model's prior for the whole image (cropped per tile later), through the
        memo; None for a model without one. Cancel is checked during the solve; when the
        prior is all the work (``passes_prior_through``) it reports progress in
        ``PRIOR_UNITS``, from 0 when the solve starts (the solve's fractions, never backwards)."""
        cfg = self.model.cfg
        if not getattr(cfg, "prior", ""):
            return None
        prior_only = self.model.passes_prior_through()
        shown = [-1]

        def check(fraction: float) -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled("refine cancelled")
            done = min(PRIOR_UNITS - 1, int(fraction * PRIOR_UNITS))
            if prior_only and progress is not None and done > shown[0]:  # the prior is all the work
                shown[0] = done
                progress(done, PRIOR_UNITS)

        check(0.0)  # the solve begins (front ends show it) and a cancel before it counts
        return self.prior_memo.solve(cfg.prior, img, tri, check, self.prior_cg())

    def prior_cg(self) -> Optional[TorchCG]:
        """Where information flow runs as ``prior_solver`` chooses it: a float64
        :class:`TorchCG` with ``flows`` (searches, weights and CG in torch) on the engine's
        device ("torch", and "auto" on a CUDA device), or None for numpy ("numpy", and
        "auto" on a CPU)."""
        if self.prior_solver not in PRIOR_SOLVERS:
            raise ValueError(f"prior_solver must be one of {', '.join(PRIOR_SOLVERS)}, got {self.prior_solver!r}")
        if self.prior_solver == "torch" or (self.prior_solver == "auto" and self.device.type == "cuda"):
            return TorchCG(self.device, "float64", flows=True)
        return None


def _noise_starts(h: int, w: int, seed: Optional[int], noise: Optional[np.ndarray],
                  samples: int) -> list:
    """One function per sample returning its x_T (1, 1, H, W): ``noise`` as given, else drawn
    from seeds seed, seed + 1, ... when the sample starts (the same values as drawing all
    first, with one whole-image noise in memory at a time). Checks ``samples`` and ``noise``."""
    samples = int(samples)
    if not 1 <= samples <= 64:
        raise InputError(f"samples must be between 1 and 64, got {samples}")
    if noise is not None and samples > 1:
        raise InputError("samples > 1 draws its own noise; do not pass noise as well")
    if noise is not None:
        noise_arr = np.asarray(noise, dtype=np.float32)
        if noise_arr.shape != (h, w):
            raise InputError(f"noise must have shape {(h, w)}, got {noise_arr.shape}")
        if not np.isfinite(noise_arr).all():
            raise InputError("noise contains NaN or infinite values")
        x_T = torch.from_numpy(noise_arr.copy())[None, None]
        return [lambda: x_T]

    def draw(i: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(int(seed) + i) if seed is not None else None
        return torch.randn((1, 1, h, w), generator=gen)
    return [lambda i=i: draw(i) for i in range(samples)]


def cpu_bf16_supported() -> bool:
    """Whether oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def load_engine(weights: Union[str, os.PathLike] = "default", device: str = "auto",
                precision: str = "auto", prior_solver: str = "auto") -> Engine:
    """Load a DiffMatte engine.

    ``weights``: ``"default"`` (the bundled model), an official variant name downloaded
    with ``diffmatte download`` (``"ViTS_1024"``, ``"ViTB"`` ...), or a path to an official
    ``.pth``, a ``.safetensors`` or an ``.npz`` checkpoint; the variant is detected from its keys.
    ``device``: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    ``precision``: ``"fp32"``, ``"bf16"`` (CUDA, or a CPU with AVX512-BF16 / AMX), ``"fp16"``
    (CUDA) or ``"auto"`` (the default): bf16 for this project's models on a CPU with native
    bf16 (measured 2.3x less CPU time, dev-set SAD +0.12 %, docs/TILING.md), else fp32 (the
    official checkpoints keep fp32 for parity with the official outputs; CUDA keeps fp32).
    The default model's prior is solved in float64 whatever the precision.
    ``prior_solver``: where information flow runs (searches, weights, CG), ``"auto"`` (torch on a CUDA device,
    else numpy), ``"numpy"`` or ``"torch"`` (on ``device``); see ``Engine.prior_solver``.
    """
    path = resolve_weights(weights)
    dev = resolve_device(device)
    if dev.type == "cuda":
        # fp32 parity with the official outputs needs true fp32 matmuls.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    model = load_model(path)
    if precision == "auto":
        from .modeling.variants import OFFICIAL

        native = dev.type == "cpu" and cpu_bf16_supported()
        precision = "bf16" if native and model.cfg.name not in OFFICIAL else "fp32"
    return Engine(model, dev, str(path), precision, prior_solver)
