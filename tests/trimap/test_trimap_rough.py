"""Rough input (trimap.rough): a lasso or rectangle is a region around the subject."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

pytest.importorskip("cv2")

import trimap  # noqa: E402
from trimap import simulate  # noqa: E402
from trimap.rough import looks_rough, segment  # noqa: E402

H, W = 120, 160


def scene(seed: int = 0):
    """A red disk with a hole (blue-green background seen through it) on that background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    disk = (yy - 60) ** 2 + (xx - 80) ** 2 <= 40 ** 2
    hole = (yy - 60) ** 2 + (xx - 88) ** 2 <= 10 ** 2
    subject = disk & ~hole
    img = np.empty((H, W, 3), np.float32)
    img[:] = (0.15, 0.45, 0.55)
    img[subject] = (0.85, 0.2, 0.15)
    img += rng.normal(0, 0.03, img.shape).astype(np.float32)
    return np.clip(img, 0, 1), subject, hole


def lasso_around(subject: np.ndarray, px: float) -> np.ndarray:
    return ndi.binary_fill_holes(ndi.distance_transform_edt(~subject) <= px)


def test_a_lasso_finds_the_edge_inside_it_and_the_hole():
    img, subject, hole = scene()
    lasso = lasso_around(subject, 15)
    tri, edge = trimap.from_selection(lasso, img, edge="rough")
    assert edge == "rough"
    # The band sits on the subject's edge, not on the lasso line: the lasso's inner
    # ring (background) is background or unknown, never foreground.
    ring = lasso & (ndi.distance_transform_edt(~subject) > 6)
    assert (tri[ring] == 0).mean() > 0.9
    # The interior is certain foreground: 8 px inside the disk's smooth outer edge, and
    # beyond the band's reach around the hole's tight curve, where a segmentation's edge
    # is banded inside too (up to band.ROUGH_INNER_HI band radii).
    reach = trimap.band.ROUGH_INNER_HI * trimap.default_band(subject.shape)
    solid = ndi.binary_erosion(subject, iterations=8) & (ndi.distance_transform_edt(~hole) > reach)
    assert solid.sum() > 1000 and (tri[solid] == 255).mean() > 0.95
    # The background seen through the hole is not certain foreground.
    core_hole = ndi.binary_erosion(hole, iterations=3)
    assert (tri[core_hole] == 255).mean() < 0.05
    assert not (tri[~lasso] > 0).any()  # outside the selection stays background


def test_exact_keeps_the_outline_as_the_edge():
    img, subject, _ = scene()
    lasso = lasso_around(subject, 15)
    tri, edge = trimap.from_selection(lasso, img, edge="exact")
    assert edge == "exact"
    assert (tri == trimap.from_mask(lasso, image=img)).all()
    ring = lasso & (ndi.distance_transform_edt(~subject) > 10)
    assert (tri[ring] != 0).mean() > 0.9  # read as the edge, the lasso never makes that ring background


def test_auto_tells_a_lasso_from_an_accurate_mask():
    img, subject, _ = scene()
    lasso = lasso_around(subject, 15)
    band = trimap.default_band(subject.shape)
    assert looks_rough(lasso.astype(np.float32), segment(img, lasso), band)
    assert not looks_rough(subject.astype(np.float32), segment(img, subject), band)
    assert trimap.from_selection(lasso, img, edge="auto")[1] == "rough"
    assert trimap.from_selection(subject, img, edge="auto")[1] == "exact"


def test_strokes_alone_segment_the_subject():
    img, subject, _ = scene(1)
    fg = trimap.strokes_to_mask((H, W), [[(60, 50), (70, 70)]], radius=3)
    bg = trimap.strokes_to_mask((H, W), [[(5, 5), (30, 5)]], radius=3)
    tri = trimap.from_region(img, None, fg=fg, bg=bg)
    inner = ndi.binary_erosion(subject, iterations=8)
    far = ndi.distance_transform_edt(~subject) > 12
    assert (tri[inner] == 255).mean() > 0.9 and (tri[far] == 0).mean() > 0.95
    assert (tri[fg] == 255).all() and (tri[bg] == 0).all()  # strokes win


