"""SAM in the service: the prompter, built on first use, and decoded images by id."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Dict

from .errors import Unavailable
from .schema import ServiceConfig


class SamState:
    """Lazily built ``trimap.SamPrompter`` plus decoded images by id, for re-clicks.

    The prompter caches embeddings by image content itself; keeping the decoded
    image here lets a front end send only ``image_id`` with each further click.
    """

    def __init__(self, config: ServiceConfig, device: str) -> None:
        self.config = config
        self.device = device
        self.prompter: Any = None
        self.images: "OrderedDict[str, Any]" = OrderedDict()
        self.lock = threading.Lock()
        self.load_lock = threading.Lock()

    def load(self) -> Any:
        """Return the prompter, building it on first use (503 when impossible)."""
        with self.load_lock:
            if self.prompter is not None:
                return self.prompter
            trimap = import_trimap()
            if not hasattr(trimap, "SamPrompter"):
                raise Unavailable("the installed trimap package has no SamPrompter")
            try:
                self.prompter = trimap.SamPrompter(
                    self.config.sam_checkpoint, model_type=self.config.sam_model_type,
                    device=self.device, cache_size=self.config.sam_cache)
            except (ImportError, OSError, ValueError, RuntimeError, KeyError) as exc:
                raise Unavailable(f"SAM is not available: {exc}. Get the checkpoint once with the "
                                  "editor's 'Download SAM' button, `diffmatte download sam-vit-b --dest "
                                  "<config dir>/sam` or `python3 installer/install.py --sam vit_b`; or start "
                                  "the service with --sam-checkpoint PATH") from None
            return self.prompter

    def remember(self, data: bytes, image: Any) -> str:
        key = hashlib.sha256(data).hexdigest()
        with self.lock:
            self.images[key] = image
            self.images.move_to_end(key)
            while len(self.images) > self.config.sam_cache:
                self.images.popitem(last=False)
        return key

    def recall(self, key: str) -> Any:
        with self.lock:
            image = self.images.get(key)
            if image is not None:
                self.images.move_to_end(key)
            return image


def import_trimap() -> Any:
    try:
        import trimap  # noqa: PLC0415 - lazy on purpose: optional, concurrently developed
    except ImportError as exc:
        raise Unavailable(f"trimap generation is not available: cannot import 'trimap' ({exc})") from None
    return trimap


def sam_device(info: Dict[str, Any]) -> str:
    device = str(info.get("device", "cpu"))
    return device if device.split(":")[0] in ("cpu", "cuda", "mps") else "cpu"
