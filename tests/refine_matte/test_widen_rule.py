"""refine_matte.widen_rule: one rule says which refines widen the band, and the docker, the CLI's
--mask and batch --masks all follow it (a change to it reaches every front end)."""
import argparse

import numpy as np
import pytest

from refine_matte import widen_rule


@pytest.mark.parametrize("source,edge,widen", [
    ("scribbles", None, True), ("selection", "rough", True), ("mask", "rough", True),
    ("selection", "exact", False), ("mask", "sam-box", False), ("selection", None, False),
    ("sam", "rough", False), ("trimap", "rough", False)])
def test_only_rough_input_widens(source, edge, widen):
    assert widen_rule.widens(source, edge) is widen


def _photo_and_mask():
    image = np.full((40, 56, 3), (40, 110, 140), np.uint8)
    image[10:30, 12:44] = (220, 60, 40)
    mask = np.zeros((40, 56), np.uint8)
    mask[10:30, 12:44] = 255
    return image, mask


def test_the_cli_and_batch_ask_the_shared_rule(monkeypatch):
    from diffmatte import cli
    from diffmatte.batch import work

    asked = []
    monkeypatch.setattr(widen_rule, "widens", lambda source, edge: asked.append((source, edge)) or True)
    image, mask = _photo_and_mask()
    args = argparse.Namespace(mask="m.png", band=None, mask_edge="exact", quiet=True, save_trimap=None)
    monkeypatch.setattr("diffmatte.io.images.read_image", lambda path: image)
    monkeypatch.setattr("diffmatte.io.images.read_trimap", lambda path: mask)
    assert cli._read_inputs("photo.png", "m.png", args)[2] is True     # an exact mask, widened as told
    res = work.Result("a")
    assert work._trimap_from(mask, image, work.Settings(mask_edge="exact"), res)[1] is True
    assert asked == [("mask", "exact"), ("mask", "exact")]
