"""One HTTP attempt of a weights download (stdlib only: urllib).

:func:`attempt` fetches a URL into a :class:`~diffmatte.weights.partfile.PartFile`,
resuming it with ``Range`` + ``If-Range`` and following Google Drive's "can't scan for
viruses" interstitial pages; it raises :class:`Transient` (retry the same URL) or
:class:`UrlFailed` (try the next mirror). Mirrors, retries and verification are
:func:`diffmatte.weights.download.download`'s.
"""
from __future__ import annotations

import http.client
import http.cookiejar
import logging
import re
import urllib.error
import urllib.request
from typing import Callable, Dict, Optional, Tuple

from .gdrive import confirm_target, looks_like_html
from .partfile import PartFile

# The download's own logger: these messages were always logged under its name.
log = logging.getLogger("diffmatte.weights.download")

ProgressFn = Callable[[int, Optional[int]], None]

USER_AGENT = "refine-matte-weights/1.0 (+python-urllib)"
CHUNK = 1 << 20
SNIFF = 512
_HTML_LIMIT = 4 << 20  # an interstitial page is a few KB; cap what we buffer
_MAX_PAGES = 4  # interstitial hops per attempt before giving up on a URL


class Transient(Exception):
    """The connection failed or closed early: retry the same URL, resuming."""


class UrlFailed(Exception):
    """This URL cannot deliver the file: move on to the next mirror."""


def _parse_content_range(value: str) -> Tuple[Optional[int], Optional[int]]:
    """(first byte, total) from ``bytes a-b/total`` or ``bytes */total``."""
    match = re.match(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def attempt(opener: urllib.request.OpenerDirector, cookies: http.cookiejar.CookieJar, url: str,
            part: PartFile, expected_size: Optional[int], timeout: float,
            progress: Optional[ProgressFn]) -> None:
    """Fetch ``url`` into ``part`` (resuming). Returns when the body was fully received."""
    target, data = url, None
    for _hop in range(_MAX_PAGES + 1):
        offset, headers = _resume_headers(part)
        request = urllib.request.Request(target, data=data, headers=headers)
        try:
            response = opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as err:
            with err:
                if _nothing_left(err, part, offset, expected_size):
                    return
                continue
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", err)
            raise Transient(f"could not connect: {reason}") from None

        with response:
            content_type = response.headers.get("Content-Type", "")
            try:
                head = response.read(SNIFF)
            except (OSError, http.client.HTTPException) as err:
                raise Transient(f"connection failed: {err}") from None
            if looks_like_html(head, content_type):
                target, data = _follow_page(response, head, cookies, target, data)
                continue
            if _receive(response, head, part, offset, target, expected_size, progress):
                return
    raise UrlFailed(f"gave up after {_MAX_PAGES} confirmation pages")


def _resume_headers(part: PartFile) -> Tuple[int, Dict[str, str]]:
    """(offset, request headers): resume after the bytes ``part`` holds, with its validator."""
    part.sync()
    offset = part.size
    validator = part.if_range()
    if offset and validator is None:
        # Without the validator of the bytes we hold, a resumed transfer could join
        # a stale or foreign prefix to a newer file: start again.
        log.info("no ETag/Last-Modified recorded for %s; restarting from zero", part.path.name)
        part.reset()
        offset = 0
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"}
    if offset and validator is not None:  # (an offset without a validator was reset to 0 above)
        headers["Range"] = f"bytes={offset}-"
        headers["If-Range"] = validator
    return offset, headers


def _nothing_left(err: urllib.error.HTTPError, part: PartFile, offset: int,
                  expected_size: Optional[int]) -> bool:
    """An HTTP error: True when a 416 says ``part`` is already complete; False when the part
    was reset (try again from zero); otherwise raises UrlFailed."""
    if err.code == 416 and offset:
        # Nothing left to send: the part is either complete or not ours.
        _, total = _parse_content_range(err.headers.get("Content-Range", ""))
        want = expected_size if expected_size is not None else total
        if want is not None and offset == want:
            return True
        part.reset()
        return False
    raise UrlFailed(f"HTTP {err.code} {err.reason}") from None


def _follow_page(response, head: bytes, cookies: http.cookiejar.CookieJar, target: str,
                 data: Optional[bytes]) -> Tuple[str, Optional[bytes]]:
    """The (url, form data) an HTML interstitial page (Google Drive's) points to, or UrlFailed."""
    body = head + response.read(_HTML_LIMIT)
    found, title = confirm_target(response.geturl(), body, cookies)
    if found is not None and urllib.parse.urlsplit(found[0]).scheme not in ("http", "https"):
        found = None  # a page must not steer us to file:// or similar
    if found is None or found == (target, data):
        shown = f" ({title!r})" if title else ""
        raise UrlFailed(
            f"the server answered with an HTML page{shown} instead of the file; "
            "for Google Drive this usually means a download quota or sign-in wall")
    log.info("following download confirmation page of %s", target)
    return found


def _receive(response, head: bytes, part: PartFile, offset: int, target: str,
             expected_size: Optional[int], progress: Optional[ProgressFn]) -> bool:
    """Append the file's body (``head`` first) to ``part``. True when it was fully received;
    False when the part was reset because the bytes may belong to another version."""
    status = response.status
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if status == 206:
        start, total = _parse_content_range(response.headers.get("Content-Range", ""))
        if start != offset:
            raise UrlFailed(f"server resumed at byte {start}, asked for {offset}")
        if not part.same_source(response.headers):
            # The server honoured Range but not If-Range, or answers without the
            # validator: these bytes may belong to another version. Start over.
            log.info("resumed answer for %s has another validator; restarting from zero",
                     part.path.name)
            part.reset()
            return False
    else:
        total = length
    if expected_size is not None and total is not None and total != expected_size:
        raise UrlFailed(f"server reports {total} bytes, expected {expected_size}")
    if status != 206 and offset:
        log.info("server sent the whole file (Range ignored or the file changed); "
                 "restarting %s from zero", part.path.name)
        part.reset()
        offset = 0
    if offset == 0:
        part.start(target, response.headers)
    shown_total = expected_size if expected_size is not None else total
    received = _append_body(response, head, part, offset, expected_size, shown_total, progress)
    if length is not None and received < length:
        # http.client returns b"" rather than raising when the peer closes early.
        raise Transient(f"connection closed after {offset + received} of {offset + length} bytes")
    return True


def _append_body(response, head: bytes, part: PartFile, offset: int, expected_size: Optional[int],
                 shown_total: Optional[int], progress: Optional[ProgressFn]) -> int:
    """Write ``head`` and the rest of the body to the part file; returns the bytes received."""
    received = 0
    with open(part.path, "ab") as handle:
        chunk = head
        while chunk:
            part.append(handle, chunk)
            received += len(chunk)
            if expected_size is not None and offset + received > expected_size:
                handle.close()
                part.reset()
                raise UrlFailed(f"server sent more than the expected {expected_size} bytes")
            if progress is not None:
                progress(offset + received, shown_total)
            try:
                chunk = response.read(CHUNK)
            except (OSError, http.client.HTTPException) as err:
                raise Transient(f"connection lost after {offset + received} bytes: {err}") from None
    return received
