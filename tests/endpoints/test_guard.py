"""The URL guard: what is refused and why, resolution once per call, and no DNS rebinding."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from ppipe.endpoints import probe
from ppipe.endpoints.guard import Policy, RefusedURL, address_problem, check_url, resolve
from ppipe.endpoints.probe import Endpoint
from tests.endpoints.conftest import LOOPBACK, SECRET, sample_rows

PUBLIC = Policy()


@pytest.mark.parametrize("url, rule", [
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("gopher://example.com/", "scheme 'gopher' is not allowed"),
    ("ftp://example.com/model", "scheme 'ftp' is not allowed"),
    ("http://example.com/predict", "must use https"),
    ("https://alice:pw@example.com/predict", "must not carry a user name or password"),
    ("https://token@example.com/predict", "must not carry a user name or password"),
    ("https:///predict", "has no host"),
    ("https://example.com/pre dict", "must not contain spaces"),
    ("", "must be a non-empty"),
    ("https://127.0.0.1/predict", "127.0.0.1, a loopback address"),
    ("https://10.1.2.3/predict", "10.1.2.3, a private address"),
    ("https://[::1]/predict", "::1, a loopback address"),
    ("https://[::ffff:127.0.0.1]/predict", "a loopback address"),
    ("https://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
    ("https://[fd00:ec2::254]/", "a cloud metadata address"),
    ("https://0.0.0.0/", "the unspecified address"),
    ("https://224.0.0.1/", "a multicast address"),
])
def test_refused_at_a_glance(url, rule):
    with pytest.raises(RefusedURL) as caught:
        check_url(url, PUBLIC)
    assert rule in str(caught.value) and str(caught.value).startswith("url: ")


def test_a_public_https_url_passes_and_loses_its_fragment():
    assert str(check_url("https://model.example.org:8443/predict?v=1#x", PUBLIC)) == "https://model.example.org:8443/predict?v=1"


@pytest.mark.parametrize("address, public, private", [
    ("93.184.216.34", None, None),
    ("2606:4700:4700::1111", None, None),
    ("192.168.1.10", "a private address", None),
    ("100.64.0.1", "not a public address", None),  # carrier-grade NAT
    ("fe80::1", "a link-local address", None),
    ("169.254.10.10", "a link-local address", None),
    ("64:ff9b::7f00:1", "a loopback address", None),  # NAT64 of 127.0.0.1
    ("169.254.169.254", "a cloud metadata address", "a cloud metadata address"),
    ("100.100.100.200", "a cloud metadata address", "a cloud metadata address"),
    ("::ffff:169.254.169.254", "a cloud metadata address", "a cloud metadata address"),
    ("240.0.0.1", "a reserved address", "a reserved address"),
    ("ff02::1", "a multicast address", "a multicast address"),
])
def test_address_rules(address, public, private):
    ip = ipaddress.ip_address(address)
    assert address_problem(ip, PUBLIC) == public
    assert address_problem(ip, LOOPBACK) == private


def fixed(*answers):
    calls = []

    async def resolver(host, port):
        calls.append(host)
        return list(answers[min(len(calls), len(answers)) - 1])

    resolver.calls = calls
    return resolver


def test_every_resolved_address_must_pass():
    resolver = fixed(["93.184.216.34", "10.0.0.5"])
    with pytest.raises(RefusedURL, match="'model.example.org' resolves to 10.0.0.5, a private address"):
        asyncio.run(resolve("https://model.example.org/", PUBLIC, resolver))


def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(RefusedURL, match="does not resolve"):
        asyncio.run(resolve("https://no-such-host.invalid/", PUBLIC))


def test_localhost_by_name_is_refused_without_allow_private():
    with pytest.raises(RefusedURL, match="'localhost' resolves to .*loopback"):
        asyncio.run(resolve("https://localhost/", PUBLIC))


def test_dns_rebinding_connects_to_the_checked_address(services, loopback_settings):
    """A name answering 127.0.0.1 once (checked, allowed here) and the metadata address afterwards.

    ppipe resolves once and connects to the address it checked: the call reaches the service
    on loopback, never 169.254.169.254. The next call resolves again and is refused.
    """
    port = services["correct"].rsplit(":", 1)[1]
    resolver = fixed(["127.0.0.1"], ["169.254.169.254"])
    settings = loopback_settings.__class__(**{**loopback_settings.__dict__, "resolver": resolver})
    endpoint = Endpoint("rebind", f"http://rebind.test:{port}/predict", "ppipe", SECRET)
    first = asyncio.run(probe.call(endpoint, sample_rows(), settings))
    assert first.outcome == "ok", first.error
    assert resolver.calls == ["rebind.test"]  # resolved exactly once for the whole call
    second = asyncio.run(probe.call(endpoint, sample_rows(), settings))
    assert second.outcome == "refused" and "169.254.169.254, a cloud metadata address" in second.error
    assert resolver.calls == ["rebind.test", "rebind.test"]
    assert second.connect_ms is None


def test_the_host_header_keeps_the_name(services, loopback_settings):
    import httpx

    port = services["correct"].rsplit(":", 1)[1]
    settings = loopback_settings.__class__(**{**loopback_settings.__dict__, "resolver": fixed(["127.0.0.1"])})
    endpoint = Endpoint("named", f"http://model.participant.test:{port}/predict", "ppipe", SECRET)
    assert asyncio.run(probe.call(endpoint, sample_rows(), settings)).outcome == "ok"
    assert httpx.get(services["correct"] + "/last").json()["host"] == f"model.participant.test:{port}"
