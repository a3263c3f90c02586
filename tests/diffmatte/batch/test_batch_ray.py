"""The Ray path (a local Ray with 2 workers) gives the same files and manifest as a local run."""
from __future__ import annotations

import pytest

from diffmatte import batch
from diffmatte.io import layered
from test_batch import digest, manifest_without_timing, photo, trimap
from doubles.layered_docs import make_doc

ray = pytest.importorskip("ray")


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_two_workers_match_the_local_run(tmp_path, tiny_weights, local_ray):
    img, tri = tmp_path / "img", tmp_path / "tri"
    img.mkdir(), tri.mkdir()
    for i in range(3):
        photo(img / f"{i}.png", seed=i)
        trimap(tri / f"{i}.png")
    layered.write(make_doc(), img / "shot.ora")
    (img / "broken.png").write_bytes(b"broken")
    kw = dict(trimaps=str(tri), layers="subject", weights=str(tiny_weights), steps=2, threads=1, rgba=True,
              progress=False, echo=None)
    here = batch.run([str(img)], str(tmp_path / "local"), **kw)
    on_ray = batch.run([str(img)], str(tmp_path / "ray"), ray="local", jobs=2, **kw)
    assert here.refined == on_ray.refined == 4
    assert [k for k, _ in on_ray.failed] == ["broken.png"]
    assert digest(tmp_path / "local").keys() == digest(tmp_path / "ray").keys()
    for name, sha in digest(tmp_path / "local").items():
        if name != batch.MANIFEST:
            assert digest(tmp_path / "ray")[name] == sha, name
    assert manifest_without_timing(tmp_path / "local") == manifest_without_timing(tmp_path / "ray")
    again = batch.run([str(img)], str(tmp_path / "ray"), ray="local", jobs=2, **kw)
    assert (again.refined, again.skipped) == (0, 4)
