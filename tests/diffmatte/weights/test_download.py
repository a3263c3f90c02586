"""Downloader tests against a real HTTP server on 127.0.0.1 (loopback only, no internet)."""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import io
import json
import logging
import os
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from diffmatte.weights import download as dl
from diffmatte.weights import registry

def _zip_checkpoint(payload: bytes) -> bytes:
    """A stand-in for a torch.save file: a zip of stored members with CRC-32s."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/data/0", payload)
    return buf.getvalue()


DATA = _zip_checkpoint(os.urandom(300 * 1024 + 17))
SHA = hashlib.sha256(DATA).hexdigest()
HALF = len(DATA) // 2
ETAG = '"' + SHA[:20] + '"'
# Another version of the file on the server (same length, different bytes).
NEW_DATA = _zip_checkpoint(os.urandom(300 * 1024 + 17))
NEW_SHA = hashlib.sha256(NEW_DATA).hexdigest()
NEW_ETAG = '"' + NEW_SHA[:20] + '"'
MODIFIED = "Wed, 21 Oct 2025 07:28:00 GMT"

INTERSTITIAL = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head>
<body><p>Google Drive can't scan this file for viruses.</p>
<form id="download-form" action="/real-download" method="get">
<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button" value="Download anyway"/>
<input type="hidden" name="id" value="FILEID"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="abc-123"></form>
</body></html>"""

QUOTA_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>
<body><p>Too many users have viewed or downloaded this file recently.</p></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    """Routes: /file (Range-aware), /norange, /drop (cuts the first answer short),
    /404, /500, /html (always HTML), /gdrive (interstitial form -> /real-download),
    /cookie (old Drive: token only in a download_warning cookie), /dropthen503."""

    def log_message(self, *args):  # keep test output clean
        pass

    def _record(self, status, sent):
        # called before the headers go out: the client cannot move on to its next request
        # (another handler thread) before this one is logged, so the log keeps their order
        self.server.log.append({"path": self.path, "range": self.headers.get("Range"),
                                "if_range": self.headers.get("If-Range"), "status": status, "sent": sent})

    def _send_bytes(self, honour_range=True, cut_at=None, content_length=None, data=None, etag=ETAG,
                    modified=None, honour_if_range=True):
        data = DATA if data is None else data
        start = 0
        header = self.headers.get("Range")
        condition = self.headers.get("If-Range")
        if header and condition is not None and honour_if_range and condition not in (etag, modified):
            header = None  # RFC 9110: a failed If-Range means "send the whole file"
        if honour_range and header:
            start = int(header.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self._record(416, 0)
                self.end_headers()
                return
            body = data[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            status = 206
        else:
            body = data
            self.send_response(200)
            status = 200
        self.send_header("Content-Type", "application/octet-stream")
        if etag:
            self.send_header("ETag", etag)
        if modified:
            self.send_header("Last-Modified", modified)
        self.send_header("Content-Length", str(content_length if content_length is not None else len(body)))
        if cut_at is not None:
            body = body[:cut_at]
            self.close_connection = True
        self._record(status, len(body))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_html(self, page, status=200, cookie=None):
        raw = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(raw)))
        self._record(status, len(raw))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        route = url.path
        if route == "/file":
            self._send_bytes()
        elif route == "/newfile":  # the file changed upstream (new ETag)
            self._send_bytes(data=NEW_DATA, etag=NEW_ETAG)
        elif route == "/newfile-no-ifrange":  # changed, and If-Range is ignored (Range honoured)
            self._send_bytes(data=NEW_DATA, etag=NEW_ETAG, honour_if_range=False)
        elif route == "/novalidator":  # no ETag, no Last-Modified
            self.server.hits[route] = self.server.hits.get(route, 0) + 1
            self._send_bytes(etag=None, cut_at=HALF if self.server.hits[route] == 1 else None)
        elif route == "/modified":  # Last-Modified only; first answer cut short
            self.server.hits[route] = self.server.hits.get(route, 0) + 1
            self._send_bytes(etag=None, modified=MODIFIED, cut_at=HALF if self.server.hits[route] == 1 else None)
        elif route == "/weak":  # weak ETag only: unusable for If-Range
            self.server.hits[route] = self.server.hits.get(route, 0) + 1
            self._send_bytes(etag='W/"weak"', cut_at=HALF if self.server.hits[route] == 1 else None)
        elif route == "/truncated":  # a complete-looking answer of half the file
            self._send_bytes(data=DATA[:HALF])
        elif route == "/random":  # bytes that are no checkpoint at all
            self._send_bytes(data=bytes(range(256)) * 64)
        elif route == "/norange":
            self._send_bytes(honour_range=False)
        elif route == "/drop":
            self.server.hits[route] = self.server.hits.get(route, 0) + 1
            self._send_bytes(cut_at=HALF if self.server.hits[route] == 1 else None)
        elif route in ("/404", "/500"):
            code = int(route[1:])
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self._record(code, 0)
            self.end_headers()
        elif route == "/html":
            self._send_html(QUOTA_PAGE)
        elif route == "/gdrive":
            self._send_html(INTERSTITIAL)
        elif route == "/real-download":
            if query == {"id": "FILEID", "export": "download", "confirm": "t", "uuid": "abc-123"}:
                self._send_bytes()
            else:
                self._send_html(QUOTA_PAGE, status=403)
        elif route == "/json-page":
            port = self.server.server_address[1]
            link = (f"http:\\/\\/127.0.0.1:{port}\\/real-download?id\\u003dFILEID\\u0026export\\u003ddownload"
                    "\\u0026confirm\\u003dt\\u0026uuid\\u003dabc-123")
            self._send_html('<html><script>var c = {"downloadUrl":"' + link + '"};</script></html>')
        elif route == "/cookie":
            if query.get("confirm") == "TOK3N" and "download_warning_1=TOK3N" in (self.headers.get("Cookie") or ""):
                self._send_bytes()
            else:
                self._send_html("<html><head><title>warning</title></head><body>large file</body></html>",
                                cookie="download_warning_1=TOK3N; Path=/")
        elif route == "/dropthen503":
            self.server.hits[route] = self.server.hits.get(route, 0) + 1
            if self.server.hits[route] == 1:
                self._send_bytes(cut_at=HALF)
            else:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self._record(503, 0)
                self.end_headers()
        else:
            self.send_response(400)
            self.end_headers()


