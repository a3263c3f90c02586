"""Resumable, verified downloads of model weights (stdlib only: urllib).

``download()`` streams into ``<file>.part``, resumes an existing part file with an
HTTP ``Range`` request guarded by ``If-Range`` (the ETag or Last-Modified recorded
when the part was started, in ``<file>.part.json``; without one the download starts
from zero), follows Google Drive's "can't scan for viruses" interstitial, falls back
to the next mirror on failure, checks size and SHA-256, and only then renames the
part file into place. An HTML page is never saved as a checkpoint. Where no SHA-256
is published, the hash of the first complete download is recorded beside the file
(trust on first use) and later downloads must match it.
Nothing here touches the network at import time, and nothing imports torch/numpy.
"""
from __future__ import annotations

import hashlib
import http.cookiejar
import logging
import os
import re
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import List, Optional, Sequence, Union

from .gdrive import looks_like_html
from .http_fetch import CHUNK, SNIFF, ProgressFn, Transient, UrlFailed, attempt
from .partfile import PART_SUFFIX, PartFile, write_atomic
from .registry import WeightEntry

log = logging.getLogger(__name__)

DATA_DIR_ENV = "REFINE_MATTE_DATA_DIR"
HASH_SUFFIX = ".sha256"


class DownloadError(RuntimeError):
    """A download failed from every source, or its result could not be trusted."""


class IntegrityError(DownloadError):
    """The downloaded bytes do not match the expected size or SHA-256."""


# --------------------------------------------------------------------------- paths

