"""Trimaps from Segment Anything prompts (clicks and boxes).

:class:`SamPrompter` holds a ``segment_anything`` predictor and an LRU cache of
image embeddings keyed by image content, so that after the first click on an
image every further click only runs SAM's prompt encoder and mask decoder
(milliseconds) instead of its image encoder (seconds).

Checkpoints are never downloaded here: the installer puts them in place and
:func:`find_checkpoint` looks for them. torch and segment_anything are imported
only when a prompter is built, so ``import trimap`` stays light.
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._validate import as_image
from .band import from_mask

MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
# File names of the official checkpoints, as the installer saves them.
CHECKPOINT_FILES = {
    "vit_b": "sam_vit_b_01ec64.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_h": "sam_vit_h_4b8939.pth",
}
ENV_CHECKPOINT = "REFINE_MATTE_SAM_CHECKPOINT"
ENV_CONFIG_DIR = "REFINE_MATTE_CONFIG_DIR"
# Mask logits strictly between these are SAM's own uncertainty -> unknown.
DEFAULT_LOGIT_RANGE = (-2.0, 2.0)


class SamCheckpointError(ValueError):
    """The SAM checkpoint is missing, unreadable or does not fit the model type."""


def config_dir() -> Path:
    """The product's config directory (see docs/ARCHITECTURE.md).

    One of the two implementations of this rule: ``trimap`` may import neither diffmatte
    nor the plugin (import contracts), so it cannot use ``refine_matte.client.config_dir``,
    which the plugin and the service share. tests/diffmatte/service/test_service_process.py checks that the
    two agree on every platform.
    """
    env = os.environ.get(ENV_CONFIG_DIR)
    if env:
        return Path(env)
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "Refine Matte"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Refine Matte"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "refine-matte"


def model_type_from_path(path: Union[str, Path]) -> Optional[str]:
    """Guess the model type from a checkpoint file name (``sam_vit_l_*.pth`` -> ``vit_l``)."""
    name = Path(path).name.lower()
    for mt in MODEL_TYPES:
        if mt in name:
            return mt
    return None


def find_checkpoint(model_type: str = "vit_b", checkpoint: Union[str, Path, None] = None) -> Path:
    """Locate a SAM checkpoint; never downloads.

    Search order: ``checkpoint`` if given; the ``REFINE_MATTE_SAM_CHECKPOINT``
    environment variable; ``<config dir>/sam/<official file name>``; any
    ``<config dir>/sam/sam_<model_type>*.pth``. Raises :class:`SamCheckpointError`
    naming the places it looked.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    if checkpoint is not None:
        p = Path(checkpoint).expanduser()
        if not p.is_file():
            raise SamCheckpointError(f"SAM checkpoint not found: {p}")
        return p
    looked: List[str] = []
    env = os.environ.get(ENV_CHECKPOINT)
    if env:
        p = Path(env).expanduser()
        if p.is_file():
            return p
        looked.append(f"${ENV_CHECKPOINT}={p}")
    folder = config_dir() / "sam"
    p = folder / CHECKPOINT_FILES[model_type]
    if p.is_file():
        return p
    looked.append(str(p))
    if folder.is_dir():
        found = sorted(folder.glob(f"sam_{model_type}*.pth"))
        if found:
            return found[0]
    raise SamCheckpointError(
        f"no SAM {model_type} checkpoint found (looked at: {', '.join(looked)}); "
        f"install it with the Refine Matte installer or pass a path"
    )


def locate_checkpoint(checkpoint: Union[str, Path, None], model_type: Optional[str]) -> Path:
    """Find the checkpoint; with neither a path nor a type, take any installed one (vit_b first)."""
    if checkpoint is not None or model_type is not None:
        return find_checkpoint(model_type or model_type_from_path(checkpoint or "") or "vit_b", checkpoint)
    first_error: Optional[SamCheckpointError] = None
    for mt in MODEL_TYPES:
        try:
            return find_checkpoint(mt)
        except SamCheckpointError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _is_sam_model(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("image_encoder", "prompt_encoder", "mask_decoder"))


def image_key(image: np.ndarray) -> str:
    """Content key of an image for the embedding cache (shape, dtype and bytes)."""
    arr = np.ascontiguousarray(image)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{arr.shape}|{arr.dtype}".encode())
    h.update(arr.data)
    return h.hexdigest()


