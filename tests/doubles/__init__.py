"""Test doubles, kept out of the product (issue #26): ``plugin_fakes`` (FakeEngineClient
for ``refine_matte.client.EngineClient``, the Krita stand-in FakeKrita),
``checkpoints`` (tiny random-weight and golden DiffMatte checkpoints), ``sam`` (a tiny
random-weight Segment Anything model) and ``layered_docs`` (small layered documents).

Importable as ``doubles`` wherever ``tests/`` is on ``sys.path``: under pytest (pyproject.toml's
``pythonpath``), in scripts under tests/, and in the benches, which add it."""
