"""Issue #25, finding 2: the priors on every degenerate band (flat colour, no colour
variance, one-pixel bands, a band touching the border, tiny images, one known side only).

A 64 x 64 white image with a 4-px unknown ring crashed information flow with numpy's
"zero-size array to reduction operation maximum which has no identity": known-region
expansion labels every unknown pixel of a flat band, and the solve then ran on nothing.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from diffmatte.prior.solve import information_flow_alpha


def _ring(h: int, w: int, width: int, box=None) -> np.ndarray:
    """A {0, 0.5, 1} trimap: a foreground box with an unknown ring ``width`` px wide."""
    tri = np.zeros((h, w), np.float32)
    y0, y1, x0, x1 = box or (h // 4, 3 * h // 4, w // 4, 3 * w // 4)
    tri[y0:y1, x0:x1] = 1
    fg = tri == 1
    inner = ndi.binary_erosion(fg, iterations=width // 2) if width // 2 else fg
    outer = ndi.binary_dilation(fg, iterations=width - width // 2)
    tri[outer & ~inner] = 0.5
    return tri


def _flat(h: int, w: int, value=(1.0, 1.0, 1.0)) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.float32), (h, w, 3)).copy()


def _cases():
    rng = np.random.default_rng(0)
    yield "white 64x64, 4-px ring (the report)", _flat(64, 64), _ring(64, 64, 4)
    for width in (1, 2, 3, 8, 20):
        yield f"white, {width}-px ring", _flat(64, 64), _ring(64, 64, width)
    yield "black, 4-px ring", _flat(64, 64, (0, 0, 0)), _ring(64, 64, 4)
    yield "grey (no colour variance), 2-px ring", _flat(48, 40, (0.5, 0.5, 0.5)), _ring(48, 40, 2)
    two = _flat(64, 64, (0.9, 0.1, 0.1))
    two[:, 32:] = (0.9, 0.1, 0.1)   # same colour both sides: nothing separates fg from bg
    yield "one colour either side of a line", two, np.where(np.arange(64)[None, :] < 31, 0.0,
                                                              np.where(np.arange(64)[None, :] > 32, 1.0, 0.5)
                                                              ).repeat(64, 0).astype(np.float32)
    one = np.zeros((32, 32), np.float32)
    one[:, 16:] = 1
    one[10, 16] = 0.5
    yield "one unknown pixel, flat", _flat(32, 32), one
    yield "one unknown pixel, noise", rng.random((32, 32, 3)).astype(np.float32), one
    line = np.zeros((32, 32), np.float32)
    line[:, 17:] = 1
    line[:, 16] = 0.5
    yield "one-pixel-wide band, flat", _flat(32, 32), line
    yield "one-pixel-wide band, noise", rng.random((32, 32, 3)).astype(np.float32), line
    border = np.full((40, 40), 0.5, np.float32)
    border[8:32, 8:32] = 1
    border[:, -1] = 0
    yield "band touching every border, flat", _flat(40, 40), border
    edge = np.zeros((40, 40), np.float32)
    edge[:, 20:] = 1
    edge[:4] = 0.5       # the band is the top rows, across fg and bg
    yield "band along the top border, flat", _flat(40, 40), edge
    yield "band along the top border, noise", rng.random((40, 40, 3)).astype(np.float32), edge
    fg_only = np.full((24, 24), 0.5, np.float32)
    fg_only[:, -2:] = 1
    yield "only foreground known, flat", _flat(24, 24), fg_only
    bg_only = np.full((24, 24), 0.5, np.float32)
    bg_only[:2] = 0
    yield "only background known, flat", _flat(24, 24), bg_only
    for h, w in ((1, 1), (1, 2), (2, 1), (1, 9), (9, 1), (2, 2), (3, 3)):
        tiny = np.full((h, w), 0.5, np.float32)
        tiny.ravel()[0] = 1
        if tiny.size > 1:
            tiny.ravel()[-1] = 0
        yield f"{h}x{w} image, flat", _flat(h, w), tiny
        yield f"{h}x{w} image, noise", rng.random((h, w, 3)).astype(np.float32), tiny


CASES = list(_cases())


def _check(alpha: np.ndarray, tri: np.ndarray) -> None:
    assert alpha.shape == tri.shape and alpha.dtype == np.float32
    assert np.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1
    assert (alpha[tri == 1] == 1).all() and (alpha[tri == 0] == 0).all()


@pytest.mark.parametrize("name,image,tri", CASES, ids=[c[0] for c in CASES])
def test_information_flow_survives_degenerate_bands(name, image, tri):
    _check(information_flow_alpha(image, tri), tri)


@pytest.mark.parametrize("name,image,tri", CASES[:8], ids=[c[0] for c in CASES[:8]])
def test_information_flow_windows_survive_degenerate_bands(name, image, tri):
    _check(information_flow_alpha(image, tri, tile=32), tri)


def test_flat_band_takes_the_label_of_its_own_colour():
    """A white subject on white: the band is all one colour, so expansion labels it; every
    band pixel then comes out 0 or 1, and no solve runs on an empty system."""
    tri = _ring(64, 64, 4)
    alpha = information_flow_alpha(_flat(64, 64), tri)
    assert set(np.unique(alpha[tri == 0.5])) <= {0.0, 1.0}


@pytest.mark.parametrize("name,image,tri", CASES, ids=[c[0] for c in CASES])
def test_closed_form_survives_degenerate_bands(name, image, tri):
    torch = pytest.importorskip("torch")
    from diffmatte.prior.closed_form import closed_form_prior

    out = closed_form_prior(torch.from_numpy(image).permute(2, 0, 1)[None].float(),
                            torch.from_numpy(tri)[None, None].float())
    _check(out[0, 0].numpy(), tri)


def test_engine_refines_a_flat_band(tmp_path):
    """The whole path of ``diffmatte refine`` on the report's image (default-model prior)."""
    pytest.importorskip("torch")
    from diffmatte.prior.solve import solve_prior
    import torch

    tri = _ring(64, 64, 4)
    out = solve_prior("ifm", torch.ones(1, 3, 64, 64), torch.from_numpy(tri)[None, None])
    _check(out[0, 0].numpy(), tri)
