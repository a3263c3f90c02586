"""Test doubles, kept out of the product (issue #26): ``plugin_fakes`` (FakeEngineClient
for ``refine_matte.client.EngineClient``, the Krita stand-in FakeKrita) and
``checkpoints`` (tiny random-weight and golden DiffMatte checkpoints).

Importable as ``doubles`` wherever ``tests/`` is on ``sys.path``: under pytest (the
folder of conftest.py), in scripts under tests/, and in the benches, which add it."""
