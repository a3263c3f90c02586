"""The batch manifest: one JSON object per line, one line per event, in OUT.

A line is appended (and flushed to disk) when an item starts writing and when it
ends, so a batch killed at any point leaves a manifest that says which outputs are
ours and which items are done. At the end of a run the file is rewritten, atomically,
with one line per item in key order: identical for identical work, whatever the
order the workers finished in (timings live under ``"timing"``).
"""
from __future__ import annotations

import errno
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


class WriteStopped(ValueError):
    """The batch cannot write a file it must write (its manifest or an output): a full disk,
    a quota, a read-only or immutable file. The batch stops; a rerun continues."""

    def __init__(self, path, exc: OSError, what: str = "") -> None:
        self.path, self.errno = Path(path), exc.errno
        super().__init__(f"cannot write {what}{path}: {describe(exc)}")


def describe(exc: OSError) -> str:
    """'[Errno 28] No space left on device (ENOSPC)': the number, the words and the name."""
    if exc.errno is None:
        return str(exc)
    name = errno.errorcode.get(exc.errno, "")
    return f"[Errno {exc.errno}] {exc.strerror or os.strerror(exc.errno)}" + (f" ({name})" if name else "")


class Manifest:
    """Records of a batch output folder, last record per key wins."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.records: Dict[str, dict] = {}
        self._fh = None
        self._tail_ok = True
        if self.path.exists():
            try:
                text = self.path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise ValueError(f"cannot read the manifest {self.path}: {describe(exc)}") from None
            self._tail_ok = not text or text.endswith("\n")
            for line in text.splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a kill
                if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                    self.records[rec["key"]] = rec

    def open(self) -> "Manifest":
        """Open for appending and take the folder's lock (ValueError if another batch holds it)."""
        try:
            self._fh = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot write the manifest {self.path}: {describe(exc)}") from None
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
        """Write one record and flush it to disk; :class:`WriteStopped` when the file cannot
        take it (a line cut short is skipped when the manifest is read again)."""
        self.records[rec["key"]] = rec
        assert self._fh is not None, "open() the manifest first"
        # A line a full disk cut short must not swallow the next record: start a new line.
        text = ("" if self._tail_ok else "\n") + json.dumps(rec, sort_keys=True) + "\n"
        try:
            self._fh.write(text)
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            self._tail_ok = False
            self._drop()
            raise WriteStopped(self.path, exc, "the manifest ") from None
        self._tail_ok = True

    def compact(self, keys: Optional[Iterable[str]] = None) -> None:
        """Rewrite the file atomically: one line per item, sorted by key (call last, then close)."""
        keep = sorted(self.records) if keys is None else sorted(k for k in keys if k in self.records)
        text = "".join(json.dumps(self.records[k], sort_keys=True) + "\n" for k in keep)
        with atomic_path(self.path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")

    def close(self) -> None:
        if self._fh is not None:
            self._drop()

    def _drop(self) -> None:
        """Close the file, giving up what a failed write left buffered (close() shuts the fd,
        and with it the lock, even when its last flush fails)."""
        if self._fh is None:
            return
        fh, self._fh = self._fh, None
        try:
            fh.close()
        except OSError:
            pass
