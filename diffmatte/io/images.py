"""Image/trimap conversion, validation, reading and atomic writing."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from diffmatte.errors import InputError  # absolute: survives the move of this module (issue #26)

PathLike = Union[str, os.PathLike]


def to_float_rgb(image: np.ndarray) -> np.ndarray:
    """Convert an image to H x W x 3 float32 RGB in [0, 1].

    uint8 / 255, uint16 / 65535, bool as 0/1, float used as is and clipped to [0, 1]
    (HDR values above 1 are clipped); grey (H x W or H x W x 1) is replicated; RGBA
    drops its alpha (the colours, not the old alpha, are what matting needs).
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise InputError(f"image must be H x W, H x W x 1, x 3 or x 4; got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"image is empty (shape {arr.shape})")
    arr = arr[:, :, :3] if arr.shape[2] == 4 else arr
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return _scale(arr, "image")


def _scale(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype in (np.uint8, np.uint16):
        # in place: the same numbers, and one fresh 24 MP float array less (0.9 s of page
        # faults on the reference machine; issue #23)
        out = arr.astype(np.float32)
        out /= 255.0 if arr.dtype == np.uint8 else 65535.0
        return out
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise InputError(f"{what} contains NaN or infinite values")
        return np.clip(out, 0.0, 1.0, out=out)  # astype copied: in place
    raise InputError(f"{what} dtype {arr.dtype} is not supported (use uint8, uint16, bool or float in [0, 1])")


def to_trimap(trimap: np.ndarray) -> np.ndarray:
    """Convert a trimap to H x W float32 with values exactly {0, 0.5, 1}.

    Values are scaled to 0..1 (uint8 / 255, uint16 / 65535, float as is) and binned the
    official way: < 0.1 background, > 0.9 foreground, in between unknown. A 3-channel
    trimap whose channels are equal is accepted.
    """
    arr = np.asarray(trimap)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        rgb = arr[:, :, :3]
        if not (np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 0], rgb[:, :, 2])):
            raise InputError("trimap has colour channels that differ; expected a grey 0/128/255 image")
        arr = rgb[:, :, 0]
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise InputError(f"trimap must be H x W; got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"trimap is empty (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating) and np.isfinite(arr).all() and (arr.min() < 0 or arr.max() > 1):
        raise InputError(f"float trimap values must lie in [0, 1]; got [{arr.min():.3g}, {arr.max():.3g}]")
    v = _scale(arr, "trimap")
    out = np.full(v.shape, 0.5, dtype=np.float32)
    out[v < 0.1] = 0.0
    out[v > 0.9] = 1.0
    return out


def trimap_to_unit(trimap: np.ndarray) -> np.ndarray:
    """A 0/128/255 trimap file's grey values (uint8) to {0, 0.5, 1} float32 with the official
    data loaders' thresholds (< 85 background, >= 170 foreground): the one rule of training
    and evaluation data (engine input is binned by :func:`to_trimap`)."""
    t = np.asarray(trimap)
    return np.where(t < 85, 0.0, np.where(t >= 170, 1.0, 0.5)).astype(np.float32)


def check_pair(image: np.ndarray, trimap: np.ndarray) -> None:
    if image.shape[:2] != trimap.shape[:2]:
        raise InputError(f"image is {image.shape[1]}x{image.shape[0]} but trimap is "
                         f"{trimap.shape[1]}x{trimap.shape[0]} (width x height); they must match")


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as an array (uint8 or uint16), honouring EXIF orientation."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.format == "TIFF" and im.mode in ("RGB", "RGBA") and max(im.tag_v2.get(258, (8,))) == 16:
                return _read_tiff16(path, int(im.tag_v2.get(274, 1)))  # Pillow keeps 8 of the 16 bits
            if im.format == "PNG" and _png_colour16(path):
                # Pillow reads 16-bit colour PNGs as 8-bit: decode them at full precision.
                arr = _read_png16(path)
                if arr is not None:
                    return _orient(arr, int(im.getexif().get(274, 1)))
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im)
                return arr.astype(np.uint16) if arr.dtype != np.uint16 and arr.max() <= 65535 else arr
            if im.mode not in ("RGB", "RGBA", "L", "LA"):
                im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
            return np.asarray(im)
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from exc


