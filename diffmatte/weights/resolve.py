"""Which checkpoint file a ``weights=`` argument means: the bundled default, an official
variant downloaded by name, or a path."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from ..errors import DefaultWeightsMissing

DEFAULT_WEIGHTS = Path(__file__).parent / "default.safetensors"


def default_weights_path() -> Path:
    """The bundled default model (``DIFFMATTE_DEFAULT_WEIGHTS`` overrides it, docs/ENVIRONMENT.md)."""
    override = os.environ.get("DIFFMATTE_DEFAULT_WEIGHTS")
    return Path(override) if override else DEFAULT_WEIGHTS


def resolve_weights(weights: Union[str, os.PathLike]) -> Path:
    """Map ``"default"``, a registry name (e.g. ``"ViTS_1024"``, once downloaded) or a path to a file."""
    if isinstance(weights, str) and weights == "default":
        path = default_weights_path()
        if not path.is_file():
            raise DefaultWeightsMissing(
                f"no bundled default model at {path}. Pass weights=PATH (an official DiffMatte .pth or a "
                f"safetensors file), or train one with `diffmatte train`.")
        return path
    path = Path(weights)
    if path.exists() or not isinstance(weights, str) or any(sep in weights for sep in ("/", "\\", ".")):
        return path
    from . import download, registry

    try:
        entry = registry.get(weights)
    except KeyError:
        return path  # not a registry name either: the loader reports the missing file
    if entry.kind != "diffmatte":
        raise ValueError(f"{weights!r} is a {entry.kind} checkpoint, not a DiffMatte model")
    local = download.local_path(entry)
    if not local.is_file():
        raise FileNotFoundError(f"official weights {entry.name} are not downloaded yet ({local}); "
                                f"run `diffmatte download {entry.name}`")
    return local
