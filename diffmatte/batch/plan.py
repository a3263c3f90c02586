"""Which files a batch refines, with which trimap or mask, into which outputs.

Pairing uses exact names: an image's *key* is the part of its stem that fills
``{stem}`` in ``--image-pattern``; its trimap is the file whose stem is exactly
``--trimap-pattern`` with that key put in. Nothing here is a glob, so a name such as
``dog?.png`` or ``cat[1].png`` matches only itself. Problems with one item become
that item's ``error``; only problems with the whole batch raise ``ValueError``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

FLAT_EXT = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}
LAYERED_EXT = {".psd", ".ora"}  # .tif/.tiff are layered when they have several pages
MANIFEST = "refine_matte_batch.jsonl"


@dataclass
class Item:
    """One input file and what to make of it."""

    key: str                       # unique name of the item (the input's file name)
    image: str                     # input path
    kind: str = "flat"             # "flat" or "layered"
    fmt: str = ""                  # layered format: "psd", "ora" or "tiff"
    trimap: Optional[str] = None   # trimap file
    mask: Optional[str] = None     # mask file, banded into a trimap
    layers: List[Tuple[str, str]] = field(default_factory=list)  # (layer path, trimap source)
    outputs: Dict[str, str] = field(default_factory=dict)       # role -> output path
    error: Optional[str] = None

    def inputs(self) -> List[str]:
        return [p for p in (self.image, self.trimap, self.mask) if p]


def compile_pattern(template: str, option: str) -> "re.Pattern[str]":
    """'{stem}_trimap' -> a regex whose group 'stem' is the key; everything else is literal."""
    if template.count("{stem}") != 1:
        raise ValueError(f"{option} must contain '{{stem}}' exactly once, got {template!r}")
    before, after = template.split("{stem}")
    return re.compile(re.escape(before) + r"(?P<stem>.+)" + re.escape(after), re.DOTALL)


def key_of(path: Path, pattern: "re.Pattern[str]") -> Optional[str]:
    m = pattern.fullmatch(path.stem)
    return m.group("stem") if m else None


def list_folder(folder: Path) -> List[Path]:
    """Visible regular files of ``folder``, sorted by name (not recursive)."""
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise ValueError(f"cannot list {folder}: {exc}") from None
    return [p for p in entries if not p.name.startswith(".") and p.is_file()]


def supported(path: Path) -> bool:
    return path.suffix.lower() in FLAT_EXT | LAYERED_EXT


def find_partner(folder: Path, template: str, key: str, what: str, files: Dict[Path, List[Path]]) -> Tuple[
        Optional[Path], Optional[str]]:
    """The one file in ``folder`` whose stem is exactly ``template`` with ``key``; or an error."""
    want = template.replace("{stem}", key)
    listing = files.setdefault(folder, list_folder(folder))
    hits = [p for p in listing if p.stem == want and p.suffix.lower() in FLAT_EXT]
    if not hits:
        return None, f"no {what} named {want}.* in {folder}"
    if len(hits) > 1:
        return None, f"ambiguous {what}s for {key!r}: {hits[0]} and {hits[1]}; keep one"
    return hits[0], None


def discover(inputs: Sequence[str], image_pattern: str, skip: Set[Path],
             exclude_patterns: Iterable[Tuple[Path, "re.Pattern[str]"]]) -> Tuple[List[Path], List[str]]:
    """Image files from files and folders. Returns (images, names of ignored files).

    ``skip``: resolved paths never taken as inputs (our own earlier outputs).
    ``exclude_patterns``: (folder, pattern) pairs: in that folder, files whose stem
    matches the pattern are trimaps or masks, not images.
    """
    pat = compile_pattern(image_pattern, "--image-pattern")
    excl = [(f.resolve(), p) for f, p in exclude_patterns]
    images: List[Path] = []
    ignored: List[str] = []
    for raw in inputs:
        src = Path(raw)
        if src.is_dir():
            for p in list_folder(src):
                if p.resolve() in skip:
                    continue
                if not supported(p):
                    if p.name != MANIFEST:
                        ignored.append(p.name)
                    continue
                if key_of(p, pat) is None:
                    continue
                if any(src.resolve() == f and key_of(p, tp) is not None for f, tp in excl):
                    continue
                images.append(p)
        elif src.is_file():
            images.append(src)
        else:
            raise ValueError(f"input not found: {src}")
    return images, ignored


def assign_outputs(item: Item, out_dir: Path, rgba: bool, layered_cutouts: Sequence[str] = ()) -> None:
    """Output paths: flat -> OUT/STEM.png (+ STEM_cutout.png); layered -> OUT/NAME in the
    same format (+ STEM_LAYER_cutout.png per refined layer)."""
    src = Path(item.image)
    if item.kind == "flat":
        item.outputs["alpha"] = str(out_dir / f"{src.stem}.png")
        if rgba:
            item.outputs["cutout"] = str(out_dir / f"{src.stem}_cutout.png")
        return
    item.outputs["layered"] = str(out_dir / src.name)
    if rgba:
        for path in layered_cutouts:
            item.outputs[f"cutout:{path}"] = str(out_dir / f"{src.stem}_{slug(path)}_cutout.png")


def slug(text: str) -> str:
    """A layer path as a file-name part: letters, digits, '-', '_' and '.' kept."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return s or "layer"


def check_collisions(items: List[Item], protected: Set[Path]) -> None:
    """Mark items whose outputs would overwrite an input or another item's output."""
    owners: Dict[Path, List[Item]] = {}
    for item in items:
        if item.error:
            continue
        for out in item.outputs.values():
            owners.setdefault(Path(os.path.abspath(out)), []).append(item)
    for path, its in owners.items():
        if path in protected or path.resolve() in protected:
            for it in its:
                it.error = it.error or f"output {path} would overwrite an input; choose another -o folder"
        if len({id(i) for i in its}) > 1:
            names = " and ".join(i.image for i in its)
            for it in its:
                it.error = it.error or f"{names} would both write {path}; rename one"
