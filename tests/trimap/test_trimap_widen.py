"""trimap.widen: the band grows only where the first matte shows it cut through partial alpha."""
import numpy as np

from trimap.widen import widen_cut_band


def _bands(h=80, w=80):
    """Foreground left, background right, a band in columns 30..49."""
    fg = np.zeros((h, w), bool)
    bg = np.zeros((h, w), bool)
    fg[:, :30] = True
    bg[:, 50:] = True
    return fg, bg


def test_a_clean_matte_leaves_the_trimap_alone():
    fg, bg = _bands()
    alpha = np.where(fg, 1.0, 0.0).astype(np.float32)
    alpha[:, 30:40] = 1.0  # the edge is inside the band, both boundaries are clean
    assert not widen_cut_band(fg, bg, alpha, band=10).any()


def test_partial_alpha_at_the_inner_boundary_opens_the_foreground_there_only():
    fg, bg = _bands()
    alpha = np.where(fg, 1.0, 0.0).astype(np.float32)
    alpha[:, 30:40] = 1.0
    alpha[10:20, 30:33] = 0.7  # hair tips: the partial alpha runs into what the trimap calls foreground
    grow = widen_cut_band(fg, bg, alpha, band=8)
    assert grow[15, 25] and grow[15, 29]       # foreground next to the cut becomes unknown
    assert not grow[60, 25]                     # far along the edge nothing changes
    assert not grow[15, 5]                      # no further than about one band radius
    assert not (grow & bg).any()


def test_strands_past_the_outer_boundary_open_the_background_there_only():
    fg, bg = _bands()
    alpha = np.where(fg, 1.0, 0.0).astype(np.float32)
    alpha[:, 30:40] = 1.0
    alpha[40:44, 40:50] = 0.3  # a strand reaching the band's outer boundary
    grow = widen_cut_band(fg, bg, alpha, band=8)
    assert grow[42, 52] and not grow[5, 52]
    assert not (grow & fg).any()


def test_no_band_no_change():
    fg = np.ones((20, 20), bool)
    bg = np.zeros((20, 20), bool)
    assert not widen_cut_band(fg, bg, np.ones((20, 20), np.float32), band=5).any()


def test_a_painted_stroke_inside_the_band_is_never_reopened():
    """A known island (a corrective stroke painted in the band) stays as painted, even ringed
    by partial alpha; the foreground next to the same cut still opens."""
    fg, bg = _bands()
    fg[60:64, 34:46] = True   # a 4 px foreground stroke painted inside the band
    alpha = np.where(fg, 1.0, 0.0).astype(np.float32)
    alpha[:, 30:50] = 0.6     # haze over the whole band, around the stroke too
    alpha[fg] = 1.0
    grow = widen_cut_band(fg, bg, alpha, band=8)
    assert not grow[60:64, 34:46].any()
    assert grow[62, 27]
