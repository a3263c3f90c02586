"""The batch through the running engine service (``diffmatte serve``) instead of an engine
of its own: useful where the service already holds the model (on the GPU)."""
from __future__ import annotations

import io
import json
from typing import Optional, Union

import numpy as np

from ..io.images import to_float_rgb, to_trimap


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class ServiceEngine:
    """``refine(image, trimap, steps, seed, samples, widen_band, band)`` like :class:`diffmatte.Engine`, served."""

    def __init__(self, client) -> None:
        self.client = client

    @classmethod
    def connect(cls, config: Union[bool, str, None] = None) -> "ServiceEngine":
        """Find the running service (``config``: its config folder; True/None: the default)."""
        try:
            from refine_matte.client import EngineClient, EngineNotRunning
        except ImportError as exc:  # the plugin package is part of every install; be clear anyway
            raise ValueError(f"--service needs the refine_matte package ({exc})") from None
        try:
            # A long timeout: each request waits for one whole refine.
            return cls(EngineClient.discover(config if isinstance(config, str) else None, timeout=3600.0))
        except EngineNotRunning as exc:
            raise ValueError(f"--service: {exc}; start it with `diffmatte serve`") from None

    def engine_info(self, timeout: float = 600.0) -> dict:
        """The service's ``engine`` info once its model has loaded (a service answers while
        it still loads: ``{"loading": true}``)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            info = self.client.info().get("engine", {})
            if info.get("error"):
                raise ValueError(f"engine service: its model did not load: {info['error']}")
            if not info.get("loading"):
                return info
            if time.monotonic() > deadline:
                raise ValueError(f"engine service: its model is still loading after {timeout:.0f} s")
            time.sleep(0.2)

    def weights_id(self) -> str:
        """What identifies the service's model in the manifest's settings fingerprint."""
        info = self.engine_info()
        keep = {k: info.get(k) for k in ("weights", "variant", "params", "precision", "results_revision")}
        return "service:" + json.dumps(keep, sort_keys=True)

    def refine(self, image: np.ndarray, trimap: np.ndarray, steps: int = 10, seed: Optional[int] = 0,
               samples: int = 1, widen_band: bool = False, band: Optional[float] = None,
               white_point: Optional[float] = None) -> np.ndarray:
        from PIL import Image
        from refine_matte.client import EngineError

        if white_point is not None:   # batch refuses --white-point with --service before this
            raise ValueError("the engine service's refine takes no white point; it uses the default")

        # The service takes 8-bit RGB and a 0/128/255 trimap (what it would decode anyway).
        rgb = np.round(to_float_rgb(image) * 255.0).astype(np.uint8)
        tri = np.round(to_trimap(trimap) * 255.0).astype(np.uint8)
        try:
            data = self.client.refine(_png(rgb), _png(tri), steps=steps, seed=seed, samples=samples,
                                      preview=False, widen_band=widen_band, band=band)
        except EngineError as exc:
            raise ValueError(f"engine service: {exc}") from None
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im)
        top = 65535.0 if arr.dtype != np.uint8 else 255.0
        return np.clip(arr.astype(np.float32) / top, 0.0, 1.0)
