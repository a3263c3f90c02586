"""The last priors an engine solved for one image, so that a refine after a local trimap edit (a brush
stroke in the panel or the editor) re-solves only around the edit (issue #11, incremental
re-runs, for the prior models: the default model's whole refine is its prior)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

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


#: Solves of one image kept: a widened refine (``Engine.refine(widen_band=True)``) solves
#: two trimaps, and the next refine after a brush stroke starts from the first of them again;
#: with one entry that first pass always met the widened trimap and solved from scratch.
ENTRIES = 2


class PriorMemo:
    """The last ``ENTRIES`` solves of one image: (prior kind, image digest) -> their trimaps
    and alphas. Holds 5 bytes per image pixel per entry between refines; ``enabled = False``
    always solves."""

    def __init__(self, entries: int = ENTRIES) -> None:
        self.enabled = True
        self.entries = entries
        self.last: Optional[PriorRun] = None
        self._key: Optional[bytes] = None
        self._runs: List[Tuple[np.ndarray, np.ndarray]] = []   # (trimap codes, alpha), newest first

    def clear(self) -> None:
        self._key = None
        self._runs = []

    def _closest(self, code: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """(alpha, changed pixels) of the kept solve whose trimap differs from ``code`` in
        the fewest pixels, or None."""
        best = None
        for old, alpha in self._runs:
            if old.shape == code.shape:
                changed = code != old
                if best is None or changed.sum() < best[1].sum():
                    best = (alpha, changed)
        return best

    def solve(self, kind: str, image: np.ndarray, trimap: np.ndarray,
              check: Optional[Callable[[float], None]] = None, torch_cg: Optional[TorchCG] = None) -> np.ndarray:
        """The prior (H, W) float32 of ``image`` (H, W, 3 float32) and ``trimap`` ({0, 0.5, 1}
        float32), from the memo where the image is the same and the trimap changed little
        from one of the kept solves. ``torch_cg``: information flow's CG in torch on that
        device (a solve with another ``torch_cg`` is not reused: the key holds it)."""
        key = digest(kind, image, torch_cg) if self.enabled else None
        code = tc.codes(trimap)
        alpha = None
        near = self._closest(code) if key is not None and key == self._key else None
        if near is not None:
            previous, changed = near
            if not changed.any():
                alpha, self.last = previous.copy(), PriorRun("reused")
            elif kind == "ifm":
                label = np.where(code == tc.FOREGROUND, 1, np.where(code == tc.BACKGROUND, 0, -1)).astype(np.int8)
                alpha = update_alpha(image, label, previous, changed, check or (lambda f: None), torch_cg)
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
            kept = [r for r in self._runs if r[0].shape == code.shape and not np.array_equal(r[0], code)] \
                if key == self._key else []
            self._key = key
            self._runs = [(code, alpha.astype(np.float32, copy=True))] + kept[: self.entries - 1]
        return alpha