class SamPrompter:
    """Segment Anything predictor with an embedding cache, producing trimaps.

    Args:
        checkpoint: path to a SAM checkpoint, an already built SAM model
            (e.g. ``sam_model_registry["vit_b"](checkpoint=None)`` in tests), or
            ``None`` to use :func:`find_checkpoint`.
        model_type: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``; ``None`` guesses it
            from the file name (default ``vit_b``).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        cache_size: how many image embeddings to keep (each is 4 MiB).
        logit_range: mask logits strictly inside ``(lo, hi)`` become unknown.
        multimask: ask SAM for three masks and keep the best by its predicted score.
    """

    def __init__(
        self,
        checkpoint: Union[str, Path, Any, None] = None,
        model_type: Optional[str] = None,
        device: str = "cpu",
        cache_size: int = 4,
        logit_range: Tuple[float, float] = DEFAULT_LOGIT_RANGE,
        multimask: bool = True,
    ) -> None:
        import torch  # heavy; only here
        from segment_anything import SamPredictor, sam_model_registry

        if int(cache_size) < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size!r}")
        self.logit_range = _check_logit_range(logit_range)
        self.multimask = bool(multimask)
        self.cache_size = int(cache_size)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"

        if _is_sam_model(checkpoint):
            model = checkpoint
            self.checkpoint_path: Optional[Path] = None
            self.model_type = model_type
        else:
            path = locate_checkpoint(checkpoint, model_type)
            mt = model_type or model_type_from_path(path) or "vit_b"
            if mt not in MODEL_TYPES:
                raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {mt!r}")
            model = sam_model_registry[mt](checkpoint=None)
            try:
                state = torch.load(str(path), map_location="cpu", weights_only=True)
                model.load_state_dict(state)
            except Exception as exc:
                raise SamCheckpointError(
                    f"cannot load SAM {mt} checkpoint {path}: {type(exc).__name__}: {exc}"
                ) from exc
            self.checkpoint_path = path
            self.model_type = mt
        model.to(device)
        model.eval()
        self.model = model
        self.device = device
        self.predictor = SamPredictor(model)
        self._cache: "OrderedDict[str, Tuple[Any, Tuple[int, int], Tuple[int, int]]]" = OrderedDict()
        self._current: Optional[str] = None
        self.encoder_calls = 0  # how many image embeddings were computed (for tests and logs)
        # The predictor holds one "current image"; a service may call from several threads.
        self._lock = threading.RLock()

    # -- embedding cache -------------------------------------------------
    def set_image(self, image: np.ndarray) -> str:
        """Make ``image`` current, computing its embedding only on a cache miss.

        Returns the cache key.
        """
        rgb = _to_uint8_rgb(image)
        key = image_key(rgb)
        with self._lock:
            return self._set_image_locked(rgb, key)

    def _set_image_locked(self, rgb: np.ndarray, key: str) -> str:
        if key == self._current and self.predictor.is_image_set:
            self._cache.move_to_end(key)
            return key
        hit = self._cache.get(key)
        if hit is not None:
            feats, orig, inp = hit
            self.predictor.features = feats
            self.predictor.original_size = orig
            self.predictor.input_size = inp
            self.predictor.is_image_set = True
            self._cache.move_to_end(key)
        else:
            self.predictor.set_image(rgb, image_format="RGB")
            self.encoder_calls += 1
            p = self.predictor
            self._cache[key] = (p.features, tuple(p.original_size), tuple(p.input_size))
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        self._current = key
        return key

    def clear_cache(self) -> None:
        """Forget every cached embedding."""
        with self._lock:
            self._cache.clear()
            self._current = None
            self.predictor.reset_image()

    # -- prediction ------------------------------------------------------
    def predict_logits(
        self,
        image: np.ndarray,
        points: Optional[Sequence[Sequence[float]]] = None,
        labels: Optional[Sequence[int]] = None,
        box: Optional[Sequence[float]] = None,
    ) -> Tuple[np.ndarray, float]:
        """SAM mask logits (H x W float32) for the prompts, and the mask's score.

        ``points``: (x, y) pixel coordinates; ``labels``: 1 = foreground,
        0 = background (default: all 1). ``box``: (x0, y0, x1, y1), or a list of
        such boxes (one mask per box, with the points; their union is returned
        as the per-pixel maximum of the logits, and the lowest score).
        """
        rgb = _to_uint8_rgb(image)
        h, w = rgb.shape[:2]
        pts, lbs = _check_points(points, labels, w, h)
        boxes = _check_boxes(box, w, h)
        if pts is None and not boxes:
            raise ValueError("give at least one prompt: points (with labels) or a box")
        logits_all, scores = [], []
        with self._lock:
            self.set_image(rgb)
            for b in boxes or [None]:
                masks, iou, _ = self.predictor.predict(
                    point_coords=pts,
                    point_labels=lbs,
                    box=None if b is None else np.asarray(b, np.float32),
                    multimask_output=self.multimask,
                    return_logits=True,
                )
                best = int(np.argmax(iou))
                logits_all.append(np.asarray(masks[best], np.float32))
                scores.append(float(iou[best]))
        return np.maximum.reduce(logits_all), float(min(scores))

    def trimap(
        self,
        image: np.ndarray,
        points: Optional[Sequence[Sequence[float]]] = None,
        labels: Optional[Sequence[int]] = None,
        box: Optional[Sequence[float]] = None,
        band: Optional[float] = None,
        adaptive: bool = True,
        shift: float = 0.0,
        transparency: bool = False,
        logit_range: Optional[Tuple[float, float]] = None,
    ) -> np.ndarray:
        """Trimap (H x W uint8, 0/128/255) from SAM prompts on ``image``.

        The mask is SAM's logits > 0; logits strictly inside ``logit_range``
        (default: the prompter's) are unknown, and the band of
        :func:`trimap.from_mask` is added around the boundary. Prompts are as in
        :meth:`predict_logits`; ``band``, ``adaptive``, ``shift`` and
        ``transparency`` as in :func:`trimap.from_mask`.
        """
        lo, hi = self.logit_range if logit_range is None else _check_logit_range(logit_range)
        logits, _ = self.predict_logits(image, points=points, labels=labels, box=box)
        prob = 1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))
        soft = (1.0 / (1.0 + math.exp(-lo)), 1.0 / (1.0 + math.exp(-hi)))
        return from_mask(
            prob.astype(np.float32),
            band=band,
            adaptive=adaptive,
            shift=shift,
            soft_range=soft,
            image=image if transparency else None,
            transparency=transparency,
        )


