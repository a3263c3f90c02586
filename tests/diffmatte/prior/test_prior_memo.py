"""Incremental prior re-runs (diffmatte/prior/memo.py, information_flow_tiles.update_alpha)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import diffmatte.prior.information_flow as ifm
import diffmatte.prior.windows as ift
from diffmatte.prior.memo import PriorMemo
from diffmatte.prior.solve import information_flow_alpha


def _disc(n: int = 200, band: int = 6):
    """(image float32, trimap {0, 0.5, 1} float32): a soft-edged disc on a textured ground."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:n, 0:n]
    d = np.hypot(yy - n / 2, xx - n / 2) - n / 4
    alpha = np.clip(0.5 - d / 4, 0, 1)[..., None]
    fg = np.array([0.85, 0.4, 0.3]) + 0.05 * np.sin(xx / 7)[..., None]
    bg = np.array([0.2, 0.5, 0.8]) + 0.05 * np.cos(yy / 5)[..., None]
    img = (alpha * fg + (1 - alpha) * bg + rng.normal(0, 0.01, (n, n, 3))).clip(0, 1).astype(np.float32)
    tri = np.where(np.abs(d) <= band, 0.5, np.where(d < 0, 1.0, 0.0)).astype(np.float32)
    return img, tri


@pytest.fixture
def small_reach(monkeypatch):
    monkeypatch.setattr(ift, "UPDATE_REACH", 16)
    monkeypatch.setattr(ift, "UPDATE_MARGIN", 16)


def _dab(tri: np.ndarray, value: float = 1.0) -> np.ndarray:
    out = tri.copy()
    ys, xs = np.nonzero(tri == 0.5)
    top = ys.argmin()                      # the band's top, far from the image's other parts
    y, x = ys[top] + 6, xs[top]
    out[y - 3:y + 3, x - 3:x + 3] = value
    return out


def test_same_image_and_trimap_reuse_the_last_prior():
    img, tri = _disc(96, 4)
    memo = PriorMemo()
    a = memo.solve("ifm", img, tri)
    assert memo.last.how == "solved"
    a[:] = 0.5                              # the caller's copy: the memo keeps its own
    b = memo.solve("ifm", img, tri)
    assert memo.last.how == "reused"
    np.testing.assert_array_equal(b, information_flow_alpha(img, tri))


def test_a_local_edit_is_solved_again_only_around_it(monkeypatch, small_reach):
    img, tri = _disc()
    memo = PriorMemo()
    before = memo.solve("ifm", img, tri)
    tri2 = _dab(tri)
    shapes = []
    real = ifm._solve
    monkeypatch.setattr(ifm, "_solve", lambda im, lab, check=None, **kw: shapes.append(lab.shape) or real(im, lab, check, **kw))
    after = memo.solve("ifm", img, tri2)
    assert memo.last.how == "updated" and shapes == [(6 + 2 * 32, 6 + 2 * 32)]
    y0, y1, x0, x1 = memo.last.edit
    far = np.ones(tri.shape, bool)
    far[max(0, y0 - 48):y1 + 48, max(0, x0 - 48):x1 + 48] = False
    np.testing.assert_array_equal(after[far], before[far])   # untouched away from the edit
    scratch = information_flow_alpha(img, tri2)
    unknown = tri2 == 0.5
    # close to a from-scratch solve (the edit's far, non-local influence is not followed),
    # and much closer than the prior before the edit
    err = np.abs(after - scratch)[unknown].mean()
    assert err < 4e-3 and err < 0.5 * np.abs(before - scratch)[unknown].mean()
    assert (after[tri2 == 1] == 1).all() and (after[tri2 == 0] == 0).all()


def test_another_image_a_large_edit_or_a_disabled_memo_solve_from_scratch(small_reach):
    img, tri = _disc(120, 4)
    memo = PriorMemo()
    memo.solve("ifm", img, tri)
    memo.solve("ifm", img[::-1].copy(), tri)
    assert memo.last.how == "solved"
    wide = tri.copy()
    wide[: 60][wide[: 60] == 0] = 0.5       # half the image changes: not a local edit
    memo.solve("ifm", img[::-1].copy(), wide)
    assert memo.last.how == "solved"
    memo.enabled = False
    memo.solve("ifm", img[::-1].copy(), wide)
    assert memo.last.how == "solved"


def test_a_cancelled_update_keeps_the_last_prior(small_reach):
    img, tri = _disc()
    memo = PriorMemo()
    before = memo.solve("ifm", img, tri)

    def stop(fraction: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        memo.solve("ifm", img, _dab(tri), check=stop)
    np.testing.assert_array_equal(memo.solve("ifm", img, tri), before)
    assert memo.last.how == "reused"


def test_refine_after_a_brush_stroke_uses_the_memo(small_reach):
    from diffmatte.engine import Engine
    from diffmatte.modeling import build_model
    from diffmatte.modeling.variants import get_config

    img, tri = _disc()
    model = build_model(get_config("lite_ifm")).eval()
    for p in list(model.fusion.out.parameters()) + list(model.decoder.matting_head.matting_convs[3].parameters()):
        torch.nn.init.zeros_(p)
    engine = Engine(model, torch.device("cpu"), "test")
    engine.refine(img, tri, steps=2)
    out = engine.refine(img, _dab(tri), steps=2)
    assert engine.prior_memo.last.how == "updated"
    engine.prior_memo.clear()
    fresh = engine.refine(img, _dab(tri), steps=2)
    assert engine.prior_memo.last.how == "solved"
    assert np.abs(out - fresh)[_dab(tri) == 0.5].mean() < 4e-3


def test_a_widened_refine_keeps_both_passes_so_the_next_stroke_is_local(small_reach):
    """A widened refine solves a trimap and then a wider one; the refine after the next
    brush stroke starts from the first again. It must be updated from the kept first
    solve, not solved from scratch against the wider one."""
    img, tri = _disc()
    wide = tri.copy()
    ring = (tri == 1) & (np.roll(tri, 12, axis=0) != 1)   # the band grown inwards on one side
    wide[ring] = 0.5
    memo = PriorMemo()
    memo.solve("ifm", img, tri)
    memo.solve("ifm", img, wide)
    assert memo.last.how == "solved"                      # too large an edit: from scratch
    after = memo.solve("ifm", img, _dab(tri))
    assert memo.last.how == "updated"
    np.testing.assert_allclose(after, memo.solve("ifm", img, _dab(tri)))   # now kept too: reused
    assert memo.last.how == "reused"
    single = PriorMemo(entries=1)
    single.solve("ifm", img, tri)
    single.solve("ifm", img, wide)
    single.solve("ifm", img, _dab(tri))
    assert single.last.how == "solved"