def test_rough_input_errors_are_clear():
    img, subject, _ = scene()
    with pytest.raises(ValueError, match="selection is empty"):
        trimap.from_region(img, np.zeros((H, W), bool))
    with pytest.raises(ValueError, match="edge must be one of"):
        trimap.from_selection(subject, img, edge="sloppy")
    with pytest.raises(ValueError, match="must match"):
        trimap.from_selection(subject[:50], img, edge="rough")
    # A selection of everything still gives a trimap (the border stands in for background).
    tri, _ = trimap.from_selection(np.ones((H, W), bool), img, edge="rough")
    assert tri.shape == (H, W) and set(np.unique(tri)) <= {0, 128, 255}


def test_simulated_lasso_and_rectangle_enclose_the_subject():
    alpha = np.zeros((H, W), np.float32)
    alpha[40:80, 50:110] = 1.0
    alpha[60:64, 20:50] = 0.3  # a faint strand to the left
    rng = np.random.default_rng(0)
    lasso = simulate.lasso_from_alpha(alpha, rng)
    rect = simulate.rectangle_from_alpha(alpha, rng)
    visible = alpha > simulate.VISIBLE
    assert lasso[visible].all() and rect[visible].all()
    d = ndi.distance_transform_edt(~visible)
    assert d[lasso].max() <= 32 and lasso.sum() < rect.sum() + 1
    fg, bg = simulate.first_strokes(alpha, rng)
    assert alpha[int(fg[0][1]), int(fg[0][0])] == 1.0 and alpha[int(bg[0][1]), int(bg[0][0])] == 0.0
    matte = np.zeros_like(alpha)
    kind, stroke = simulate.corrective_stroke(alpha, matte, rng)
    assert kind == "fg" and alpha[int(stroke[0][1]), int(stroke[0][0])] == 1.0


def test_noise_is_not_called_rough_and_an_empty_segmentation_warns():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    m = np.zeros((40, 48), np.uint8)
    m[:, :24] = 255
    # Colours that do not separate: auto keeps the outline (a batch mask stays a mask).
    assert trimap.from_selection(m, img, edge="auto")[1] == "exact"
    seg = segment(img.astype(np.float32) / 255, m > 0)
    assert np.isfinite(seg.llr).all()
    with pytest.warns(UserWarning, match="outline is used as the edge"):
        tri = trimap.from_region(img, np.ones((40, 48), bool) & (m > 0),
                                 seg=type(seg)(fg=np.zeros((40, 48), bool), llr=seg.llr))
    assert (tri[:, :20] != 0).all() and (tri[:, 40:] == 0).all()  # the selection, banded


def test_check_finds_a_large_region_no_known_colour_explains():
    from trimap.check import describe_unexplained, unexplained_region

    img, subject, _ = scene()
    tri = trimap.from_mask(subject, band=4)
    assert unexplained_region(img, tri) is None  # an ordinary band: its colours are the sides'
    img[40:80, 60:100] = (0.9, 0.0, 0.8)          # a magenta "flag", all inside unknown
    tri[36:84, 56:104] = 128
    box = unexplained_region(img, tri)
    assert box is not None and box[0] <= 62 and box[2] >= 98 and box[1] <= 42 and box[3] >= 78
    assert "Paint foreground or background" in describe_unexplained(box)


def test_strokes_need_both_kinds_and_unknown_strokes_win():
    img, subject, _ = scene(2)
    fg = trimap.strokes_to_mask((H, W), [[(60, 50), (70, 70)]], radius=3)
    bg = trimap.strokes_to_mask((H, W), [[(5, 5), (30, 5)]], radius=3)
    with pytest.raises(ValueError, match="one foreground and one background stroke"):
        trimap.from_region(img, None, fg=fg)
    unk = np.zeros((H, W), bool)
    unk[55:60, 75:85] = True
    both = np.zeros((H, W), bool)
    both[100:104, 10:14] = True
    tri = trimap.from_region(img, None, fg=fg | both, bg=bg | both, unknown=unk)
    assert (tri[unk] == 128).all() and (tri[both] == 128).all()


