"""The batch manifest: one JSON object per line, one line per event, in OUT.

A line is appended (and flushed to disk) when an item starts writing and when it
ends, so a batch killed at any point leaves a manifest that says which outputs are
ours and which items are done. At the end of a run the file is rewritten, atomically,
with one line per item in key order: identical for identical work, whatever the
order the workers finished in (timings live under ``"timing"``).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Iterable, Optional

try:  # POSIX: keep two batches from writing into one folder at once
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from ..io.fsutil import atomic_path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> Optional[str]:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


class Manifest:
    """Records of a batch output folder, last record per key wins."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.records: Dict[str, dict] = {}
        self._fh = None
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a kill
                if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                    self.records[rec["key"]] = rec

    def open(self) -> "Manifest":
        """Open for appending and take the folder's lock (ValueError if another batch holds it)."""
        self._fh = open(self.path, "a", encoding="utf-8")
        if fcntl is not None:
            try:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._fh.close()
                self._fh = None
                raise ValueError(f"another batch is writing into {self.path.parent} (its manifest is locked)")
        return self

    def our_outputs(self) -> set:
        """Every output path any record names: files this batch folder may replace."""
        out = set()
        for rec in self.records.values():
            out.update(Path(self.path.parent, p).resolve() for p in rec.get("outputs", {}))
        return out

    def is_done(self, key: str, settings: str, inputs: Dict[str, str]) -> bool:
        """Done with these settings and inputs, and every output still has its recorded hash."""
        rec = self.records.get(key)
        if not rec or rec.get("status") != "done" or rec.get("settings") != settings or rec.get("inputs") != inputs:
            return False
        return all(sha256_file(self.path.parent / p) == h for p, h in rec.get("outputs", {}).items())

    def append(self, rec: dict) -> None:
        self.records[rec["key"]] = rec
        assert self._fh is not None, "open() the manifest first"
        self._fh.write(json.dumps(rec, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def compact(self, keys: Optional[Iterable[str]] = None) -> None:
        """Rewrite the file atomically: one line per item, sorted by key (call last, then close)."""
        keep = sorted(self.records) if keys is None else sorted(k for k in keys if k in self.records)
        text = "".join(json.dumps(self.records[k], sort_keys=True) + "\n" for k in keep)
        with atomic_path(self.path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
