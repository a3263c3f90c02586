"""Google Drive's download interstitial pages: find where "download anyway" leads.

Stdlib only. Used by :mod:`diffmatte.weights.download` when a server answers with an
HTML page instead of the file.
"""
from __future__ import annotations

import http.cookiejar
import re
import urllib.parse
from html.parser import HTMLParser
from typing import Dict, List, Optional, Tuple


def looks_like_html(head: bytes, content_type: str) -> bool:
    """True for an HTML answer (by Content-Type or by how the body starts)."""
    if "html" in content_type.lower():
        return True
    start = head.lstrip()[:64].lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<!--"))


# -------------------------------------------------------- Google Drive interstitial

class _PageScan(HTMLParser):
    """Collects forms (action, method, named inputs), confirm links and the title."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: List[Tuple[str, str, Dict[str, str]]] = []
        self.links: List[str] = []
        self.title = ""
        self._form: Optional[Tuple[str, str, Dict[str, str]]] = None
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form":
            self._form = (a.get("action", ""), a.get("method", "get").lower(), {})
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            if a.get("type", "text").lower() in ("hidden", "text"):
                self._form[2][a["name"]] = a.get("value", "")
        elif tag == "a" and ("confirm=" in a.get("href", "") or a.get("id") == "uc-download-link"):
            self.links.append(a["href"])
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def _with_query(url: str, extra: Dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    query.update(extra)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def confirm_target(page_url: str, body: bytes, cookies: http.cookiejar.CookieJar
                    ) -> Tuple[Optional[Tuple[str, Optional[bytes]]], str]:
    """Find where an interstitial page's "download anyway" leads.

    Returns ((url, post_data_or_None) or None, page title).
    """
    text = body.decode("utf-8", "replace")
    scan = _PageScan()
    try:
        scan.feed(text)
        scan.close()
    except Exception:  # a malformed page is just "no target found"
        pass
    title = " ".join(scan.title.split())
    # Current Drive: a GET form to drive.usercontent.google.com/download with
    # hidden id/export/confirm/uuid inputs.
    for action, method, inputs in scan.forms:
        if "confirm" in inputs or "download" in action.lower():
            target = urllib.parse.urljoin(page_url, action or page_url)
            if method == "post":
                return (target, urllib.parse.urlencode(inputs).encode("ascii")), title
            return (_with_query(target, inputs), None), title
    # Older Drive: a link carrying confirm=<token>.
    for href in scan.links:
        return (urllib.parse.urljoin(page_url, href), None), title
    # Some Drive pages carry the real URL as JSON in a script.
    match = re.search(r'"downloadUrl"\s*:\s*"([^"]+)"', text)
    if match:
        raw = match.group(1).replace("\\u003d", "=").replace("\\u0026", "&").replace("\\/", "/")
        return (urllib.parse.urljoin(page_url, raw), None), title
    # Oldest Drive: the token only in a download_warning cookie, or loose in script.
    for cookie in cookies:
        if cookie.name.startswith("download_warning"):
            return (_with_query(page_url, {"confirm": cookie.value}), None), title
    match = re.search(r"confirm=([0-9A-Za-z_\-]+)", text)
    if match:
        return (_with_query(page_url, {"confirm": match.group(1)}), None), title
    return None, title
