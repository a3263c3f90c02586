"""diffmatte batch --service: refining through the running engine service."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from diffmatte import batch
from test_batch import photo, trimap


def test_batch_through_the_running_service_matches_the_local_engine(tmp_path, tiny_weights, monkeypatch):
    from refine_matte.client import EngineClient

    cfg = tmp_path / "cfg"
    monkeypatch.setenv("REFINE_MATTE_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir(), tri.mkdir()
    for i in range(2):
        photo(img / f"{i}.png", seed=i)
        trimap(tri / f"{i}.png")
    kw = dict(trimaps=str(tri), steps=2, progress=False, echo=None)
    with pytest.raises(ValueError, match="diffmatte serve"):
        batch.run([str(img)], str(tmp_path / "none"), service=str(cfg), **kw)
    client = EngineClient.ensure_running(python=sys.executable, timeout=120, config=str(cfg),
                                         args=["--weights", str(tiny_weights), "--device", "cpu",
                                               "--log-level", "warning"])
    try:
        served = batch.run([str(img)], str(tmp_path / "served"), service=str(cfg), **kw)
        assert (served.refined, served.failed) == (2, [])
        local = batch.run([str(img)], str(tmp_path / "local"), weights=str(tiny_weights), threads=1, **kw)
        assert local.refined == 2
        for name in ("0.png", "1.png"):
            # The service's engine keeps its tile cache between jobs (for the editor's re-runs),
            # which can move a value by ~1e-7: equal to within one 8-bit step.
            a = np.asarray(Image.open(tmp_path / "served" / name), dtype=int)
            b = np.asarray(Image.open(tmp_path / "local" / name), dtype=int)
            assert np.abs(a - b).max() <= 1 and (a != b).mean() < 0.01
        again = batch.run([str(img)], str(tmp_path / "served"), service=str(cfg), **kw)
        assert (again.refined, again.skipped) == (0, 2)
        with pytest.raises(ValueError, match="one image at a time"):
            batch.run([str(img)], str(tmp_path / "x"), service=str(cfg), jobs=2, **kw)
    finally:
        client.shutdown()
        if client.process is not None:
            client.process.wait(30)


def test_the_served_engine_sends_widen_band_for_rough_masks():
    """batch --service: a rough mask's refine asks the service for widen_band too."""
    import io

    from diffmatte.batch.service_engine import ServiceEngine

    class Client:
        def __init__(self):
            self.asked = []

        def refine(self, image_png, trimap_png, **kw):
            self.asked.append((kw.get("widen_band", False), kw.get("band")))
            buf = io.BytesIO()
            Image.fromarray(np.zeros((4, 6), np.uint16)).save(buf, format="PNG")
            return buf.getvalue()

    client = Client()
    engine = ServiceEngine(client)
    image, tri = np.zeros((4, 6, 3), np.uint8), np.full((4, 6), 128, np.uint8)
    engine.refine(image, tri, widen_band=True)
    engine.refine(image, tri, widen_band=True, band=4.0)   # --band: the band grows by it
    engine.refine(image, tri)
    assert client.asked == [(True, None), (True, 4.0), (False, None)]


def test_the_served_engines_results_revision_is_part_of_the_fingerprint():
    """batch --service: a service whose engine gives different mattes (a newer results
    revision) must not match the outputs of the older one."""
    from diffmatte.batch.service_engine import ServiceEngine

    class Client:
        def __init__(self, revision):
            self.revision = revision

        def info(self):
            return {"engine": {"weights": "default", "variant": "lite_ifm", "results_revision": self.revision}}

    assert ServiceEngine(Client(2)).weights_id() != ServiceEngine(Client(3)).weights_id()
