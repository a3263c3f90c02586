"""Schemathesis over the service's own OpenAPI schema (issue #25): every route and method
the schema lists, bodies generated from it, against a real server on 127.0.0.1 with the
tiny engine; no answer may be a 5xx. Bounded: MAX_EXAMPLES per operation, no shrinking,
fixed seed (derandomized), so it fits in CI."""
from __future__ import annotations

import json
import urllib.request

import pytest

schemathesis = pytest.importorskip("schemathesis")

from diffmatte.service.app import ServiceConfig  # noqa: E402
from diffmatte.service.server import RunningService  # noqa: E402

TOKEN = "schema-fuzz-token"
MAX_EXAMPLES = 12


@pytest.fixture(scope="module")
def served(tiny_engine):
    svc = RunningService(tiny_engine, TOKEN, ServiceConfig(max_body_mb=1.0, max_megapixels=0.05, max_queue=4))
    yield svc
    svc.stop()


def _schema(svc):
    req = urllib.request.Request(f"{svc.url}/v1/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = json.loads(resp.read())
    return schemathesis.openapi.from_dict(raw)


def test_no_route_answers_5xx_to_schema_generated_requests(served):
    from hypothesis import HealthCheck, Phase, given, settings

    schema = _schema(served)
    failures = []
    calls = []
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 8
    skip = {("POST", "/v1/shutdown")}    # would stop the server under test
    for op in ops:
        if (op.method.upper(), op.path) in skip:
            continue

        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def check(case):
            resp = case.call(base_url=served.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            calls.append((op.method.upper() + " " + op.path, resp.status_code))
            if resp.status_code >= 500:
                failures.append((op.method.upper(), op.path, resp.status_code, resp.text[:200]))

        check()
    assert not failures, failures[:5]
    assert len({p for p, _ in calls}) == len(ops) - 1 and len(calls) >= 3 * (len(ops) - 1), calls
