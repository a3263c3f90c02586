"""Classical matting solvers used as comparison rows (pymatting, an optional dependency).

pymatting JIT-compiles its kernels with numba on first import (about 90 s), so it is
imported only when a baseline actually runs.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import missing_extra

BASELINES = {
    "cf": "closed-form matting (Levin et al. 2008), pymatting estimate_alpha_cf",
    "lkm": "large-kernel matting (He et al. 2010), pymatting estimate_alpha_lkm",
    "knn": "KNN matting (Chen et al. 2013), pymatting estimate_alpha_knn",
}


def pymatting_available() -> bool:
    """True when pymatting can be imported (without importing it)."""
    import importlib.util
    return importlib.util.find_spec("pymatting") is not None


def get_baseline(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function (image H x W x 3 float [0,1], trimap uint8 0/128/255) -> alpha float32 [0,1]."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    if not pymatting_available():
        raise ValueError(missing_extra(f"the {name} baseline", "pymatting", "eval"))

    def solve(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        import pymatting  # noqa: PLC0415 (slow first import, see module docstring)

        fn = {"cf": pymatting.estimate_alpha_cf, "lkm": pymatting.estimate_alpha_lkm,
              "knn": pymatting.estimate_alpha_knn}[name]
        img = np.asarray(image, dtype=np.float64)
        tri = np.asarray(trimap, dtype=np.float64) / 255.0
        alpha = fn(img, tri)
        alpha = np.clip(alpha, 0, 1).astype(np.float32)
        alpha[trimap == 0] = 0.0
        alpha[trimap == 255] = 1.0
        return alpha

    return solve
