"""Progress of a trimap computation (trimap.progress, issue #23): the stages report shares of
the work, a listener hears them rising, a listener that raises stops the computation, and
nobody listening changes nothing."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

import trimap  # noqa: E402
from trimap.progress import part, report, reporting  # noqa: E402

from test_trimap_rough import lasso_around, scene  # noqa: E402


def test_parts_map_their_own_fractions_into_the_whole_and_never_go_back():
    heard = []
    with reporting(heard.append):
        report(0.1)
        with part(0.2, 0.6):
            report(0.5)          # half of 0.2..0.6
            with part(0.5, 1.0):
                report(0.0)      # 0.4: not above what was heard
                report(1.0)      # 0.6
        report(0.3)              # below: not passed on
        report(1.0)
    assert heard == pytest.approx([0.1, 0.4, 0.6, 1.0])


def test_without_a_listener_reports_are_silent():
    report(0.5)
    with part(0.0, 0.5):
        report(1.0)


@pytest.mark.parametrize("edge", ["rough", "exact"])
def test_a_selection_trimap_reports_rising_fractions_and_the_same_trimap(edge):
    img, subject, _ = scene()
    lasso = lasso_around(subject, 15)
    quiet, _ = trimap.from_selection(lasso, img, edge=edge)
    heard = []
    with reporting(heard.append):
        tri, _ = trimap.from_selection(lasso, img, edge=edge)
    assert np.array_equal(tri, quiet)
    assert len(heard) >= 6 and heard == sorted(heard) and len(set(heard)) == len(heard)
    assert 0.0 < heard[0] < 0.2 and heard[-1] >= 0.95
    gaps = np.diff([0.0] + heard)
    assert gaps.max() < 0.35  # no part of the work goes unreported


def test_strokes_report_too():
    img, subject, _ = scene()
    fg = np.zeros(subject.shape, bool)
    fg[55:65, 60:70] = True
    bg = np.zeros(subject.shape, bool)
    bg[:5, :] = True
    heard = []
    with reporting(heard.append):
        trimap.from_region(img, None, fg=fg, bg=bg)
    assert len(heard) >= 6 and heard == sorted(heard) and heard[-1] >= 0.95


def test_a_listener_that_raises_stops_the_computation():
    img, subject, _ = scene()

    class Stop(Exception):
        pass

    def stop_late(fraction):
        if fraction > 0.5:
            raise Stop()

    with pytest.raises(Stop), reporting(stop_late):
        trimap.from_selection(lasso_around(subject, 15), img, edge="rough")


def test_smooth_upsamples_in_bands_exactly_as_in_one_call(monkeypatch):
    """smooth() reports after each band of rows; the bands change no pixel."""
    from trimap import _smooth

    rng = np.random.default_rng(1)
    arr = rng.random((203, 150)).astype(np.float32)
    whole = _smooth.smooth(arr, 40.0)
    monkeypatch.setattr(_smooth, "UPSAMPLE_ROWS", 17)
    heard = []
    with reporting(heard.append):
        banded = _smooth.smooth(arr, 40.0)
    assert np.array_equal(banded, whole) and banded.dtype == np.float32
    assert len(heard) == 2 + 12 and heard[-1] == 1.0   # sums, coordinates, 12 bands of 17 rows


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255.0), (np.uint16, 65535.0)])
def test_an_image_is_converted_in_reported_bands_to_the_same_numbers(monkeypatch, dtype, top):
    from trimap import _validate

    monkeypatch.setattr(_validate, "BAND_ROWS", 7)
    arr = np.random.default_rng(0).integers(0, int(top) + 1, (30, 11, 4)).astype(dtype)
    heard = []
    out = _validate.as_image(arr, check=heard.append)
    assert out.dtype == np.float32 and np.array_equal(out, arr[:, :, :3].astype(np.float32) / top)
    assert heard == [7 / 30, 14 / 30, 21 / 30, 28 / 30, 1.0]
    assert np.array_equal(_validate.as_image(arr), out)
