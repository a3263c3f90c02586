"""Planning and validating a batch (everything that happens before the model loads)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set

from . import validate as V
from .manifest import Manifest, sha256_file
from .plan import (FLAT_EXT, Item, assign_outputs, check_collisions, compile_pattern, discover, find_partner,
                   key_of, list_folder, supported)
from .work import Settings


@dataclass
class Plan:
    items: List[Item]
    out_dir: Path
    settings_id: str
    hashes: Dict[str, Dict[str, str]] = field(default_factory=dict)  # item key -> {input path: sha256}

    def rel(self, path: str) -> str:
        """Output paths as stored in the manifest: relative to the output folder."""
        return os.path.relpath(os.path.abspath(path), os.path.abspath(self.out_dir))


def _folder(path: Optional[str], option: str) -> Optional[Path]:
    if path is None:
        return None
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"{option} must be a folder: {p}")
    return p


def prepare(inputs: List[str], out_dir: Path, manifest: Manifest, settings: Settings, *, trimaps: Optional[str],
            masks: Optional[str], layers: Optional[str], image_pattern: str, trimap_pattern: str,
            mask_pattern: str, overwrite: bool, max_pixels: int, echo=None,
            weights_id: Optional[str] = None) -> Plan:
    """Find, pair and validate every item; raises ValueError only for whole-batch problems."""
    from ..engine import resolve_weights

    if not inputs:
        raise ValueError("no input given: name files or folders (or --images DIR)")
    tri_dir, mask_dir = _folder(trimaps, "--trimaps"), _folder(masks, "--masks")
    img_pat = compile_pattern(image_pattern, "--image-pattern")
    compile_pattern(trimap_pattern, "--trimap-pattern")
    compile_pattern(mask_pattern, "--mask-pattern")
    in_dirs = [Path(p).resolve() for p in inputs if Path(p).is_dir()]
    exclude = _shared_folders(in_dirs, image_pattern, ((tri_dir, trimap_pattern, "--trimaps"),
                                                       (mask_dir, mask_pattern, "--masks")))
    if weights_id is None:  # our own engine: a missing model is reported now, not after planning
        weights_path = resolve_weights(settings.weights)
        weights_id = sha256_file(weights_path) or str(weights_path)
    sam = None
    if mask_dir is not None and settings.mask_edge != "exact":
        import trimap

        sam = trimap.installed_sam_id()   # a rectangle mask is read by SAM when one is installed
    settings_id = settings.fingerprint(weights_id, sam)

    ours = manifest.our_outputs()
    found, ignored = discover(inputs, image_pattern, ours, exclude)
    if ignored and echo is not None:
        echo(f"ignored {len(ignored)} file(s) that are not images: {', '.join(ignored[:5])}"
             + (" ..." if len(ignored) > 5 else ""))
    if not found:
        raise ValueError(f"no images found in {', '.join(inputs)}")

    listings: Dict[Path, List[Path]] = {}
    items: List[Item] = []
    names: Dict[str, int] = {}
    for path in found:
        names[path.name] = names.get(path.name, 0) + 1
    for path in found:
        key = path.name if names[path.name] == 1 else str(path)
        item = Item(key=key, image=str(path))
        if names[path.name] > 1:
            item.error = f"two inputs are named {path.name}; their outputs would collide"
        items.append(item)
        if item.error:
            continue
        try:
            _pair(item, path, img_pat, tri_dir, trimap_pattern, mask_dir, mask_pattern, listings)
            _check(item, layers, max_pixels)
        except ValueError as exc:
            item.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a codec's bug on one file must not stop the batch
            item.error = f"{path}: cannot be read ({type(exc).__name__}: {exc})"
        assign_outputs(item, out_dir, settings.rgba, [p for p, _ in item.layers])
        item.error = item.error or _own_collision(item)

    folders = set(in_dirs) | {d.resolve() for d in (tri_dir, mask_dir) if d is not None}
    _refuse_overwrites(items, folders, listings, ours, overwrite)

    plan = Plan(items, out_dir, settings_id)
    for item in items:
        if not item.error:
            # absolute paths: a rerun from another working folder still recognises its inputs
            plan.hashes[item.key] = {os.path.abspath(p): sha256_file(Path(p)) or "" for p in item.inputs()}
    return plan


def _shared_folders(in_dirs: List[Path], image_pattern: str, folders) -> list:
    """(folder, compiled pattern) of the trimap / mask folders that are also image folders
    (their files are not images); the same pattern for both is refused."""
    exclude = []
    for folder, pattern, option in folders:
        if folder is None:
            continue
        if folder.resolve() in in_dirs:
            if pattern == image_pattern:
                raise ValueError(f"{option} is the images folder {folder}: every file would be an image and its own "
                                 f"{option[2:-1]}; tell them apart with --image-pattern and "
                                 f"--{option[2:-1]}-pattern (e.g. '{{stem}}_image' and '{{stem}}_{option[2:-1]}')")
            exclude.append((folder, compile_pattern(pattern, option)))
    return exclude


def _refuse_overwrites(items: List[Item], folders: Set[Path], listings: Dict[Path, List[Path]],
                       ours: Set[Path], overwrite: bool) -> None:
    """Items whose outputs would replace an input (any supported file in the input folders)
    or, without ``overwrite``, a file this batch did not write, get an error."""
    protected: Set[Path] = set()
    for folder in folders:
        protected.update(p.resolve() for p in listings.get(folder, list_folder(folder)) if supported(p))
    for item in items:
        protected.update(Path(p).resolve() for p in item.inputs())
    protected -= ours  # our earlier outputs are not inputs (they were never taken as such)
    check_collisions(items, protected)
    for item in items:
        if item.error or overwrite:
            continue
        for out in item.outputs.values():
            if Path(out).exists() and Path(out).resolve() not in ours:
                item.error = f"{out} exists and was not written by this batch; pass --overwrite to replace it"
                break


def _own_collision(item: Item) -> Optional[str]:
    """Two of the item's chosen layers that would write the same file (their cut-outs'
    names are the same once made file-name safe): refused now, not one output lost."""
    by_path: Dict[str, str] = {}
    for role, out in item.outputs.items():
        if out in by_path:
            a, b = (r.split(":", 1)[-1] for r in (by_path[out], role))
            return (f"{item.image}: layers {a!r} and {b!r} would both write {Path(out).name}; "
                    f"choose one of them with --layers (by its path) or rename one")
        by_path[out] = role
    return None


def _pair(item: Item, path: Path, img_pat, tri_dir: Optional[Path], trimap_pattern: str, mask_dir: Optional[Path],
          mask_pattern: str, listings: Dict[Path, List[Path]]) -> None:
    """Classify the item and find its trimap / mask by exact name."""
    ext = path.suffix.lower()
    if ext in (".psd", ".ora"):
        item.kind, item.fmt = "layered", ext[1:]
    elif ext in (".tif", ".tiff") and V.is_layered_tiff(V.read_bytes(path)):
        item.kind, item.fmt = "layered", "tiff"
    elif ext not in FLAT_EXT:
        raise ValueError(f"{path}: unsupported file type {ext or '(none)'}")
    else:
        V.image_size(path, 1 << 62)  # an unreadable image is reported as such, before its partners
    key = key_of(path, img_pat) or path.stem
    misses = []
    for folder, pattern, what in ((tri_dir, trimap_pattern, "trimap"), (mask_dir, mask_pattern, "mask")):
        if folder is None:
            continue
        hit, why = find_partner(folder, pattern, key, what, listings)
        if why and why.startswith("ambiguous"):
            raise ValueError(why)
        if hit is not None:
            if hit.resolve() == path.resolve():
                raise ValueError(f"{path} would be its own {what}")
            setattr(item, what, str(hit))
            return
        misses.append(why)
    if item.kind == "flat":
        if not misses:
            raise ValueError(f"{path}: no trimap source; pass --trimaps DIR or --masks DIR")
        raise ValueError("; ".join(m for m in misses if m))


def _check(item: Item, layers: Optional[str], max_pixels: int) -> None:
    path = Path(item.image)
    if item.kind == "layered":
        size, item.layers = V.layered_info(item, V.read_bytes(path), layers, max_pixels)
        if item.trimap:
            V.check_trimap(Path(item.trimap), size, max_pixels)
        if item.mask:
            V.check_mask(Path(item.mask), size, max_pixels)
        return
    size = V.image_size(path, max_pixels)
    V.check_image_not_trimap(path)
    if item.trimap:
        V.check_trimap(Path(item.trimap), size, max_pixels)
    else:
        V.check_mask(Path(item.mask), size, max_pixels)
