"""diffmatte.finish.edges: shift edge, feather, contrast, smooth on a matte."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from diffmatte.finish.edges import EdgeParams, apply_edges


def disc(size=64, r=18.0, soft=0.0):
    yy, xx = np.mgrid[0:size, 0:size]
    d = np.hypot(yy - size / 2, xx - size / 2) - r
    if soft:
        return np.clip(0.5 - d / soft, 0, 1).astype(np.float32)
    return (d <= 0).astype(np.float32)


def test_identity_and_input_types():
    a = disc(soft=4)
    assert np.array_equal(apply_edges(a, None), a)
    assert np.array_equal(apply_edges(a, EdgeParams()), a)
    u16 = np.round(a * 65535).astype(np.uint16)
    assert np.abs(apply_edges(u16, {}) - a).max() < 1e-4
    a_before = a.copy()
    apply_edges(a, {"feather": 3})
    assert np.array_equal(a, a_before)  # the input is not modified


def test_shift_moves_the_edge_by_about_that_many_pixels():
    a = disc(r=18)
    out5 = apply_edges(a, {"shift": 5})
    in5 = apply_edges(a, {"shift": -5})
    # area of a disc of radius r +- 5, within the octagon approximation
    assert abs(np.sqrt(out5.sum() / np.pi) - 23) < 1.0
    assert abs(np.sqrt(in5.sum() / np.pi) - 13) < 1.0
    half = apply_edges(a, {"shift": 0.5})
    assert a.sum() < half.sum() < apply_edges(a, {"shift": 1}).sum()


def test_feather_softens_and_contrast_hardens():
    a = disc()
    f = apply_edges(a, {"feather": 6})
    soft = lambda x: int(((x > 0.02) & (x < 0.98)).sum())  # noqa: E731
    assert soft(f) > 3 * max(soft(a), 1)
    s = disc(soft=10)
    c50 = apply_edges(s, {"contrast": 50})
    c100 = apply_edges(s, {"contrast": 100})
    assert soft(c50) < soft(s) and soft(c100) == 0
    assert set(np.unique(c100)) <= {0.0, 1.0}


def test_smooth_rounds_jagged_contours_without_widening():
    rng = np.random.default_rng(0)
    a = disc(r=20)
    jag = np.clip(a + (ndi.binary_dilation(a > 0) & ~(a > 0) & (rng.random(a.shape) < 0.5)), 0, 1)
    jag = jag.astype(np.float32)
    out = apply_edges(jag, {"smooth": 4})
    # a contour's jaggedness: pixels of the thresholded matte that differ from the true disc
    err_before = np.abs((jag > 0.5) ^ (disc(r=20.5) > 0.5)).sum()
    err_after = np.abs((out > 0.5) ^ (disc(r=20.5) > 0.5)).sum()
    assert err_after < err_before
    soft = lambda x: int(((x > 0.02) & (x < 0.98)).sum())  # noqa: E731
    assert soft(out) < soft(apply_edges(jag, {"feather": 4}))


@pytest.mark.parametrize("bad", [{"shift": 99}, {"feather": -1}, {"contrast": 101}, {"smooth": float("nan")},
                                 {"radius": 3}])
def test_bad_values_name_the_control(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        EdgeParams.from_dict(bad)


def test_params_round_trip():
    p = EdgeParams(shift=-2, feather=1.5, contrast=20, smooth=3)
    assert EdgeParams.from_dict(p.to_dict()) == p
