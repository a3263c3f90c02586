"""diffmatte.io.layered: PSD, OpenRaster and layered TIFF read/write without Qt."""
from __future__ import annotations

import numpy as np
import pytest

from diffmatte.io import layered
from doubles.layered_docs import EXT, FORMATS, layout, make_doc

@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_keeps_names_order_offsets_groups_and_masks(tmp_path, fmt):
    doc = make_doc()
    path = layered.write(doc, tmp_path / f"doc{EXT[fmt]}")
    back = layered.read(path)
    assert (back.width, back.height) == (40, 30)
    assert layout(back) == layout(doc)
    for (_, a), (_, b) in zip(doc.leaves(), back.leaves()):
        np.testing.assert_array_equal(a.pixels, b.pixels)
    sub = dict(back.leaves())["fg/subject"]
    np.testing.assert_array_equal(sub.mask.canvas(40, 30), doc.layers[1].children[0].mask.canvas(40, 30))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


@pytest.mark.parametrize("fmt", FORMATS)
def test_setting_one_mask_leaves_other_layers_and_input_alone(tmp_path, fmt):
    src = layered.write(make_doc(), tmp_path / f"in{EXT[fmt]}")
    before = src.read_bytes()
    doc = layered.read(src)
    (path, subject), = doc.find("subj*")
    assert path == "fg/subject"
    alpha = np.linspace(0, 1, 40 * 30, dtype=np.float32).reshape(30, 40)
    subject.set_mask(alpha)
    out = layered.write(doc, tmp_path / f"out{EXT[fmt]}")
    assert src.read_bytes() == before
    orig, new = layered.read(src), layered.read(out)
    assert layout(new) == layout(orig)
    for (p, a), (_, b) in zip(orig.leaves(), new.leaves()):
        np.testing.assert_array_equal(a.pixels, b.pixels)
        if p != "fg/subject":
            assert (a.mask is None) == (b.mask is None)
    got = dict(new.leaves())["fg/subject"].mask.canvas(40, 30)
    assert np.abs(got - alpha).max() <= 0.5 / 255 + 1e-6


def test_find_matches_names_and_paths_only_as_patterns():
    doc = make_doc()
    assert [p for p, _ in doc.find("*")] == ["background", "fg/subject", "overlay"]
    assert [p for p, _ in doc.find("fg/*")] == ["fg/subject"]
    assert doc.find("fg") == []  # groups are not layers to matte


def test_composite_respects_visibility_opacity_and_masks():
    doc = make_doc()
    comp = doc.composite()
    bg = doc.layers[0].pixels[..., :3] / 255.0
    np.testing.assert_allclose(comp[0, 0, :3], bg[0, 0], atol=1e-6)  # outside subject and its mask
    sub = doc.layers[1].children[0]
    y, x = 10, 10  # inside the subject, its opaque part and its mask
    a = 128 / 255
    want = sub.pixels[y - 5, x - 7, :3] / 255.0 * a + bg[y, x] * (1 - a)
    np.testing.assert_allclose(comp[y, x, :3], want, atol=1e-5)


def test_multi_page_tiff_from_elsewhere_uses_page_names(tmp_path):
    import tifffile

    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tw:
        for name in ("back", "subject"):
            tw.write(np.zeros((8, 9, 3), np.uint8), photometric="rgb", metadata=None,
                     extratags=[(285, "s", 0, name, False)])
    doc = layered.read(path)
    assert [p for p, _ in doc.leaves()] == ["back", "subject"]
    assert doc.leaves()[1][1].pixels.shape == (8, 9, 4)


def test_bad_files_raise_layered_error(tmp_path):
    for ext in (".psd", ".ora", ".tif"):
        bad = tmp_path / f"bad{ext}"
        bad.write_bytes(b"not a layered file at all")
        with pytest.raises(layered.LayeredError, match="bad"):
            layered.read(bad)
    with pytest.raises(layered.LayeredError, match="not a layered format"):
        layered.read(tmp_path / "x.png")


def test_sixteen_bit_tiff_stays_sixteen_bit(tmp_path):
    doc = make_doc()
    for _, layer in doc.leaves():
        layer.pixels = layer.pixels.astype(np.uint16) * 257
    back = layered.read(layered.write(doc, tmp_path / "deep.tif"))
    assert back.bits == 16
    np.testing.assert_array_equal(back.leaves()[0][1].pixels, doc.leaves()[0][1].pixels)


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_document_gives_the_same_bytes(tmp_path, fmt):
    import time

    a = layered.encode(make_doc(), fmt)
    time.sleep(2.1)  # zip entries carry two-second timestamps
    assert layered.encode(make_doc(), fmt) == a


def test_photoshop_layers_inside_a_tiff_are_refused_not_flattened(tmp_path):
    import tifffile

    path = tmp_path / "ps.tif"
    tifffile.imwrite(path, np.zeros((8, 8, 3), np.uint8), photometric="rgb",
                     extratags=[(37724, "B", 16, b"Adobe Photoshop\0", False)])
    with pytest.raises(layered.LayeredError, match="save it as PSD"):
        layered.read(path)
    with pytest.raises(layered.LayeredError, match="save it as PSD"):
        layered.probe(path.read_bytes(), "tiff")


def test_probe_reads_sizes_without_decoding(tmp_path):
    import zipfile

    bomb = tmp_path / "bomb.ora"
    with zipfile.ZipFile(bomb, "w") as zf:
        zf.writestr("mimetype", "image/openraster")
        zf.writestr("stack.xml", '<image w="50000" h="50000"><stack/></image>')
    assert layered.probe(bomb.read_bytes(), "ora") == (50000, 50000, 0)
    psd = layered.write(make_doc(), tmp_path / "a.psd")
    assert layered.probe(psd.read_bytes(), "psd") == (40, 30, 0)
    tif = layered.write(make_doc(), tmp_path / "a.tif")
    assert layered.probe(tif.read_bytes(), "tiff")[2] == 4  # 3 layers + the subject's mask page
