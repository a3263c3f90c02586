"""The plugin's engine Protocol (refine_matte.engine_api.EngineApi): the product's client
and the tests' fake both provide every method it names, with its parameters."""
from __future__ import annotations

import inspect

import pytest

from refine_matte.client import EngineClient
from refine_matte.engine_api import EngineApi

METHODS = [name for name, value in vars(EngineApi).items()
           if callable(value) and not name.startswith("_")]


def _params(func) -> list:
    return [p for p in inspect.signature(func).parameters.values() if p.name != "self"]


@pytest.mark.parametrize("name", METHODS)
def test_the_client_and_the_fake_take_what_the_protocol_names(name):
    from doubles.plugin_fakes import FakeEngineClient

    wanted = _params(getattr(EngineApi, name))
    for impl in (EngineClient, FakeEngineClient):
        method = getattr(impl, name, None)
        assert method is not None, f"{impl.__name__} has no {name}"
        have = {p.name: p for p in _params(method)}
        for p in wanted:
            assert p.name in have, f"{impl.__name__}.{name} lacks {p.name}"
            if p.default is not inspect.Parameter.empty:
                assert have[p.name].default is not inspect.Parameter.empty, \
                    f"{impl.__name__}.{name}: {p.name} must be optional"


def test_the_protocol_names_what_the_panel_calls():
    assert {"info", "trimap_from_mask", "trimap_from_scribbles", "sam_trimap", "refine"} <= set(METHODS)
