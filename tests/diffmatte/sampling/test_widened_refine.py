"""diffmatte.sampling.passes: the widened refine grows the band by the band the trimap was made
with (the user's band option) when the caller knows it, else by the image's default band."""
import numpy as np
import pytest

from diffmatte.errors import InputError
from diffmatte.sampling.passes import refine_widened
from trimap import default_band


def _trimap(size: int = 160) -> np.ndarray:
    """A foreground square in a band ring (0 / 0.5 / 1, as Engine.refine's float trimap)."""
    tri = np.zeros((size, size), np.float32)
    tri[30:130, 30:130] = 0.5
    tri[40:120, 40:120] = 1.0
    return tri


def _second_trimap(band) -> np.ndarray:
    """The trimap of the second solve when the first matte is partial all over the band (the
    band cut through the edge on both sides)."""
    solved = []

    def solve(tri, callback, progress):
        solved.append(tri.copy())
        return np.where(tri == 1, 1.0, np.where(tri == 0.5, 0.5, 0.0)).astype(np.float32)

    refine_widened(solve, _trimap(), band, 1, None, None, None)
    assert len(solved) == 2
    return solved[1]


def _opened_depth(tri: np.ndarray) -> int:
    """How many rows of the foreground, down from its top edge (row 40), the widening opened."""
    return int((tri[40:80, 80] == 0.5).sum())


@pytest.mark.parametrize("band", [3, 7, 12])
def test_the_band_grows_by_the_band_the_trimap_was_made_with(band):
    assert _opened_depth(_second_trimap(float(band))) == band


def test_without_a_band_it_grows_by_the_images_default_band():
    radius = default_band((160, 160))
    assert _opened_depth(_second_trimap(None)) == int(np.floor(radius))


@pytest.mark.parametrize("band", [-1.0, float("nan"), 1e9])
def test_a_band_that_is_no_number_of_pixels_is_refused(band):
    # the trimap's rule (trimap.check_band): finite, >= 0, at most trimap.MAX_BAND
    with pytest.raises(InputError, match="band"):
        _second_trimap(band)


def test_engine_refine_passes_the_band_on(tiny_engine, monkeypatch):
    """Engine.refine(widen_band=True, band=...) widens by that band; without it by the default."""
    import diffmatte.engine as engine_mod

    seen = []

    def spy(solve, tri, band, *rest):
        seen.append(band)
        return solve(tri, None, None)

    monkeypatch.setattr(engine_mod, "refine_widened", spy)
    image = np.full((48, 64, 3), 0.5, np.float32)
    tri = _trimap(48 * 2)[:48, :64]
    tiny_engine.refine(image, tri, steps=1, seed=0, widen_band=True, band=5)
    tiny_engine.refine(image, tri, steps=1, seed=0, widen_band=True)
    tiny_engine.refine(image, tri, steps=1, seed=0, band=5)   # no widening: the band is not used
    assert seen == [5, None]
