"""imaging.qimage_to_png, the plugin's one PNG writer (issue #23): the layer's PNG for the engine,
encoded band by band with progress; Qt and Pillow read back the same pixels."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from refine_matte import imaging  # noqa: E402
from refine_matte.qt import QtGui  # noqa: E402

Fmt = QtGui.QImage.Format


def qimage(arr: np.ndarray, fmt) -> "QtGui.QImage":
    h, w = arr.shape[:2]
    per_line = arr.strides[0]
    return QtGui.QImage(arr.tobytes(), w, h, per_line, fmt).copy()


@pytest.mark.parametrize("w", [57, 64])  # 57: rows padded to 4 bytes in the QImage
def test_rgb_and_grey_round_trip_with_rising_progress(qapp, monkeypatch, w):
    monkeypatch.setattr(imaging, "BAND_ROWS", 7)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (45, w, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (45, w), dtype=np.uint8)
    heard = []
    data = imaging.qimage_to_png(qimage(rgb, Fmt.Format_RGB888), heard.append)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), rgb)
    assert heard == sorted(heard) and len(heard) == 7 and heard[-1] == 1.0   # 45 rows in bands of 7
    back = imaging.png_to_qimage(imaging.qimage_to_png(qimage(grey, Fmt.Format_Grayscale8)))
    assert back.width() == w and back.height() == 45
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(imaging.qimage_to_png(qimage(grey, Fmt.Format_Grayscale8))))),
                          grey)


def test_other_formats_go_through_qt_and_keep_16_bits(qapp):
    grey16 = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    heard = []
    data = imaging.qimage_to_png(qimage(grey16, Fmt.Format_Grayscale16), heard.append)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), grey16) and heard == [1.0]
    with pytest.raises(ValueError):
        imaging.qimage_to_png(QtGui.QImage())


def test_a_raising_progress_stops_the_encoding(qapp):
    img = QtGui.QImage(8, 600, Fmt.Format_Grayscale8)
    img.fill(0)
    heard = []

    def stop(fraction):
        heard.append(fraction)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        imaging.qimage_to_png(img, stop)
    assert len(heard) == 1
