"""OpenRaster (.ora): a zip of stack.xml and one PNG per layer, read and written with
the standard library and Pillow.

OpenRaster has no layer-mask element; a masked layer is written, as the editor always
did, as an isolated group of two layers: the layer, and above it a white layer whose
alpha is the mask, composited with ``svg:dst-in``. Such a group is read back as one
layer with a mask; every other group stays a group.

A document read from an OpenRaster file is written back in place: every archive member
and every stack.xml attribute it does not edit is kept (ora_inplace.write_in_place).

Reading is ora_read.py, writing a new file ora_write.py, writing in place ora_inplace.py.
"""
from __future__ import annotations

from typing import BinaryIO

from .model import LayeredImage
from .ora_inplace import NotInPlace, write_in_place
from .ora_read import read_ora
from .ora_write import write_new

__all__ = ["read_ora", "write_ora"]


def write_ora(img: LayeredImage, out: BinaryIO) -> None:
    """Write ``img`` as OpenRaster to the binary file ``out``: a document read from an
    OpenRaster file is edited in place (see :func:`write_in_place`), any other is written new."""
    if img.format == "ora" and img.source is not None:
        try:
            data = write_in_place(img)
        except NotInPlace:
            data = None
        if data is not None:
            out.write(data)
            return
    write_new(img, out)
