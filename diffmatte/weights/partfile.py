"""The ``.part`` file of a download: its bytes, a running SHA-256, its resume validator.

Stdlib only (and the engine's atomic write). A part file is only resumed when the ETag / Last-Modified of the answer
that started it was recorded (``<file>.part.json``): the resumed request carries it in
``If-Range``, and a 206 answer must carry it back.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict, Optional

from ..io.fsutil import atomic_path

PART_SUFFIX = ".part"
PART_META_SUFFIX = ".part.json"
_CHUNK = 1 << 20


def write_atomic(path: Path, text: str) -> None:
    """Write a small text file atomically (:func:`diffmatte.io.fsutil.atomic_path`)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def validator(headers) -> Dict[str, str]:
    """The resume validators of a response: a strong ETag and/or Last-Modified.

    A weak ETag (``W/...``) may not be used in ``If-Range`` (RFC 9110 13.1.5).
    """
    out = {}
    etag = (headers.get("ETag") or "").strip()
    if etag and not etag.startswith("W/"):
        out["etag"] = etag
    modified = (headers.get("Last-Modified") or "").strip()
    if modified:
        out["last_modified"] = modified
    return out


class PartFile:
    """The ``.part`` file, its validator record and a running SHA-256 of its bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta_path = path.with_name(path.name[: -len(PART_SUFFIX)] + PART_META_SUFFIX)
        self._hash = hashlib.sha256()
        self._hashed = 0

    def meta(self) -> Optional[Dict[str, str]]:
        """The validators saved when these bytes started arriving (None: not ours / none)."""
        try:
            data = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def if_range(self) -> Optional[str]:
        """The ``If-Range`` value for resuming, or None when the part cannot be trusted."""
        meta = self.meta() or {}
        value = meta.get("etag") or meta.get("last_modified")
        return value if isinstance(value, str) and value else None

    def start(self, url: str, headers) -> None:
        """Record the validators of the response whose bytes now go into an empty part."""
        write_atomic(self.meta_path, json.dumps({"url": url, **validator(headers)}))

    def same_source(self, headers) -> bool:
        """True when a 206 answer carries the validator the part was started with."""
        meta = self.meta() or {}
        got = validator(headers)
        if meta.get("etag"):
            return got.get("etag") == meta["etag"]
        return bool(meta.get("last_modified")) and got.get("last_modified") == meta["last_modified"]

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def sync(self) -> None:
        """Rehash from disk when the running hash does not cover the file (new session)."""
        if self._hashed != self.size:
            self._hash = hashlib.sha256()
            self._hashed = 0
            if self.path.exists():
                with open(self.path, "rb") as handle:
                    for block in iter(lambda: handle.read(_CHUNK), b""):
                        self._hash.update(block)
                        self._hashed += len(block)

    def reset(self) -> None:
        self.path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)
        self._hash = hashlib.sha256()
        self._hashed = 0

    def append(self, handle, data: bytes) -> None:
        handle.write(data)
        self._hash.update(data)
        self._hashed += len(data)

    def hexdigest(self) -> str:
        self.sync()
        return self._hash.hexdigest()


