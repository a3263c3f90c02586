"""Registry of downloadable model weights (DiffMatte and Segment Anything).

Pure data, stdlib only: importing this module never touches the network and never
imports torch or numpy. ``download.py`` consumes the entries.

Provenance of the numbers below (never invent a hash or a size: ``None`` means
"not published"; the downloader then records the SHA-256 of the first complete
download beside the file, trust on first use, and later downloads must match it):

* DiffMatte checkpoints live on Google Drive, linked from the README of
  github.com/YihanHu-2022/DiffMatte (MIT licence); the file ids are the ones that
  README links to. Only two upstream file names are known
  (issue #5 of that repository); the others are our local naming, in the same style.
  The only published hash is the SHA-256 of ``DiffMatte_ViTS_Com_1024.pth``,
  recorded by a third party in yuki-inaho/diffmatte_onnx
  ``reports/retriever_cpu_comparison.json``. No byte size is published for any
  DiffMatte checkpoint, and no hash for the other four: searched (2026-11-26) the
  upstream README (it lists parameter counts, 29.0M / 101.4M / 48.8M, not file
  sizes), the upstream issues (#5, #7), third-party mirrors and install scripts
  (gdown of the same Drive ids) and Hugging Face listings; none gives them.
* Segment Anything checkpoints are served by Meta from
  https://dl.fbaipublicfiles.com/segment_anything/ (Apache-2.0, README of
  facebookresearch/segment-anything). SHA-256 values as listed in
  computational-cell-analytics/micro-sam ``micro_sam/util.py`` (``_CHECKSUMS``) and
  repeated, identically, by several independent model manifests on GitHub. Byte
  sizes as listed by several independent manifests on GitHub (one of them gives
  1249524736 for vit_l; three others give 1249524607, which we use: the SHA-256
  check is authoritative either way).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

KINDS = ("diffmatte", "sam")

_GDRIVE_UC = "https://drive.google.com/uc?export=download&id={id}"
_GDRIVE_USERCONTENT = "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"
_SAM_BASE = "https://dl.fbaipublicfiles.com/segment_anything/"


@dataclass(frozen=True)
class WeightEntry:
    """One downloadable checkpoint.

    ``urls`` are tried in order (official sources first). ``size`` and ``sha256`` are
    ``None`` when no trustworthy published value exists.
    """

    name: str
    kind: str
    variant: str
    filename: str
    urls: Tuple[str, ...]
    size: Optional[int] = None
    sha256: Optional[str] = None
    license: str = ""
    notes: str = ""
    hash_source: str = ""
    default: bool = False
    gdrive_id: Optional[str] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"weights entry {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if not self.urls:
            raise ValueError(f"weights entry {self.name!r}: needs at least one URL")
        if self.sha256 is not None:
            digest = self.sha256.lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"weights entry {self.name!r}: sha256 must be 64 hex digits")

    @property
    def verified(self) -> bool:
        """True when a published SHA-256 lets the downloader verify the file."""
        return self.sha256 is not None

    @property
    def hash_policy(self) -> str:
        """``"published"`` (checked against ``sha256``) or ``"first-use"`` (the hash of
        the first complete download is recorded and later downloads must match it)."""
        return "published" if self.sha256 is not None else "first-use"


def _gdrive_urls(file_id: str) -> Tuple[str, ...]:
    # The usercontent form skips the virus-scan interstitial for most files; the
    # classic uc form is kept as a fallback because Google has changed hosts before.
    return (_GDRIVE_USERCONTENT.format(id=file_id), _GDRIVE_UC.format(id=file_id))


_DIFFMATTE_LICENSE = "MIT (YihanHu-2022/DiffMatte); trained on Adobe Composition-1k, see its terms"
_DM_NOTE = "Official checkpoint, Google Drive (README of YihanHu-2022/DiffMatte). No size published."
_NO_HASH = "No SHA-256 published: the first complete download's hash is recorded (trust on first use)."


def _diffmatte(name: str, variant: str, filename: str, file_id: str, *, sha256: Optional[str] = None,
               hash_source: str = "", notes: str = "", default: bool = False) -> WeightEntry:
    return WeightEntry(
        name=name, kind="diffmatte", variant=variant, filename=filename, urls=_gdrive_urls(file_id),
        size=None, sha256=sha256, license=_DIFFMATTE_LICENSE, notes=(_DM_NOTE + " " + notes).strip(),
        hash_source=hash_source, default=default, gdrive_id=file_id,
    )


def _sam(model_type: str, filename: str, size: int, sha256: str) -> WeightEntry:
    return WeightEntry(
        name="sam-" + model_type.replace("_", "-"), kind="sam", variant=model_type, filename=filename,
        urls=(_SAM_BASE + filename,), size=size, sha256=sha256,
        license="Apache-2.0 (facebookresearch/segment-anything)",
        notes="Official Segment Anything checkpoint (Meta).",
        hash_source="computational-cell-analytics/micro-sam micro_sam/util.py _CHECKSUMS",
    )


_ENTRIES: Tuple[WeightEntry, ...] = (
    _diffmatte("diffmatte-res34", "Res34", "DiffMatte_Res34_Com.pth", "13D8tWjzkWKKSKwvHs-I_zToeGmU8gBJc",
               notes="Upstream file name unknown; local name chosen by us. " + _NO_HASH),
    _diffmatte("diffmatte-swint", "SwinT", "DiffMatte_SwinT_Com.pth", "1TimvLgX3Kf6_N73DUkP0Z99OAE30ry-B",
               notes="Upstream file name unknown; local name chosen by us. README param count "
                     "(48.8M) disagrees with the released config (38.75M). " + _NO_HASH),
    _diffmatte("diffmatte-vits", "ViTS", "DiffMatte_ViTS_Com.pth", "11m6y4LI_Hp5u5AagUY_bxPJWkbtsydFV",
               notes="Upstream file name unknown; local name chosen by us. " + _NO_HASH),
    _diffmatte("diffmatte-vitb", "ViTB", "DiffMatte_ViTB_Com.pth", "1-Qrtg7txDt53NIreq3PTvgJke6UhuB2z",
               notes="Upstream file name from DiffMatte issue #5. " + _NO_HASH),
    _diffmatte("diffmatte-vits-1024", "ViTS_1024", "DiffMatte_ViTS_Com_1024.pth",
               "1NIn-tKtW3zhi2vK3OgOTiiHrOIXuHIZo",
               sha256="685fdd14fd07a26be1075b8a4c2b4175e448a298f9d92bb857f54e3fb8636029",
               hash_source="yuki-inaho/diffmatte_onnx reports/retriever_cpu_comparison.json (third party)",
               notes="Best README row; upstream demo default. Upstream file name from DiffMatte issue #5.",
               default=True),
    _sam("vit_h", "sam_vit_h_4b8939.pth", 2564550879,
         "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e"),
    _sam("vit_l", "sam_vit_l_0b3195.pth", 1249524607,
         "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622"),
    _sam("vit_b", "sam_vit_b_01ec64.pth", 375042383,
         "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"),
)

_BY_NAME: Dict[str, WeightEntry] = {e.name: e for e in _ENTRIES}


class UnknownWeights(KeyError):
    """Raised by :func:`get` for a name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0]) if self.args else "unknown weights"


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _aliases() -> Dict[str, WeightEntry]:
    table: Dict[str, WeightEntry] = {}
    for entry in _ENTRIES:
        table[_normalise(entry.name)] = entry
        table[_normalise(entry.filename)] = entry
        # bare variants: "ViTS_1024" -> diffmatte-vits-1024, "vit_b" -> sam-vit-b
        table.setdefault(_normalise(entry.variant), entry)
    return table


