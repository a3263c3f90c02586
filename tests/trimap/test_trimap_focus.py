"""The focus fallback (trimap.focus): a selection that leaves no background outside it learns
the background from the photo's out-of-focus part."""
from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

import trimap.rough as rough  # noqa: E402
from trimap import focus  # noqa: E402
from trimap.rough import segment  # noqa: E402

H, W = 240, 320


def sharp_subject_on_a_blurred_backdrop(seed: int = 0):
    """A textured (sharp) subject touching the bottom border, in front of a defocused
    sky-to-grass backdrop: the photo's outermost pixels are sky and grass both, and the
    grass inside looks like nothing on the border's sky."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    t = (yy / H)[..., None]
    backdrop = (1 - t) * np.array([0.55, 0.7, 0.9]) + t * np.array([0.25, 0.55, 0.2])
    backdrop = backdrop + cv2.GaussianBlur(rng.normal(0, 0.25, (H, W, 3)).astype(np.float32), (0, 0), 6)
    subject = ((yy - 150) / 110.0) ** 2 + ((xx - 160) / 80.0) ** 2 < 1
    texture = np.array([0.85, 0.75, 0.6]) + rng.normal(0, 0.08, (H, W, 3))
    img = np.where(subject[..., None], texture, backdrop)
    return np.clip(img, 0, 1).astype(np.float32), subject


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def bgr8(img: np.ndarray) -> np.ndarray:
    return np.round(img[:, :, ::-1] * 255).astype(np.uint8)


def test_the_focus_map_is_high_where_the_photo_is_sharp():
    img, subject = sharp_subject_on_a_blurred_backdrop()
    level = focus.focus_map(bgr8(img))
    assert level.shape == subject.shape and level.dtype == np.float32
    inner = subject & (cv2.erode(subject.astype(np.uint8), np.ones((15, 15))) > 0)
    assert np.median(level[inner]) > np.median(level[~subject]) + 1.0


def test_blurred_splits_the_backdrop_from_the_subject_at_any_grid_size(monkeypatch):
    img, subject = sharp_subject_on_a_blurred_backdrop()
    soft = focus.blurred(bgr8(img), np.ones((H, W), bool))
    assert iou(~soft, subject) > 0.85
    # the segmentation's grid is smaller than the photo: the map is read at the photo's scale
    small = focus.blurred(bgr8(img), np.ones((H // 2, W // 2), bool))
    half = cv2.resize(subject.astype(np.uint8), (W // 2, H // 2), interpolation=cv2.INTER_NEAREST) > 0
    assert iou(~small, half) > 0.85
    # a photo above MAX_FOCUS_PIXELS is read on a smaller copy
    monkeypatch.setattr(focus, "MAX_FOCUS_PIXELS", H * W // 4)
    assert iou(~focus.blurred(bgr8(img), np.ones((H, W), bool)), subject) > 0.85
    # only pixels of ``where`` are ever called blurred
    where = np.zeros((H, W), bool)
    where[:, : W // 2] = True
    assert not focus.blurred(bgr8(img), where)[:, W // 2:].any()


def test_a_flat_photo_or_an_empty_region_has_nothing_blurred():
    flat = np.full((H, W, 3), 120, np.uint8)
    assert not focus.blurred(flat, np.ones((H, W), bool)).any()
    img, _ = sharp_subject_on_a_blurred_backdrop()
    assert not focus.blurred(bgr8(img), np.zeros((H, W), bool)).any()


def test_a_box_that_leaves_no_background_finds_the_sharp_subject(monkeypatch):
    """The selection covers the whole photo: the colour models alone keep most of the
    backdrop (the border's sky says nothing about the grass); starting from the focus map
    finds the subject. A background stroke, or room outside the box, keeps the colour path."""
    img, subject = sharp_subject_on_a_blurred_backdrop()
    everything = np.ones((H, W), bool)
    assert iou(segment(img, everything).fg, subject) > 0.95
    with monkeypatch.context() as m:
        m.setattr(rough, "MIN_OUTSIDE_SHARE", 0.0)   # the fallback off: the plain colour path
        assert iou(segment(img, everything).fg, subject) < 0.6

    called = []
    monkeypatch.setattr(rough, "background_start", lambda *a: called.append(1) or np.zeros(a[1].shape, bool))
    bg = np.zeros((H, W), bool)
    bg[2:6, 2:40] = True
    segment(img, everything, bg=bg)
    roomy = np.zeros((H, W), bool)
    roomy[20:, 30:290] = True     # 25 % of the photo outside
    segment(img, roomy)
    assert called == []
    segment(img, everything)
    assert called == [1]


def test_a_smooth_patch_the_sharp_subject_encloses_is_not_background():
    """A backdrop runs off the frame; a smooth patch inside the subject (a face inside hair)
    is out of focus by the measure but enclosed by sharp detail: it does not start as
    background, and the segmentation keeps it."""
    img, subject = sharp_subject_on_a_blurred_backdrop()
    yy, xx = np.mgrid[:H, :W]
    face = ((yy - 150) / 45.0) ** 2 + ((xx - 160) / 35.0) ** 2 < 1
    img[face] = (0.85, 0.75, 0.6)          # the subject's colour, without its texture
    everything = np.ones((H, W), bool)
    soft = focus.blurred(bgr8(img), everything)
    start = focus.background_start(bgr8(img), everything)
    assert soft[face].mean() > 0.5 and not start[face].any()   # the face is soft, not background
    assert start[~subject].mean() > 0.9
    assert segment(img, everything).fg[face].mean() > 0.95


def test_auto_reads_a_mask_of_the_whole_image_as_rough():
    """Select All has no outline to be exact about: its exact reading would be an
    all-foreground matte, so ``edge="auto"`` reads it as rough, and the backdrop is found."""
    import trimap

    img, subject = sharp_subject_on_a_blurred_backdrop()
    notes: list = []
    tri, edge = trimap.from_selection(np.ones((H, W), bool), img, edge="auto", report=notes)
    assert edge == "rough" and notes and "out-of-focus" in notes[0]
    assert (tri[~subject] == trimap.BG).mean() > 0.8 and (tri[subject] != trimap.BG).mean() > 0.95
    tri, edge = trimap.from_selection(np.ones((H, W), bool), img, edge="exact")
    assert edge == "exact" and (tri == trimap.FG).all()
