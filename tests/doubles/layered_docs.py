"""Small layered documents (PSD / OpenRaster / layered TIFF content) shared by the tests of
diffmatte.io.layered, the batch and the editor, which live in different folders."""
from __future__ import annotations

import numpy as np

from diffmatte.io.layered import LayeredImage, Layer, Mask

FORMATS = ["psd", "ora", "tiff"]
EXT = {"psd": ".psd", "ora": ".ora", "tiff": ".tif"}


def make_doc(w: int = 40, h: int = 30, seed: int = 0) -> LayeredImage:
    """background (opaque), group 'fg' holding 'subject' (offset, half opacity,
    with a layer mask), and a hidden 'overlay' on top."""
    rng = np.random.default_rng(seed)
    bg = np.dstack([rng.integers(0, 256, (h, w, 3), dtype=np.uint8), np.full((h, w), 255, np.uint8)])
    sub = np.dstack([rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), np.full((12, 16), 255, np.uint8)])
    sub[:3, :, 3] = 0  # some transparency
    top = np.dstack([rng.integers(0, 256, (h, w, 3), dtype=np.uint8), np.full((h, w), 200, np.uint8)])
    mask = np.zeros((h, w), np.uint8)
    mask[5:20, 5:25] = 255
    subject = Layer("subject", sub, left=7, top=5, opacity=128 / 255, mask=Mask(mask))
    return LayeredImage(w, h, [Layer("background", bg),
                               Layer("fg", children=[subject], kind="group"),
                               Layer("overlay", top, visible=False)])


def layout(doc: LayeredImage):
    return [(p, l.is_group, l.left, l.top, round(l.opacity * 255), l.visible) for p, l in doc.walk()]


def dup_doc(w: int = 40, h: int = 30) -> LayeredImage:
    """Two layers named 'Layer': the lower with a layer mask, the upper with transparency
    only (as the report's file, and MyPaint's unnamed layers that all read as 'layer')."""
    rng = np.random.default_rng(3)
    bg = np.dstack([rng.integers(0, 256, (h, w, 3), dtype=np.uint8), np.full((h, w), 255, np.uint8)])
    low = np.dstack([rng.integers(0, 256, (h, w, 3), dtype=np.uint8), np.full((h, w), 255, np.uint8)])
    mask = np.zeros((h, w), np.uint8)
    mask[5:20, 5:25] = 255
    up = np.dstack([rng.integers(0, 256, (h, w, 3), dtype=np.uint8), np.zeros((h, w), np.uint8)])
    up[8:24, 12:34, 3] = 255
    return LayeredImage(w, h, [Layer("background", bg), Layer("Layer", low, mask=Mask(mask)), Layer("Layer", up)])
