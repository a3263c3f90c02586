"""trimap.selection: a rough rectangle goes to SAM's box prompt when SAM is installed, anything
else (and a rectangle without SAM) to the colour models: one reading for the service, the CLI
and batch."""
import numpy as np

import trimap
from trimap import selection


def _photo():
    image = np.full((40, 56, 3), (40, 110, 140), np.uint8)
    image[10:30, 12:44] = (220, 60, 40)
    return image


def _rectangle():
    mask = np.zeros((40, 56), np.uint8)
    mask[3:37, 5:51] = 255
    return mask


def _sam_box(boxes):
    def run(box):
        boxes.append(box)
        return np.full((40, 56), 128, np.uint8)
    return run


def test_a_rough_rectangle_is_read_by_the_box_prompt():
    boxes = []
    for edge in ("rough", "auto"):
        tri, used = trimap.read_selection(_rectangle(), _photo(), band=2, edge=edge, sam_box=_sam_box(boxes))
        assert used == "sam-box" and (tri == 128).all()
    assert boxes == [(5, 3, 50, 36)] * 2


def test_a_lasso_an_exact_edge_and_a_missing_sam_go_to_the_colour_models():
    boxes = []
    lasso = _rectangle()
    lasso[3:8, 5:10] = 0                                  # a corner cut off: not a rectangle
    assert trimap.read_selection(lasso, _photo(), band=2, edge="rough", sam_box=_sam_box(boxes))[1] == "rough"
    assert trimap.read_selection(_rectangle(), _photo(), band=2, edge="exact", sam_box=_sam_box(boxes))[1] == "exact"
    assert boxes == []
    no_sam = trimap.read_selection(_rectangle(), _photo(), band=2, edge="rough", sam_box=lambda box: None)
    colour = trimap.from_selection(_rectangle(), _photo(), band=2, edge="rough")
    assert no_sam[1] == "rough" and np.array_equal(no_sam[0], colour[0])


def test_the_installed_sam_is_found_once_per_process(tmp_path, monkeypatch):
    """installed_prompter: the checkpoint where find_checkpoint looks, built once; None without one."""
    monkeypatch.setattr(selection, "_INSTALLED", {})
    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("REFINE_MATTE_SAM_CHECKPOINT", raising=False)
    built = []
    monkeypatch.setattr(selection, "SamPrompter", lambda path, device: built.append((path, device)) or "sam")
    assert selection.installed_prompter("cpu") is None and built == []   # nothing installed: torch untouched
    monkeypatch.setattr(selection, "_INSTALLED", {})
    (tmp_path / "sam").mkdir()
    (tmp_path / "sam" / "sam_vit_b_01ec64.pth").write_bytes(b"weights")
    assert selection.installed_prompter("cpu") == "sam" and selection.installed_prompter("cpu") == "sam"
    assert built == [(tmp_path / "sam" / "sam_vit_b_01ec64.pth", "cpu")]