@pytest.fixture()
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.log, httpd.hits = [], {}
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.url = lambda route: base + route
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _earlier_part(dest, data, etag=ETAG, name="model.pth"):
    """A part file as an interrupted earlier run leaves it (bytes + validator record)."""
    (dest / (name + ".part")).write_bytes(data)
    (dest / (name + ".part.json")).write_text(json.dumps({"url": "x", "etag": etag}), encoding="utf-8")


def _get(source, dest, **kw):
    kw.setdefault("filename", "model.pth")
    kw.setdefault("timeout", 5)
    kw.setdefault("retry_wait", 0)
    return dl.download(source, dest, **kw)


def test_full_download_verifies_and_reports_progress(server, tmp_path):
    seen = []
    path = _get(server.url("/file"), tmp_path, sha256=SHA, expected_size=len(DATA),
                progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "model.pth"
    assert path.read_bytes() == DATA
    assert not (tmp_path / "model.pth.part").exists()
    assert not (tmp_path / "model.pth.sha256").exists()  # verified: nothing to record
    assert seen[-1] == (len(DATA), len(DATA))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_resume_sends_range_and_only_the_remainder(server, tmp_path):
    _earlier_part(tmp_path, DATA[:100_000])
    path = _get(server.url("/file"), tmp_path, sha256=SHA)
    assert path.read_bytes() == DATA
    assert server.log == [{"path": "/file", "range": "bytes=100000-", "if_range": ETAG, "status": 206,
                           "sent": len(DATA) - 100_000}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]  # no part, no record left


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    _earlier_part(tmp_path, b"x" * 5000)  # junk that must not survive
    path = _get(server.url("/norange"), tmp_path, sha256=SHA)
    assert path.read_bytes() == DATA
    assert server.log[0]["range"] == "bytes=5000-" and server.log[0]["status"] == 200


def test_a_part_without_a_recorded_validator_is_not_resumed(server, tmp_path):
    (tmp_path / "model.pth.part").write_bytes(DATA[:1000])  # whose bytes? nobody knows
    path = _get(server.url("/file"), tmp_path)
    assert path.read_bytes() == DATA
    assert [(e["range"], e["status"]) for e in server.log] == [(None, 200)]


def test_a_stale_part_of_an_older_version_restarts_from_zero(server, tmp_path):
    # The part holds the old file; upstream now serves another version: If-Range fails.
    _earlier_part(tmp_path, DATA[:HALF], etag=ETAG)
    path = _get(server.url("/newfile"), tmp_path)
    assert path.read_bytes() == NEW_DATA
    assert [(e["if_range"], e["status"]) for e in server.log] == [(ETAG, 200)]
    assert dl.recorded_sha256(path) == NEW_SHA


def test_a_server_ignoring_if_range_is_caught_by_the_validator_of_its_206(server, tmp_path):
    _earlier_part(tmp_path, DATA[:HALF], etag=ETAG)
    path = _get(server.url("/newfile-no-ifrange"), tmp_path)
    assert path.read_bytes() == NEW_DATA  # never old bytes joined to the new file
    assert [(e["range"], e["status"]) for e in server.log] == [(f"bytes={HALF}-", 206), (None, 200)]


def test_without_etag_or_last_modified_a_drop_restarts_from_zero(server, tmp_path):
    path = _get(server.url("/novalidator"), tmp_path, sha256=SHA)
    assert path.read_bytes() == DATA
    assert [(e["range"], e["sent"]) for e in server.log] == [(None, HALF), (None, len(DATA))]


def test_last_modified_is_used_when_there_is_no_etag(server, tmp_path):
    path = _get(server.url("/modified"), tmp_path, sha256=SHA)
    assert path.read_bytes() == DATA
    assert [(e["if_range"], e["status"]) for e in server.log] == [(None, 200), (MODIFIED, 206)]


def test_a_weak_etag_is_not_used_for_resuming(server, tmp_path):
    path = _get(server.url("/weak"), tmp_path, sha256=SHA)
    assert path.read_bytes() == DATA
    assert [(e["range"], e["status"]) for e in server.log] == [(None, 200), (None, 200)]


def test_a_corrupt_part_is_never_recorded_as_the_first_download(server, tmp_path):
    # Damaged bytes with a matching validator (disk error, a killed writer): the resumed
    # file fails the archive's CRC check, so no hash is recorded and nothing is kept.
    damaged = bytearray(DATA[:HALF])
    damaged[HALF // 2: HALF // 2 + 64] = b"\0" * 64
    _earlier_part(tmp_path, bytes(damaged))
    with pytest.raises(dl.IntegrityError, match="corrupt"):
        _get(server.url("/file"), tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert _get(server.url("/file"), tmp_path).read_bytes() == DATA  # the next run starts afresh
    assert dl.recorded_sha256(tmp_path / "model.pth") == SHA


@pytest.mark.parametrize("route,needle", [("/truncated", "damaged archive"), ("/random", "not a PyTorch checkpoint")])
def test_an_unverifiable_download_that_is_no_checkpoint_is_refused(server, tmp_path, route, needle):
    with pytest.raises(dl.IntegrityError, match=needle):
        _get(server.url(route), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_first_downloads_hash_guards_later_downloads(server, tmp_path):
    path = _get(server.url("/file"), tmp_path)
    assert dl.recorded_sha256(path) == SHA
    with pytest.raises(dl.IntegrityError, match="recorded at the first complete download") as info:
        _get(server.url("/newfile"), tmp_path, force=True)
    assert SHA in str(info.value) and NEW_SHA in str(info.value)
    assert path.read_bytes() == DATA  # the good copy is untouched
    assert not (tmp_path / "model.pth.part").exists()


def test_sha256_mismatch_raises_and_leaves_nothing(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(dl.IntegrityError) as info:
        _get(server.url("/file"), tmp_path, sha256=wrong)
    assert wrong in str(info.value) and SHA in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_google_drive_interstitial_is_followed(server, tmp_path):
    path = _get(server.url("/gdrive?id=FILEID&export=download"), tmp_path, sha256=SHA)
    assert path.read_bytes() == DATA
    assert [e["path"].split("?")[0] for e in server.log] == ["/gdrive", "/real-download"]


def test_drive_json_download_url_is_followed(server, tmp_path):
    path = _get(server.url("/json-page"), tmp_path, sha256=SHA)
    assert path.read_bytes() == DATA
    assert [e["path"].split("?")[0] for e in server.log] == ["/json-page", "/real-download"]


def test_old_drive_cookie_token_is_followed(server, tmp_path):
    path = _get(server.url("/cookie?id=X"), tmp_path, sha256=SHA)
    assert path.read_bytes() == DATA
    assert len(server.log) == 2


def test_html_only_answer_is_a_clear_error_and_never_saved(server, tmp_path):
    with pytest.raises(dl.DownloadError) as info:
        _get(server.url("/html"), tmp_path)
    message = str(info.value)
    assert "HTML page" in message and "Quota exceeded" in message
    assert list(tmp_path.iterdir()) == []


def test_mirror_fallback_after_404_and_500(server, tmp_path):
    urls = [server.url("/404"), server.url("/500"), server.url("/file")]
    path = _get(urls, tmp_path, sha256=SHA)
    assert path.read_bytes() == DATA
    assert [e["status"] for e in server.log] == [404, 500, 200]


def test_all_mirrors_failing_names_each_reason(server, tmp_path):
    with pytest.raises(dl.DownloadError) as info:
        _get([server.url("/404"), server.url("/html")], tmp_path)
    assert "HTTP 404" in str(info.value) and "HTML page" in str(info.value)
    assert not (tmp_path / "model.pth").exists()


def test_dropped_connection_resumes_where_it_stopped(server, tmp_path):
    path = _get(server.url("/drop"), tmp_path, sha256=SHA)
    assert path.read_bytes() == DATA
    assert [(e["status"], e["range"], e["sent"]) for e in server.log] == [
        (200, None, HALF), (206, f"bytes={HALF}-", len(DATA) - HALF)]


def test_failed_resume_keeps_part_for_later(server, tmp_path):
    with pytest.raises(dl.DownloadError) as info:
        _get(server.url("/dropthen503"), tmp_path)
    assert "partial data kept" in str(info.value) and "HTTP 503" in str(info.value)
    assert not (tmp_path / "model.pth").exists()
    assert (tmp_path / "model.pth.part").read_bytes() == DATA[:HALF]
    # A later run resumes from the kept bytes.
    _get(server.url("/file"), tmp_path, sha256=SHA)
    assert server.log[-1]["range"] == f"bytes={HALF}-"


def test_wrong_size_from_server_is_rejected(server, tmp_path):
    with pytest.raises(dl.DownloadError) as info:
        _get(server.url("/file"), tmp_path, expected_size=len(DATA) + 1)
    assert f"server reports {len(DATA)} bytes, expected {len(DATA) + 1}" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_complete_part_from_earlier_session_needs_no_request(server, tmp_path):
    _earlier_part(tmp_path, DATA)
    path = _get(server.url("/file"), tmp_path, sha256=SHA, expected_size=len(DATA))
    assert path.read_bytes() == DATA and server.log == []


def test_complete_part_unknown_size_gets_416_and_finishes(server, tmp_path):
    _earlier_part(tmp_path, DATA)
    path = _get(server.url("/file"), tmp_path, sha256=SHA)
    assert path.read_bytes() == DATA
    assert [e["status"] for e in server.log] == [416]


def test_existing_verified_file_is_kept(server, tmp_path):
    (tmp_path / "model.pth").write_bytes(DATA)
    _get(server.url("/file"), tmp_path, sha256=SHA)
    assert server.log == []


def test_existing_corrupt_file_is_replaced(server, tmp_path):
    (tmp_path / "model.pth").write_bytes(b"corrupt")
    path = _get(server.url("/file"), tmp_path, sha256=SHA)
    assert path.read_bytes() == DATA and len(server.log) == 1


def test_unverifiable_download_records_hash_and_warns(server, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger=dl.__name__):
        path = _get(server.url("/file"), tmp_path)
    assert dl.recorded_sha256(path) == SHA
    assert "could not be verified" in caplog.text
    # The recorded hash now guards the copy: a corrupted file is fetched again.
    path.write_bytes(b"bitrot")
    _get(server.url("/file"), tmp_path)
    assert path.read_bytes() == DATA and len(server.log) == 2


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="http"):
        dl.download("ftp://example.invalid/x.pth", tmp_path)
    with pytest.raises(ValueError, match="file name"):
        dl.download("http://127.0.0.1:9/download?id=1", tmp_path)
    with pytest.raises(ValueError, match="directory"):
        dl.download("http://127.0.0.1:9/x.pth", tmp_path, filename="../x.pth")
    with pytest.raises(ValueError, match="sha256"):
        dl.download("http://127.0.0.1:9/x.pth", tmp_path, sha256="abc")


def test_default_data_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv(dl.DATA_DIR_ENV, str(tmp_path / "data"))
    assert dl.default_data_dir() == tmp_path / "data"
    assert dl.default_weights_dir() == tmp_path / "data" / "weights"
    entry = registry.get("sam-vit-b")
    assert dl.local_path(entry) == tmp_path / "data" / "weights" / "sam_vit_b_01ec64.pth"
    assert dl.local_path(entry, tmp_path) == tmp_path / "sam_vit_b_01ec64.pth"
    monkeypatch.delenv(dl.DATA_DIR_ENV)
    assert dl.default_data_dir().name in ("refine-matte", "Refine Matte")


# ----------------------------------------------------------------------- registry

def test_registry_contents():
    assert registry.names("diffmatte") == ["diffmatte-res34", "diffmatte-swint", "diffmatte-vits",
                                           "diffmatte-vitb", "diffmatte-vits-1024"]
    assert registry.names("sam") == ["sam-vit-h", "sam-vit-l", "sam-vit-b"]
    vits1024 = registry.get("diffmatte-vits-1024")
    assert vits1024.verified and vits1024.filename == "DiffMatte_ViTS_Com_1024.pth"
    assert all("1NIn-tKtW3zhi2vK3OgOTiiHrOIXuHIZo" in u for u in vits1024.urls)
    assert registry.default("diffmatte") is vits1024
    for entry in registry.all_entries():
        assert all(u.startswith("https://") for u in entry.urls)
        if entry.kind == "sam":
            assert entry.verified and entry.size and entry.urls[0].endswith("/" + entry.filename)
            assert entry.urls[0].startswith("https://dl.fbaipublicfiles.com/segment_anything/")
    with pytest.raises(ValueError):
        registry.names("nope")
    # Nothing invented: DiffMatte sizes are unpublished, and so are four of the five hashes.
    dm = [registry.get(n) for n in registry.names("diffmatte")]
    assert all(e.size is None and "No size published" in e.notes for e in dm)
    assert [e.name for e in dm if e.hash_policy == "first-use"] == [
        "diffmatte-res34", "diffmatte-swint", "diffmatte-vits", "diffmatte-vitb"]
    assert all("trust on first use" in e.notes for e in dm if not e.verified)


def test_registry_lookup_aliases_and_errors():
    assert registry.get("ViTS_1024").name == "diffmatte-vits-1024"
    assert registry.get("SAM_VIT_B").name == "sam-vit-b"
    assert registry.get("sam_vit_h_4b8939.pth").name == "sam-vit-h"
    with pytest.raises(KeyError) as info:
        registry.get("vit_z")
    assert "known:" in str(info.value) and "diffmatte-vitb" in str(info.value)
    with pytest.raises(ValueError, match="sha256"):
        registry.WeightEntry("x", "sam", "v", "x.pth", ("https://a/x.pth",), sha256="nothex")


@pytest.mark.parametrize("module", ["registry.py", "download.py", "http_fetch.py", "cli.py", "gdrive.py", "partfile.py"])
def test_weights_modules_do_not_import_torch_or_numpy(module):
    source = Path(dl.__file__).with_name(module).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & {"torch", "numpy"}


# ---------------------------------------------------------------------------- CLI

def _cli(argv):
    import argparse
    from diffmatte.weights import cli
    parser = argparse.ArgumentParser(prog="diffmatte")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_list(capsys):
    assert _cli(["download", "--list"]) == 0
    out = capsys.readouterr().out
    assert "diffmatte-vits-1024 *" in out and "sam_vit_h_4b8939.pth" in out
    row = next(line for line in out.splitlines() if line.startswith("sam-vit-b"))
    assert "375.0 MB" in row and " published " in row
    for name in ("diffmatte-res34", "diffmatte-swint", "diffmatte-vits", "diffmatte-vitb"):
        row = next(line for line in out.splitlines() if line.startswith(name))
        assert " first-use " in row and "unknown" in row
    row = next(line for line in out.splitlines() if line.startswith("diffmatte-vits-1024"))
    assert " published " in row


def test_cli_download_from_mirror_unverified(server, tmp_path, capsys, monkeypatch):
    # --url goes first; the entry's own sources are swapped for a local 404 so that even a
    # failing mirror could never reach the internet.
    entry = dataclasses.replace(registry.get("diffmatte-vits"), urls=(server.url("/404"),))
    monkeypatch.setattr(registry, "get", lambda name: entry)
    code = _cli(["download", "diffmatte-vits", "--dest", str(tmp_path), "--url", server.url("/file"),
                 "--timeout", "5"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (tmp_path / "DiffMatte_ViTS_Com.pth").read_bytes() == DATA
    assert "NOT verified" in captured.out and "first complete download" in captured.out and SHA in captured.out
    assert [e["path"] for e in server.log] == ["/file"]
    assert "diffmatte-vits:" in captured.err  # progress line


def test_cli_download_verified_mismatch_fails(server, tmp_path, capsys, monkeypatch):
    # A fake entry whose only source is the local server: nothing can reach the internet.
    fake = registry.WeightEntry("fake", "sam", "vit_x", "fake.pth", (server.url("/file"),),
                                size=len(DATA), sha256="0" * 64)
    monkeypatch.setattr(registry, "get", lambda name: fake)
    code = _cli(["download", "fake", "--dest", str(tmp_path), "--timeout", "5"])
    assert code == 1
    assert "sha256 mismatch: expected " + "0" * 64 in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_unknown_name(capsys):
    assert _cli(["download", "nope"]) == 2
    assert "unknown weights 'nope'" in capsys.readouterr().err