def _check_logit_range(logit_range: Tuple[float, float]) -> Tuple[float, float]:
    try:
        lo, hi = (float(v) for v in logit_range)
    except (TypeError, ValueError):
        raise ValueError(f"logit_range must be a pair (lo, hi), got {logit_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= 0.0 <= hi):
        raise ValueError(f"logit_range must satisfy lo <= 0 <= hi, got {logit_range!r}")
    return lo, hi


def _to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3:
        return arr
    return np.round(as_image(arr) * 255.0).astype(np.uint8)


def _check_points(
    points: Optional[Sequence[Sequence[float]]], labels: Optional[Sequence[int]], w: int, h: int
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    if points is None or len(points) == 0:
        if labels is not None and len(labels) > 0:
            raise ValueError("labels given without points")
        return None, None
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 1 and pts.shape[0] == 2:
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must be a list of (x, y) pairs, got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("points contain NaN or infinite coordinates")
    outside = (pts[:, 0] < 0) | (pts[:, 0] > w - 1) | (pts[:, 1] < 0) | (pts[:, 1] > h - 1)
    if outside.any():
        x, y = pts[int(np.argmax(outside))]
        raise ValueError(f"point ({x:g}, {y:g}) is outside the {w}x{h} image")
    if labels is None:
        lbs = np.ones(len(pts), np.int64)
    else:
        lbs = np.asarray(labels).reshape(-1)
        if len(lbs) != len(pts):
            raise ValueError(f"got {len(pts)} points but {len(lbs)} labels")
        if not np.all(np.isin(lbs, (0, 1))):
            raise ValueError("labels must be 1 (foreground) or 0 (background)")
        lbs = lbs.astype(np.int64)
    return pts.astype(np.float32), lbs


def _check_boxes(box: Optional[Sequence[Any]], w: int, h: int) -> List[Tuple[float, float, float, float]]:
    if box is None:
        return []
    arr = np.asarray(box, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"box must be (x0, y0, x1, y1) or a list of such, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("box contains NaN or infinite coordinates")
    out = []
    for x0, y0, x1, y1 in arr:
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        if x1 < 0 or y1 < 0 or x0 > w - 1 or y0 > h - 1:
            raise ValueError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {w}x{h} image")
        # A box running off the edge is clipped to the image.
        out.append((max(x0, 0.0), max(y0, 0.0), min(x1, w - 1.0), min(y1, h - 1.0)))
    return out