def default_data_dir() -> Path:
    """Per-user data directory of Refine Matte (``REFINE_MATTE_DATA_DIR`` overrides).

    Linux ``$XDG_DATA_HOME/refine-matte`` (default ``~/.local/share/refine-matte``),
    macOS ``~/Library/Application Support/Refine Matte``, Windows
    ``%LOCALAPPDATA%\\Refine Matte``.
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    home = Path.home()
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA")
        return Path(base) / "Refine Matte" if base else home / "AppData" / "Local" / "Refine Matte"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Refine Matte"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else home / ".local" / "share") / "refine-matte"


def default_weights_dir() -> Path:
    """Where downloaded checkpoints go by default: ``<data dir>/weights``."""
    return default_data_dir() / "weights"


def local_path(entry: WeightEntry, dest_dir: Union[str, Path, None] = None) -> Path:
    """Where :func:`download` puts ``entry`` (it may not exist yet)."""
    return (Path(dest_dir) if dest_dir is not None else default_weights_dir()) / entry.filename


# ----------------------------------------------------------------------- hashing

def sha256_file(path: Union[str, Path]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def recorded_sha256(path: Union[str, Path]) -> Optional[str]:
    """The hash recorded beside an unverifiable download (``<file>.sha256``), if any."""
    side = Path(str(path) + HASH_SUFFIX)
    try:
        text = side.read_text(encoding="utf-8").split()
    except OSError:
        return None
    return text[0].lower() if text and re.fullmatch(r"[0-9a-fA-F]{64}", text[0]) else None


# ------------------------------------------------------------------ public entry

def _resolve(source, filename, sha256, expected_size):
    if isinstance(source, WeightEntry):
        urls = list(source.urls)
        filename = filename or source.filename
        sha256 = sha256 or source.sha256
        expected_size = expected_size if expected_size is not None else source.size
    elif isinstance(source, str):
        urls = [source]
    elif isinstance(source, (list, tuple)) and source and all(isinstance(u, str) for u in source):
        urls = list(source)
    else:
        raise TypeError("download() takes a registry entry, a URL, or a list of mirror URLs")
    for u in urls:
        if urllib.parse.urlsplit(u).scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {u!r}")
    if not filename:
        filename = urllib.parse.unquote(urllib.parse.urlsplit(urls[0]).path.rsplit("/", 1)[-1])
        if not filename or "." not in filename:
            raise ValueError(f"cannot tell a file name from {urls[0]!r}; pass filename=")
    if Path(filename).name != filename or filename in (".", ".."):
        raise ValueError(f"file name must not contain a directory: {filename!r}")
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    if expected_size is not None and expected_size < 0:
        raise ValueError("expected_size must be >= 0")
    return urls, filename, sha256, expected_size


def _existing_ok(path: Path, sha256: Optional[str], expected_size: Optional[int]) -> bool:
    if expected_size is not None and path.stat().st_size != expected_size:
        return False
    known = sha256 or recorded_sha256(path)
    return known is None or sha256_file(path) == known


def download(entry_or_url: Union[WeightEntry, str, Sequence[str]],
             dest_dir: Union[str, Path, None] = None, *,
             filename: Optional[str] = None, sha256: Optional[str] = None,
             expected_size: Optional[int] = None, progress: Optional[ProgressFn] = None,
             timeout: float = 60.0, retries: int = 3, retry_wait: float = 1.0,
             force: bool = False) -> Path:
    """Download a checkpoint into ``dest_dir`` (default :func:`default_weights_dir`).

    ``entry_or_url`` is a registry entry (its mirrors, file name, size and hash are
    used unless overridden), one URL, or a list of mirror URLs tried in order.
    ``progress(done, total)`` is called as bytes arrive (``total`` may be ``None``).
    ``retries``: attempts per URL that make no progress before moving to the next.

    Returns the final path. An existing file that passes verification is kept
    (unless ``force``). Without a known SHA-256 the computed one is written to
    ``<file>.sha256`` and a warning says the file could not be verified.
    Raises :class:`IntegrityError` on a size/hash mismatch (the part file is
    deleted) and :class:`DownloadError` when no source delivers the file.
    """
    urls, filename, sha256, expected_size = _resolve(entry_or_url, filename, sha256, expected_size)
    dest = Path(dest_dir) if dest_dir is not None else default_weights_dir()
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / filename
    if final.exists() and not force:
        if _existing_ok(final, sha256, expected_size):
            log.info("%s already present and verified", final)
            return final
        log.warning("%s exists but does not verify; downloading a fresh copy to replace it", final)

    part = PartFile(final.with_name(final.name + PART_SUFFIX))
    if expected_size is not None and part.size > expected_size:
        part.reset()
    cookies = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    failures: List[str] = []
    # Finished by an earlier run but not renamed (only a part this module started counts).
    done = expected_size is not None and part.size == expected_size and part.if_range() is not None
    for url in urls:
        if done:
            break
        stalls = 0
        while True:
            before = part.size
            try:
                attempt(opener, cookies, url, part, expected_size, timeout, progress)
                done = True
                break
            except Transient as err:
                stalls = 0 if part.size > before else stalls + 1
                if stalls > retries:
                    failures.append(f"{url}: {err}")
                    break
                log.info("%s; retrying (%d/%d)", err, stalls, retries)
                if stalls:
                    time.sleep(retry_wait * stalls)
            except UrlFailed as err:
                failures.append(f"{url}: {err}")
                break
    if not done:
        kept = f" (partial data kept in {part.path.name} for resuming)" if part.size else ""
        raise DownloadError(f"could not download {filename} from any source{kept}:\n  "
                            + "\n  ".join(failures)
                            + f"\nYou can fetch it by hand and place it at {final}")
    return _finish(part, final, sha256, expected_size)


def check_archive(path: Path, name: str) -> None:
    """Reject a download that is structurally broken, without torch.

    ``torch.save`` writes a zip archive (stored members with CRC-32s): testing every
    member catches a truncated file, or a stale prefix joined to a newer transfer,
    even when no published SHA-256 exists. Legacy pickle checkpoints cannot be
    checked here; anything else named ``.pth`` is not a checkpoint.
    """
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise IntegrityError(f"{name}: the download is a damaged archive ({exc})") from None
        if bad is not None:
            raise IntegrityError(f"{name}: the download is corrupt (member {bad!r} fails its CRC check)")
    elif Path(name).suffix.lower() in (".pth", ".pt", ".ckpt") and not (
            head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05"):
        raise IntegrityError(f"{name}: the download is not a PyTorch checkpoint (it starts with {head!r})")


def _finish(part: PartFile, final: Path, sha256: Optional[str], expected_size: Optional[int]) -> Path:
    size = part.size
    if expected_size is not None and size != expected_size:
        part.reset()
        raise IntegrityError(f"{final.name}: size mismatch: expected {expected_size} bytes, got {size}")
    with open(part.path, "rb") as handle:
        head = handle.read(SNIFF)
    if looks_like_html(head, ""):
        part.reset()
        raise IntegrityError(f"{final.name}: the download is an HTML page, not a checkpoint")
    actual = part.hexdigest()
    side = Path(str(final) + HASH_SUFFIX)
    first = recorded_sha256(final) if sha256 is None else None
    if sha256 is not None and actual != sha256:
        part.reset()
        raise IntegrityError(f"{final.name}: sha256 mismatch: expected {sha256}, got {actual}")
    if first is not None and actual != first:
        part.reset()
        raise IntegrityError(
            f"{final.name}: sha256 {actual} differs from {first}, recorded at the first complete "
            f"download in {side.name}; the file is corrupt or changed upstream. If you know it "
            f"changed upstream, delete {side.name} and download again")
    if sha256 is None:
        try:
            check_archive(part.path, final.name)
        except IntegrityError:
            part.reset()
            raise
    with open(part.path, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(part.path, final)
    part.meta_path.unlink(missing_ok=True)
    if sha256 is None and first is None:
        write_atomic(side, f"{actual}  {final.name}\n")
        log.warning("%s: no published sha256, so it could not be verified against one; the sha256 of "
                    "this first complete download, %s, is recorded in %s (trust on first use) and "
                    "later downloads must match it", final.name, actual, side.name)
    elif sha256 is None:
        log.info("%s matches the sha256 recorded at its first download", final.name)
    elif side.exists():
        side.unlink()  # a stale record from an earlier unverified copy
    return final