def test_the_same_selection_gives_the_same_trimap_whatever_ran_before():
    """GrabCut seeds k-means from OpenCV's global generator: without a fixed seed a call in
    between (here another k-means) changed 121 pixels of this trimap."""
    import cv2

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:H, :W]
    subject = (yy - 60) ** 2 + (xx - 80) ** 2 <= 40 ** 2
    img = np.kron(rng.random((H // 8 + 1, W // 8 + 1, 3)), np.ones((8, 8, 1)))[:H, :W]
    img[subject] = 0.6 * img[subject] + 0.4 * np.array([0.8, 0.3, 0.2])
    img = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1).astype(np.float32)
    lasso = ndi.distance_transform_edt(~subject) <= 15
    first, _ = trimap.from_selection(lasso, img, edge="rough")
    cv2.setRNGSeed(1234)
    cv2.kmeans(rng.random((50, 3)).astype(np.float32), 3, None,
               (cv2.TERM_CRITERIA_MAX_ITER, 5, 0), 2, cv2.KMEANS_RANDOM_CENTERS)
    again, _ = trimap.from_selection(lasso, img, edge="rough")
    assert (first == again).all()


def test_strands_the_cut_drops_join_the_band_and_plain_background_stays():
    """Strands the graph cut left outside the subject, with a colour that is not clearly
    background, join the band; plain background and a far subject-coloured patch do not."""
    from trimap.rough import Segmentation, outer_unknown

    yy, xx = np.mgrid[:H, :W]
    dist = np.hypot(yy - 60, xx - 80)
    disk = dist <= 30
    angle = np.degrees(np.arctan2(yy - 60, xx - 80)) % 30
    strands = (dist > 30) & (dist < 42) & (angle < 3.0)
    far_patch = (np.abs(yy - 10) < 4) & (np.abs(xx - 10) < 4)
    llr = np.full((H, W), 10.0, np.float32)  # background
    llr[disk] = -20.0
    llr[strands | far_patch] = -1.0  # mixed / subject-like colour
    tri = trimap.from_mask(disk, band=3.0, adaptive=False)
    out = outer_unknown(Segmentation(fg=disk, llr=llr), tri, band=3.0)
    assert out[strands & (dist > 36)].mean() > 0.9
    assert not out[far_patch].any()
    assert not out[(llr > 5) & (tri == 0)].any()


def test_a_selection_that_leaves_almost_no_background_warns():
    """A box around a subject that fills the frame leaves the colour models nothing to learn
    the background from: the user is told, and a background stroke answers it."""
    img, subject, _ = scene()
    everything = np.ones((H, W), bool)
    notes: list = []
    trimap.from_region(img, everything, report=notes)
    assert len(notes) == 1 and "100 % of the photo" in notes[0] and "closer" in notes[0]
    with pytest.warns(trimap.RoughInputWarning, match="too little"):
        trimap.from_selection(everything, img, edge="rough")
    bg = np.zeros((H, W), bool)
    bg[2:6, 2:40] = True
    notes.clear()
    trimap.from_region(img, everything, bg=bg, report=notes)
    assert notes == []
    trimap.from_region(img, lasso_around(subject, 15), report=notes)  # background all round
    assert notes == []


def test_box_of_finds_plain_rectangles_only():
    from trimap import box_of

    m = np.zeros((40, 60), np.uint8)
    assert box_of(m) is None                                   # empty
    m[5:30, 10:50] = 255
    assert box_of(m) == (10, 5, 49, 29)
    assert box_of(m.astype(np.float32) / 255) == (10, 5, 49, 29)
    lasso = m.copy()
    lasso[5:9, 10:14] = 0                                      # a corner cut: a lasso
    assert box_of(lasso) is None
    two = m.copy()
    two[35:39, 0:10] = 255                                     # a second part
    assert box_of(two) is None
    assert box_of(np.full((40, 60), 255, np.uint8)) is None    # the whole image: no extent
    tiny = np.zeros((40, 60), np.uint8)
    tiny[3:6, 3:30] = 255                                      # 3 px high: a dab, not a box
    assert box_of(tiny) is None


def scene_with_eye(seed: int = 0):
    """The scene's disk with a black eye as well, and a dark band along the photo's top
    (trees) that teaches the background model black: the cut drops the eye."""
    img, subject, hole = scene(seed)
    yy, xx = np.mgrid[:H, :W]
    eye = (yy - 50) ** 2 + (xx - 62) ** 2 <= 6 ** 2
    img[eye] = 0.03
    img[:12] = 0.04
    return img, subject & ~eye, hole, eye


def test_holes_unlike_the_background_around_the_subject_are_its_own_features():
    from trimap.holes import LocalBackground, feature_holes

    img, subject, hole, eye = scene_with_eye()
    lasso = lasso_around(subject | eye, 15)
    own = feature_holes(LocalBackground(img, subject, lasso, band=4.0))
    assert own[eye].all()           # black, where the background around is blue-green
    assert not own[hole].any()      # the background seen through the disk
    assert not own[~lasso].any()


def test_a_lasso_keeps_the_subjects_dark_eye_and_still_cuts_the_hole():
    from trimap.rough import Segmentation, from_region

    img, subject, hole, eye = scene_with_eye()
    lasso = lasso_around(subject | eye, 15)
    seg = segment(img, lasso)
    # On the dev photos the cut dropped such features (GT07's eyes, whose black the
    # background's trees explain); this small scene's cut keeps the eye, so it is dropped here.
    cut = Segmentation(fg=seg.fg & ~eye, llr=seg.llr)
    core = ndi.binary_erosion(eye, iterations=2)
    tri = from_region(img, lasso, seg=cut)
    assert (tri[core] == 255).all()
    assert (tri[ndi.binary_erosion(hole, iterations=3)] == 255).mean() < 0.05
    # without the rule the eye is banded as a hole: never certain foreground
    import trimap.holes as holes_module
    import trimap.rough as rough_module
    keep = rough_module.feature_holes
    try:
        rough_module.feature_holes = lambda near: np.zeros(near.labels.shape, bool)
        assert (from_region(img, lasso, seg=cut)[core] != 255).all()
    finally:
        rough_module.feature_holes = keep
    assert holes_module.feature_holes is keep


def test_colours_unlike_the_background_next_to_the_subject_are_not_made_unknown():
    from trimap.holes import LocalBackground
    from trimap.rough import Segmentation, colour_unknown

    img, subject, hole, eye = scene_with_eye()
    lasso = lasso_around(subject | eye | hole, 15)
    near = LocalBackground(img, subject | eye | hole, lasso, band=4.0)
    unlike = near.unlike(np.ones(subject.shape, bool))
    assert unlike[ndi.binary_erosion(subject, iterations=2)].all()   # red against blue-green
    assert unlike[eye].all()                                          # black against blue-green
    assert not unlike[ndi.binary_erosion(hole, iterations=2)].any()  # the background itself
    # A subject the photo's colour models call background-like everywhere: the colour rule
    # makes it unknown, unless its colour is unlike the background next to it.
    seg = Segmentation(fg=subject | eye | hole, llr=np.zeros(subject.shape, np.float32))
    assert colour_unknown(seg, 4.0)[ndi.binary_erosion(subject, iterations=8)].all()
    kept = ~colour_unknown(seg, 4.0, near)
    assert kept[ndi.binary_erosion(subject, iterations=8) & ~ndi.binary_dilation(hole, iterations=12)].all()
    assert not kept[hole].any()
