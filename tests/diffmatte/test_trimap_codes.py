"""The engine's one trimap binning rule (diffmatte.trimap_codes) and the user-facing one
(trimap._validate.as_trimap; trimap may not import diffmatte) agree, and the rule reads
numpy arrays and torch tensors alike."""
import numpy as np
import torch

from diffmatte import trimap_codes as tc
from trimap._validate import BG, FG, UNKNOWN, as_trimap

GREYS = np.arange(256, dtype=np.uint8)


def _user_codes(t) -> np.ndarray:
    snapped = as_trimap(t)
    return np.select([snapped == BG, snapped == UNKNOWN, snapped == FG], [tc.BACKGROUND, tc.UNKNOWN, tc.FOREGROUND], -1)


def test_both_rules_agree_on_every_grey_level():
    user = _user_codes(GREYS[None])[0]
    assert set(user.tolist()) == {tc.BACKGROUND, tc.UNKNOWN, tc.FOREGROUND}
    unit = (GREYS.astype(np.float32) / 255.0)
    for engine in (tc.codes(GREYS, scale=255.0), tc.codes(unit),
                   tc.codes(torch.from_numpy(unit)).numpy(), tc.codes(torch.from_numpy(GREYS), scale=255.0).numpy()):
        assert engine.dtype == np.uint8
        np.testing.assert_array_equal(engine, user)
    assert int(np.argmax(user > tc.BACKGROUND)) == 64 and int(np.argmax(user == tc.FOREGROUND)) == 192


def test_quarters_and_engine_values():
    t = np.array([0.0, 0.2499, 0.25, 0.5, 0.75, 0.7501, 1.0], np.float32)
    expect = [0, 0, 1, 1, 1, 2, 2]       # both quarters themselves are unknown, as in as_trimap
    np.testing.assert_array_equal(tc.codes(t), expect)
    np.testing.assert_array_equal(_user_codes(t[None])[0], expect)
    tt = torch.from_numpy(t)
    np.testing.assert_array_equal(tc.unknown(tt).numpy(), tc.unknown(t))
    np.testing.assert_array_equal(tc.foreground(tt).numpy(), t > 0.75)
    np.testing.assert_array_equal(tc.background(tt).numpy(), t < 0.25)
