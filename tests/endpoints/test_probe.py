"""Calls to real participant services on loopback: each misbehaviour gives its outcome, none stops the others."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx
import pytest

from ppipe.endpoints import probe
from ppipe.endpoints.guard import Policy
from ppipe.endpoints.probe import Endpoint
from tests.endpoints.conftest import SECRET, sample_rows

EXPECTED = {
    "correct": "ok", "slow": "timeout", "wrong_schema": "bad_body", "wrong_rows": "wrong_rows",
    "huge": "too_large", "redirect": "redirect", "drop": "refused", "v2": "ok", "tls": "ok",
}


def endpoints(services, names) -> list[Endpoint]:
    return [Endpoint(name, services[name] + ("/v2/models/m" if name == "v2" else "/predict"),
                     "v2" if name == "v2" else "ppipe", SECRET) for name in names]


def test_a_round_gives_each_endpoint_its_outcome_within_the_deadline(services, loopback_settings):
    started = time.perf_counter()
    results = asyncio.run(probe.run_round(endpoints(services, EXPECTED), sample_rows(), loopback_settings))
    elapsed = time.perf_counter() - started
    outcomes = {r.key: r.outcome for r in results}
    assert outcomes == EXPECTED, {r.key: (r.outcome, r.error) for r in results}
    assert elapsed < 1.5 * loopback_settings.timeout, f"round took {elapsed:.2f}s"
    by_key = {r.key: r for r in results}
    assert by_key["correct"].rows_answered == 10 and by_key["correct"].status == 200
    assert by_key["wrong_rows"].rows_answered == 0 and "10 missing, 10 unknown" in by_key["wrong_rows"].error
    assert by_key["redirect"].status == 307 and "169.254.169.254" in by_key["redirect"].error
    assert "dropped" in by_key["drop"].error
    assert by_key["slow"].total_ms < 1.5 * 1000
    for result in results:
        assert result.rows_sent == 10 and result.total_ms is not None


def test_timings_come_from_the_trace(services, loopback_settings):
    result = asyncio.run(probe.call(endpoints(services, ["tls"])[0], sample_rows(), loopback_settings))
    assert result.outcome == "ok"
    assert result.dns_ms is not None and result.dns_ms >= 0  # localhost is resolved
    assert 0 < result.connect_ms and 0 < result.tls_ms
    assert result.connect_ms + result.tls_ms <= result.first_byte_ms <= result.total_ms


def test_a_service_failing_every_other_call(services, loopback_settings):
    endpoint = endpoints(services, ["flaky"])[0]
    results = [asyncio.run(probe.call(endpoint, sample_rows(), loopback_settings)) for _ in range(4)]
    outcomes = [r.outcome for r in results]
    assert sorted(outcomes) == ["http_error", "http_error", "ok", "ok"]
    assert outcomes[0] != outcomes[1]
    assert {r.status for r in results if r.outcome == "http_error"} == {500}


def test_the_label_never_leaves_and_every_call_is_signed(services, loopback_settings):
    rows = sample_rows()
    assert all("label" in row for row in rows)
    result = asyncio.run(probe.call(endpoints(services, ["correct"])[0], rows, loopback_settings))
    assert result.outcome == "ok"
    seen = httpx.get(services["correct"] + "/last").json()
    assert seen["columns"] == ["city", "row_id", "x"]
    assert seen["signature_ok"] is True
    assert seen["host"] == services["correct"].removeprefix("http://")


def test_a_wrong_secret_fails_the_services_check(services, loopback_settings):
    endpoint = dataclasses.replace(endpoints(services, ["correct"])[0], secret="ppwh_someone-else")
    asyncio.run(probe.call(endpoint, sample_rows(), loopback_settings))
    assert httpx.get(services["correct"] + "/last").json()["signature_ok"] is False


def test_tls_needs_a_trusted_certificate(services, loopback_settings):
    untrusting = dataclasses.replace(loopback_settings, ssl_context=None)  # certifi's CAs: trustme's is not one
    result = asyncio.run(probe.call(endpoints(services, ["tls"])[0], sample_rows(), untrusting))
    assert result.outcome == "tls_error" and "CERTIFICATE_VERIFY_FAILED" in result.error


def test_tls_checks_the_host_name_not_the_address(services, loopback_settings, tls_ca):
    # The certificate names localhost and 127.0.0.1; ::1 is not in it: refused although the address is fine.
    port = services["tls"].rsplit(":", 1)[1]
    wrong_name = Endpoint("tls", f"https://[::1]:{port}/predict", "ppipe", SECRET)
    result = asyncio.run(probe.call(wrong_name, sample_rows(), loopback_settings))
    assert result.outcome in ("tls_error", "refused")  # refused where the host has no IPv6 loopback


def test_v2_readiness_and_inference(services, loopback_settings):
    endpoint = endpoints(services, ["v2"])[0]
    readiness = asyncio.run(probe.ready(endpoint, loopback_settings))
    assert readiness.outcome == "ok" and readiness.status == 200
    result = asyncio.run(probe.call(endpoint, sample_rows(), loopback_settings))
    assert result.outcome == "ok" and result.predictions == {i: int(i / 10 > 0.5) for i in range(10)}


def test_v2_with_no_such_model_is_an_http_error(services, loopback_settings):
    endpoint = Endpoint("v2", services["v2"] + "/v2/models/other", "v2", SECRET)
    assert asyncio.run(probe.call(endpoint, sample_rows(), loopback_settings)).outcome == "http_error"


def test_nothing_listening_is_refused(loopback_settings):
    from tests.support.servers import free_port

    endpoint = Endpoint("gone", f"http://127.0.0.1:{free_port()}/predict", "ppipe", SECRET)
    result = asyncio.run(probe.call(endpoint, sample_rows(), loopback_settings))
    assert result.outcome == "refused" and result.error.startswith("connection refused")


@pytest.mark.parametrize("policy, url, rule", [
    (Policy(allow_http=True), "{correct}/predict", "127.0.0.1, a loopback address"),
    (Policy(allow_private=True), "{correct}/predict", "must use https"),
    (Policy(True, True), "http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
])
def test_refused_urls_are_never_called(services, loopback_settings, policy, url, rule):
    settings = dataclasses.replace(loopback_settings, policy=policy)
    endpoint = Endpoint("x", url.format(**services), "ppipe", SECRET)
    result = asyncio.run(probe.call(endpoint, sample_rows(), settings))
    assert result.outcome == "refused" and rule in result.error
    assert result.connect_ms is None and result.status is None  # no connection was opened


def test_a_hanging_endpoint_does_not_hold_up_a_round_beyond_its_deadline(services, loopback_settings):
    # More hanging calls than slots: those still queued at the deadline end as timeouts, on time.
    hanging = [Endpoint(f"slow{i}", services["slow"] + "/predict", "ppipe", SECRET) for i in range(4)]
    good = endpoints(services, ["correct"])
    started = time.perf_counter()
    results = asyncio.run(probe.run_round(hanging + good, sample_rows(), loopback_settings, max_concurrency=2))
    assert time.perf_counter() - started < 1.5 * loopback_settings.timeout
    assert [r.outcome for r in results] == ["timeout"] * 5
    assert any("not started" in r.error for r in results)
