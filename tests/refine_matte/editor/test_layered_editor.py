"""The editor reads and writes layered files through diffmatte.io.layered (Qt offscreen)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PyQt6")

from diffmatte.io import layered  # noqa: E402
from refine_matte.editor import io as edio  # noqa: E402
from refine_matte.editor.document import MaskNode  # noqa: E402
from doubles.layered_docs import layout, make_doc  # noqa: E402


@pytest.mark.parametrize("ext", [".ora", ".tif"])
def test_editor_save_keeps_the_files_tree_and_changes_only_edited_masks(tmp_path, ext):
    src = layered.write(make_doc(), tmp_path / f"in{ext}")
    doc = edio.load_document(str(src))
    assert [l.name for l in doc.layers] == ["background", "subject", "overlay"]
    new_mask = np.zeros((30, 40), np.uint8)
    new_mask[:, :20] = 255
    doc.layers[0].masks.append(MaskNode("Refine Matte", edio.array_to_qimage(new_mask)))
    out = tmp_path / f"out{ext}"
    edio.save_layered(str(out), doc)
    orig, back = layered.read(src), layered.read(out)
    assert layout(back) == layout(orig)  # the group and every attribute survive the editor
    leaves = dict(back.leaves())
    np.testing.assert_array_equal(leaves["background"].mask.canvas(40, 30), new_mask / 255.0)
    np.testing.assert_array_equal(leaves["fg/subject"].mask.canvas(40, 30),
                                  dict(orig.leaves())["fg/subject"].mask.canvas(40, 30))
    assert leaves["overlay"].mask is None


def test_editor_opens_psd_groups_offsets_and_masks(tmp_path):
    pytest.importorskip("psd_tools")
    src = layered.write(make_doc(), tmp_path / "in.psd")
    doc = edio.load_document(str(src))
    sub = doc.layers[1]
    assert (sub.name, sub.visible, doc.layers[2].visible) == ("subject", True, False)
    rgba = edio.qimage_to_array(sub.image, 4)
    assert rgba[:5].max() == 0 and rgba[8, 7, 3] == 255    # placed at its offset (rows 5..7 transparent)
    mask = edio.qimage_to_array(sub.mask().image, 1)
    assert mask[10, 10] == 255 and mask[0, 0] == 0
    # a document edited in the editor can be saved as OpenRaster with the same layers
    edio.save_layered(str(tmp_path / "out.ora"), doc)
    assert layout(layered.read(tmp_path / "out.ora")) == layout(layered.read(src))


def test_editor_saves_psd_in_place_with_the_new_mask(tmp_path):
    pytest.importorskip("psd_tools")
    src = layered.write(make_doc(), tmp_path / "in.psd")
    doc = edio.load_document(str(src))
    new_mask = np.zeros((30, 40), np.uint8)
    new_mask[10:, :] = 255
    doc.layers[0].masks.append(MaskNode("Refine Matte", edio.array_to_qimage(new_mask)))
    edio.save_layered(str(tmp_path / "out.psd"), doc)
    orig, back = layered.read(src), layered.read(tmp_path / "out.psd")
    assert layout(back) == layout(orig)
    for (path, a), (_, b) in zip(orig.leaves(), back.leaves()):
        np.testing.assert_array_equal(a.pixels, b.pixels)
    leaves = dict(back.leaves())
    np.testing.assert_array_equal(leaves["background"].mask.canvas(40, 30), new_mask / 255.0)
    np.testing.assert_array_equal(leaves["fg/subject"].mask.canvas(40, 30),
                                  dict(orig.leaves())["fg/subject"].mask.canvas(40, 30))
    assert edio.load_document(str(tmp_path / "out.psd")).layers[0].mask() is not None


def test_editor_keeps_same_named_layers_apart(tmp_path):
    """Issue #25: two layers named 'Layer' shared one path, so saving edited the wrong one
    (or rewrote the file from the editor's layers)."""
    from doubles.layered_docs import dup_doc

    src = layered.write(dup_doc(), tmp_path / "dup.ora")
    doc = edio.load_document(str(src))
    new_mask = np.zeros((30, 40), np.uint8)
    new_mask[:, :10] = 255
    doc.layers[2].masks.append(MaskNode("Refine Matte", edio.array_to_qimage(new_mask)))
    edio.save_layered(str(tmp_path / "out.ora"), doc)
    back = layered.read(tmp_path / "out.ora")
    assert [p for p, _ in back.leaves()] == ["background", "Layer#1", "Layer#2"]
    np.testing.assert_array_equal(back.layers[1].mask.canvas(40, 30), dup_doc().layers[1].mask.canvas(40, 30))
    np.testing.assert_array_equal(back.layers[2].mask.canvas(40, 30), new_mask / 255.0)
