"""The HTTP API fuzzed from its own /openapi.json (schemathesis strategies driven by hypothesis): no input,
with a valid token or without one, gives a 500.

schemathesis' pytest plugin does not run under pytest 9 here, so each operation's strategy is drawn
from directly (the same generation, without the plugin).
"""

from __future__ import annotations

import json

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from ppipe.participants import service
from tests.participants.conftest import deliver, make_challenge


def _raw(value) -> bytes:
    """Whatever was generated, as body bytes (negative mode generates any JSON value)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else json.dumps(value).encode()


schemathesis.serializer("text/csv")(lambda ctx, value: _raw(value))
schemathesis.serializer("application/vnd.apache.parquet")(lambda ctx, value: _raw(value))


def test_no_generated_input_makes_a_server_error(api, tmp_path):
    base, ledger = api
    challenge = make_challenge(tmp_path, ledger, requests={
        "validation": {"rows": 5, "attempts": 100}, "prediction": {"label": "label", "attempts": 100}})
    added = service.add(challenge.name, "fuzzer", ledger=ledger)
    deliver(ledger, challenge.name)
    who = service.authenticate(added.token, ledger=ledger)
    real_ids = [r["id"] for r in service.list_requests(who, ledger=ledger)]
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    failures, seen = [], set()
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    for operation, mode in [(operation, mode) for operation in operations for mode in modes]:
        @given(case=operation.as_strategy(generation_mode=mode), real=st.sampled_from(real_ids + [None]))
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case, real):
            if real and "request_id" in (case.path_parameters or {}):
                case.path_parameters = {**case.path_parameters, "request_id": real}
            for headers in ({"Authorization": f"Bearer {added.token}"}, {}):
                response = case.call(base_url=base, headers=headers)
                seen.add((case.method, case.path, response.status_code))
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

        call()
    assert not failures, failures[:5]
    assert {status for *_, status in seen} >= {200, 401, 404, 422}
    assert any(path.endswith("/answer") and status == 200 for _, path, status in seen)
