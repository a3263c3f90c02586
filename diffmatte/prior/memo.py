"""The last prior an engine solved, so that a refine after a local trimap edit (a brush
stroke in the panel or the editor) re-solves only around the edit (issue #11, incremental
re-runs, for the prior models: the default model's whole refine is its prior)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from .. import trimap_codes as tc
from ..util import digest
from .cg import TorchCG
from .solve import solve_prior
from .windows import update_alpha



@dataclass
class PriorRun:
    """How the last prior was obtained: "solved", "updated" (around an edit) or "reused"."""

    how: str
    edit: Optional[tuple] = None     # (y0, y1, x0, x1): bounding box of the changed trimap pixels


class PriorMemo:
    """One entry: (prior kind, image digest) -> the trimap and alpha of the last solve.
    Holds 5 bytes per image pixel between refines; ``enabled = False`` always solves."""

    def __init__(self) -> None:
        self.enabled = True
        self.last: Optional[PriorRun] = None
        self._key: Optional[bytes] = None
        self._trimap: Optional[np.ndarray] = None
        self._alpha: Optional[np.ndarray] = None

    def clear(self) -> None:
        self._key = self._trimap = self._alpha = None

    def solve(self, kind: str, image: np.ndarray, trimap: np.ndarray,
              check: Optional[Callable[[float], None]] = None, torch_cg: Optional[TorchCG] = None) -> np.ndarray:
        """The prior (H, W) float32 of ``image`` (H, W, 3 float32) and ``trimap`` ({0, 0.5, 1}
        float32), from the memo where the image is the same and the trimap changed little.
        ``torch_cg``: information flow's CG in torch on that device (a solve with another
        ``torch_cg`` is not reused: the key holds it)."""
        key = digest(kind, image, torch_cg) if self.enabled else None
        alpha = None
        if (key is not None and key == self._key and self._trimap is not None and self._alpha is not None
                and self._trimap.shape == trimap.shape):
            code = tc.codes(trimap)
            changed = code != self._trimap
            if not changed.any():
                alpha, self.last = self._alpha.copy(), PriorRun("reused")
            elif kind == "ifm":
                label = np.where(code == tc.FOREGROUND, 1, np.where(code == tc.BACKGROUND, 0, -1)).astype(np.int8)
                alpha = update_alpha(image, label, self._alpha, changed, check or (lambda f: None), torch_cg)
                if alpha is not None:
                    ys, xs = np.nonzero(changed)
                    self.last = PriorRun("updated", (int(ys.min()), int(ys.max()) + 1,
                                                     int(xs.min()), int(xs.max()) + 1))
        if alpha is None:
            alpha = solve_prior(kind, torch.from_numpy(image).permute(2, 0, 1)[None],
                                torch.from_numpy(trimap)[None, None], check=check,
                                torch_cg=torch_cg)[0, 0].numpy()
            self.last = PriorRun("solved")
        if key is not None:
            self._key, self._trimap, self._alpha = key, tc.codes(trimap), alpha.astype(np.float32, copy=True)
        return alpha