def _png_colour16(path) -> bool:
    """Whether ``path`` is a PNG with 16 bits per sample in colour (RGB or RGBA)."""
    try:
        if hasattr(path, "seek"):
            pos = path.tell()
            path.seek(0)
            head = path.read(33)
            path.seek(pos)
        else:
            with open(path, "rb") as fh:
                head = fh.read(33)
    except OSError:
        return False
    return (len(head) == 33 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
            and head[24] == 16 and head[25] in (2, 6))


def _read_png16(path):
    """A 16-bit RGB / RGBA PNG as uint16 H x W x C (torchvision's libpng decoder; the
    engine needs torch anyway). None when torchvision is missing: Pillow's 8 bits then."""
    import warnings

    try:
        import torch
        with warnings.catch_warnings():  # "deprecated since torchvision 0.29": still the libpng decoder
            warnings.simplefilter("ignore", DeprecationWarning)
            from torchvision.io import ImageReadMode, decode_png
    except ImportError:
        import sys
        print(f"warning: {path}: a 16-bit PNG is read as 8-bit (torchvision is not installed)",
              file=sys.stderr)
        return None
    if hasattr(path, "seek"):
        path.seek(0)
        data = path.read()
    else:
        data = Path(path).read_bytes()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            t = decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.UNCHANGED)
    except RuntimeError as exc:
        raise ValueError(f"{path}: not a readable 16-bit PNG ({exc})") from exc
    t = t.permute(1, 2, 0).contiguous()
    if t.dtype == torch.uint8:
        return t.numpy()
    return np.ascontiguousarray(t.view(torch.int16).numpy().view(np.uint16))


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """``arr`` turned like ``ImageOps.exif_transpose`` turns an image with that EXIF tag."""
    turn = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
            5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
            8: lambda a: np.rot90(a, 1)}.get(orientation)
    return np.ascontiguousarray(turn(arr) if turn else arr)


def _read_tiff16(path, orientation: int) -> np.ndarray:
    """A 16-bit colour TIFF's first page at full precision (tifffile), oriented like
    ``ImageOps.exif_transpose`` would."""
    import tifffile

    from .layered.tiff import page_pixels

    if hasattr(path, "seek"):
        path.seek(0)
    with tifffile.TiffFile(path) as tif:
        arr = page_pixels(tif.pages[0])
    turn = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
            5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
            8: lambda a: np.rot90(a, 1)}.get(orientation)
    return np.ascontiguousarray(turn(arr) if turn else arr)


def read_trimap(path: PathLike) -> np.ndarray:
    """Read a trimap file as a grey array (palette and RGB trimaps are converted)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "L"):
                return np.asarray(im)
            return np.asarray(im.convert("L"))
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: not a readable trimap image ({exc})") from exc


def _atomic_save(img, path: PathLike, **kwargs) -> Path:
    from .fsutil import atomic_path

    dest = Path(path)
    fmt = kwargs.pop("format", None) or (dest.suffix.lstrip(".").upper() or "PNG")
    fmt = {"JPG": "JPEG", "TIF": "TIFF"}.get(fmt, fmt)
    with atomic_path(dest) as tmp:
        img.save(tmp, format=fmt, **kwargs)
    return dest


def alpha_to_uint(alpha: np.ndarray, bits: int = 8) -> np.ndarray:
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    top = 255 if bits == 8 else 65535
    a = np.clip(np.asarray(alpha, dtype=np.float32), 0, 1)
    return np.round(a * top).astype(np.uint8 if bits == 8 else np.uint16)


def write_alpha(path: PathLike, alpha: np.ndarray, bits: int = 8) -> Path:
    """Write an alpha matte as an 8- or 16-bit grey PNG/TIFF, atomically."""
    from PIL import Image

    return _atomic_save(Image.fromarray(alpha_to_uint(alpha, bits)), path)


def write_image(path: PathLike, array: np.ndarray) -> Path:
    """Write an 8-bit image array (grey, RGB or RGBA) atomically, in the format of the
    path's suffix (PNG without one): contact sheets and figures."""
    from PIL import Image

    return _atomic_save(Image.fromarray(np.asarray(array)), path)


def write_rgba(path: PathLike, image: np.ndarray, alpha: np.ndarray) -> Path:
    """Write the cut-out: the image's RGB (8-bit) with the alpha as its alpha channel."""
    from PIL import Image

    rgb = np.round(to_float_rgb(image) * 255).astype(np.uint8)
    rgba = np.dstack([rgb, alpha_to_uint(alpha, 8)])
    return _atomic_save(Image.fromarray(rgba, "RGBA"), path)