def all_entries() -> Tuple[WeightEntry, ...]:
    """Every registry entry, in display order."""
    return _ENTRIES


def names(kind: Optional[str] = None) -> List[str]:
    """Registry names, optionally only those of one ``kind`` ("diffmatte" or "sam")."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown weights kind {kind!r}; expected one of {', '.join(KINDS)}")
    return [e.name for e in _ENTRIES if kind is None or e.kind == kind]


def get(name: str) -> WeightEntry:
    """Look up an entry by name (case-insensitive; '_' and '-' are equivalent; the
    file name and ``<kind>-<variant>`` also work). Raises :class:`UnknownWeights`."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownWeights("weights name must be a non-empty string")
    entry = _aliases().get(_normalise(name))
    if entry is None:
        raise UnknownWeights(f"unknown weights {name!r}; known: {', '.join(names())}")
    return entry


def default(kind: str = "diffmatte") -> WeightEntry:
    """The recommended entry of a kind (DiffMatte: ViTS_1024, SAM: vit_b, the smallest)."""
    if kind == "sam":
        return _BY_NAME["sam-vit-b"]
    if kind == "diffmatte":
        return next(e for e in _ENTRIES if e.default)
    raise ValueError(f"unknown weights kind {kind!r}; expected one of {', '.join(KINDS)}")
