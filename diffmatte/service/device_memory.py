"""Out-of-memory errors and giving memory back (heap pages, the device's cache)."""

from __future__ import annotations

import ctypes
import gc
import logging
import sys

log = logging.getLogger("diffmatte.service")


def is_out_of_memory(exc: BaseException) -> bool:
    """Tell whether ``exc`` is a host or device out-of-memory error."""
    if isinstance(exc, MemoryError):
        return True
    if type(exc).__name__ in ("OutOfMemoryError", "OutOfMemory"):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "cuda error: out of memory" in text


def _trim_heap() -> None:
    """Return freed heap pages to the OS (glibc only).

    Large request bodies and images are freed after each request, but glibc keeps the
    pages in its arenas, so the service's RSS stepped up with every new peak size.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl or another libc: nothing to trim
        pass


def free_device_memory() -> None:
    """Collect garbage, return freed heap pages and cached device memory."""
    gc.collect()
    _trim_heap()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
            torch.cuda.ipc_collect()
        mps = getattr(torch, "mps", None)
        if mps is not None and hasattr(mps, "empty_cache") and torch.backends.mps.is_available():
            mps.empty_cache()
    except Exception:  # noqa: BLE001 - freeing memory must never take the worker down
        log.exception("freeing device memory failed")
