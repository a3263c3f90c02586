"""State kept between refines so that a local trimap edit re-decodes only the tiles it reaches.

Keys are content hashes, so the cache needs no notion of "the same image": a tile whose
inputs hash the same is the same computation.

- Encoder tiles: key = hash of the tile's input crop (image, trimap, prior) and geometry ->
  its feature core.
- Decoder tiles: key = hash of the tile's conditioning, its feature crop and the sampler
  settings -> per step the hash of the x_t crop it saw, the std it was normalised with,
  and its x0 output. At step k a tile is *reused* when its x_t crop hashes the same and the
  std is the same; otherwise it is decoded (and its record is replaced).
- Global coupling: x_t is normalised by its std over the whole image, which an edit moves a
  little everywhere. A run that repeats an earlier run's geometry and noise snaps each
  step's std to the earlier value when they agree within ``STD_RTOL`` (relative), and
  snaps encoder features that moved by less than ``FEATURE_ATOL`` x their std; without
  that, every tile would see a changed input after any edit. The effect on the result is
  of the order of those tolerances (measured in docs/TILING.md).

Memory is bounded by ``max_bytes`` (least recently used records go first).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch


STD_RTOL = 1e-4
FEATURE_ATOL = 1e-4


@dataclass
class StepRecord:
    x_hash: bytes
    std: float
    x0: torch.Tensor  # (1, 1, h, w) float32 on the CPU, the tile's ``out`` rectangle


@dataclass
class TileRecord:
    steps: List[Optional[StepRecord]] = field(default_factory=list)

    def nbytes(self) -> int:
        return sum(s.x0.numel() * 4 for s in self.steps if s is not None)


class TileCache:
    """LRU store of encoder tiles, decoder tile records and per-run std / feature tracks."""

    def __init__(self, max_bytes: int = 512 * 2 ** 20) -> None:
        self.max_bytes = int(max_bytes)
        self._items: "OrderedDict[Tuple[str, bytes], object]" = OrderedDict()
        self._sizes: Dict[Tuple[str, bytes], int] = {}
        self.bytes = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def clear(self) -> None:
        self._items.clear()
        self._sizes.clear()
        self.bytes = 0

    def trim(self) -> None:
        """Drop least recently used entries until within ``max_bytes``."""
        while self._items and self.bytes > self.max_bytes:
            old, _ = self._items.popitem(last=False)
            self.bytes -= self._sizes.pop(old)

    def get(self, kind: str, key: bytes):
        item = self._items.get((kind, key))
        if item is not None:
            self._items.move_to_end((kind, key))
        return item

    def put(self, kind: str, key: bytes, value, nbytes: int) -> None:
        if not self.enabled or nbytes > self.max_bytes:
            return
        k = (kind, key)
        if k in self._items:
            self.bytes -= self._sizes.pop(k)
            del self._items[k]
        self.bytes += nbytes
        self.trim()
        self.bytes -= nbytes
        self._items[k] = value
        self._sizes[k] = nbytes
        self.bytes += nbytes


def snap_std(std: torch.Tensor, previous: Optional[float]) -> torch.Tensor:
    """``previous`` (as a tensor like ``std``) when within ``STD_RTOL`` of ``std``, else ``std``."""
    if previous is None:
        return std
    prev = torch.tensor([previous], dtype=std.dtype, device=std.device)
    return prev if bool((std - prev).abs() <= STD_RTOL * prev) else std


def snap_features(new: torch.Tensor, old: Optional[torch.Tensor]) -> torch.Tensor:
    """Keep the earlier feature values wherever the new ones moved less than
    ``FEATURE_ATOL`` x their std, so that unaffected tiles hash the same as before."""
    if old is None or old.shape != new.shape or old.dtype != new.dtype:
        return new
    old = old.to(new.device)
    tol = FEATURE_ATOL * float(old.float().std())
    return torch.where((new - old).abs() <= tol, old, new)
