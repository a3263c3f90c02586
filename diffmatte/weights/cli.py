"""``diffmatte download``: list and fetch the registered model weights."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import List, Optional, TextIO

from . import registry
from .download import DownloadError, default_weights_dir, download, recorded_sha256


def register(subparsers) -> None:
    """Add the ``download`` sub-command to the ``diffmatte`` CLI."""
    parser = subparsers.add_parser(
        "download", help="download official DiffMatte / Segment Anything weights",
        description="Download model weights into the Refine Matte data folder (or --dest), "
                    "resuming partial downloads and verifying SHA-256 where one is published. "
                    "Without NAME, the default DiffMatte checkpoint "
                    f"({registry.default('diffmatte').name}) is fetched.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="registry names (see --list); 'all' for every entry")
    parser.add_argument("--dest", metavar="DIR", help=f"target folder (default: {default_weights_dir()})")
    parser.add_argument("--list", action="store_true", help="print the registry and exit")
    parser.add_argument("--url", action="append", default=[], metavar="URL",
                        help="extra mirror tried before the official sources (one NAME only)")
    parser.add_argument("--force", action="store_true", help="download again even if a verified copy exists")
    parser.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default 60)")
    parser.set_defaults(func=run)


def _human(n: Optional[int]) -> str:
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def format_table(out: TextIO = sys.stdout) -> None:
    """Print the registry: name, kind, variant, size, how its hash is checked, file."""
    rows = [("NAME", "KIND", "VARIANT", "SIZE", "SHA-256", "FILE")]
    for e in registry.all_entries():
        name = e.name + (" *" if e.default else "")
        rows.append((name, e.kind, e.variant, _human(e.size), e.hash_policy, e.filename))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")
    out.write("* default DiffMatte checkpoint. SIZE unknown: none is published. SHA-256 first-use: none is "
              "published; the hash of the first complete download is recorded beside the file "
              "(<file>.sha256) and later downloads must match it.\n")


class _ProgressLine:
    """A single self-overwriting progress line on a terminal, sparse lines otherwise."""

    def __init__(self, label: str, out: TextIO) -> None:
        self.label, self.out = label, out
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.start = time.monotonic()
        self.last = 0.0
        self.last_decile = -1

    def __call__(self, done: int, total: Optional[int]) -> None:
        now = time.monotonic()
        rate = done / max(now - self.start, 1e-6)
        if total:
            pct = min(100.0, 100.0 * done / total)
            text = f"{self.label}: {_human(done)} / {_human(total)} ({pct:5.1f}%)  {_human(int(rate))}/s"
        else:
            pct = None
            text = f"{self.label}: {_human(done)}  {_human(int(rate))}/s"
        if self.tty:
            if now - self.last >= 0.2 or (total and done >= total):
                self.out.write("\r" + text.ljust(78))
                self.out.flush()
                self.last = now
        else:
            decile = int(pct // 10) if pct is not None else int(done // (100 << 20))
            if decile != self.last_decile:
                self.out.write(text + "\n")
                self.last_decile = decile

    def end(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def run(args: argparse.Namespace) -> int:
    """Entry point of ``diffmatte download``; returns the process exit status."""
    out, err = sys.stdout, sys.stderr
    if args.list:
        format_table(out)
        return 0
    wanted: List[str] = list(args.names) or [registry.default("diffmatte").name]
    try:
        entries = (list(registry.all_entries()) if wanted == ["all"]
                   else [registry.get(n) for n in wanted])
    except KeyError as exc:
        err.write(f"error: {exc}\n")
        return 2
    if args.url and len(entries) != 1:
        err.write("error: --url needs exactly one NAME\n")
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

    failed = 0
    for entry in entries:
        urls = tuple(args.url) + entry.urls
        bar = _ProgressLine(entry.name, err)
        try:
            path = download(urls, args.dest, filename=entry.filename, sha256=entry.sha256,
                            expected_size=entry.size, progress=bar, timeout=args.timeout, force=args.force)
        except KeyboardInterrupt:
            bar.end()
            err.write(f"interrupted: partial data of {entry.name} is kept; run the same command to resume\n")
            return 130
        except (DownloadError, OSError, ValueError) as exc:
            bar.end()
            err.write(f"error: {entry.name}: {exc}\n")
            failed += 1
            continue
        bar.end()
        if entry.verified:
            out.write(f"{entry.name}: {path} (sha256 verified)\n")
        else:
            out.write(f"{entry.name}: {path} (NOT verified against a published sha256, none exists; "
                      f"sha256 {recorded_sha256(path) or '?'} as recorded at the first complete download "
                      f"in {path.name}.sha256)\n")
    return 1 if failed else 0


def main(argv: Optional[List[str]] = None) -> int:
    """Stand-alone entry (``python -m diffmatte.weights.cli``) for when the main CLI is absent."""
    parser = argparse.ArgumentParser(prog="diffmatte")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
