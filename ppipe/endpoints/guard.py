"""A participant's registered URL is hostile until checked: no SSRF, no DNS rebinding.

:func:`check_url` refuses what the URL itself gives away (scheme, userinfo, a forbidden
address literal). :func:`resolve` resolves the host name ONCE, checks every address it
got, and returns a :class:`Target` pinned to one of them; :class:`PinnedTransport` then
connects to that address only, whatever the DNS says a millisecond later, while the URL
(and so the Host header, TLS SNI and certificate check) keeps the host name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

import httpcore
import httpx

from ppipe.errors import PpipeError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``await resolver(host, port)`` -> the host's addresses, as text; replaceable for tests.
Resolver = Callable[[str, int], Awaitable[list[str]]]

#: Cloud instance-metadata and platform services: never a participant's model, refused even
#: with ``allow_private`` (AWS/GCP/Azure/OpenStack, AWS ECS task metadata, AWS IPv6,
#: Alibaba, Azure wire server, Oracle).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "169.254.169.123", "fd00:ec2::254", "fd00:ec2::23",
    "100.100.100.200", "168.63.129.16", "192.0.0.192",
))
#: Embedded-IPv4 prefixes (NAT64) whose inner address is what really gets reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedURL(PpipeError):
    """A registered URL ppipe will not call: ``url: <rule>`` (HTTP 422 in the API)."""

    def __init__(self, rule: str):
        self.rule = rule
        super().__init__(f"url: {rule}")


@dataclass(frozen=True)
class Policy:
    """What a challenge allows (``requests.endpoint``): both False for anything public."""

    allow_http: bool = False
    allow_private: bool = False


@dataclass(frozen=True)
class Target:
    """A checked URL and the one address every connection for it goes to."""

    url: httpx.URL
    address: str
    dns_ms: float = 0.0

    @property
    def host(self) -> str:
        return self.url.host


def check_url(url: str, policy: Policy) -> httpx.URL:
    """The URL parsed, or RefusedURL naming the rule it breaks (no network access)."""
    if not isinstance(url, str) or not url.strip():
        raise RefusedURL("must be a non-empty http(s) URL")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise RefusedURL("must not contain spaces or control characters")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise RefusedURL(f"not a valid URL ({exc})") from None
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https"):
        raise RefusedURL(f"scheme {scheme or '(none)'!r} is not allowed: use https")
    if scheme == "http" and not policy.allow_http:
        raise RefusedURL("must use https (this challenge does not allow plain http)")
    if parsed.userinfo:
        raise RefusedURL("must not carry a user name or password (user@host)")
    if not parsed.host:
        raise RefusedURL("has no host")
    literal = _ip_literal(parsed.host)
    if literal is not None:
        _check_address(literal, policy)
    return parsed.copy_with(fragment=None)


def address_problem(address: IPAddress, policy: Policy) -> str | None:
    """Why ppipe must not connect to ``address`` (None when it may)."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        return address_problem(inner, policy)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_reserved and not address.is_loopback:  # ::1 lies in IPv6's reserved ::/8
        return "a reserved address"
    for name in ("loopback", "link_local", "private"):
        if getattr(address, f"is_{name}"):
            return None if policy.allow_private else f"a {name.replace('_', '-')} address"
    if policy.allow_private or address.is_global:
        return None
    return "not a public address"


async def resolve(url: str | httpx.URL, policy: Policy, resolver: Resolver | None = None) -> Target:
    """Check the URL, resolve its host once, check every address; RefusedURL if any is forbidden.

    Every address must pass, not just the first: a name answering with one public and one
    internal address is how rebinding attacks hedge.
    """
    parsed = check_url(str(url), policy)
    literal = _ip_literal(parsed.host)
    if literal is not None:
        return Target(parsed, str(literal))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        answers = await (resolver or system_resolver)(parsed.host, parsed.port or _default_port(parsed))
    except OSError as exc:
        raise RefusedURL(f"host {parsed.host!r} does not resolve ({exc.strerror or exc})") from None
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
    if not addresses:
        raise RefusedURL(f"host {parsed.host!r} does not resolve")
    for address in addresses:
        _check_address(address, policy, host=parsed.host)
    return Target(parsed, str(addresses[0]), dns_ms=(loop.time() - started) * 1000)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _check_address(address: IPAddress, policy: Policy, host: str | None = None) -> None:
    problem = address_problem(address, policy)
    if problem:
        via = f"host {host!r} resolves to" if host else "host is"
        raise RefusedURL(f"{via} {address}, {problem}: not allowed")


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


# --- connecting to the checked address only ----------------------------------------------


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections to the target's checked address and nowhere else."""

    def __init__(self, target: Target):
        self._target = target
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None, socket_options: Iterable | None = None):
        if host.strip("[]") != self._target.host.strip("[]"):  # only a redirect could ask this; never followed
            raise httpcore.ConnectError(f"refusing to connect to {host!r}: not the checked host")
        return await self._backend.connect_tcp(
            self._target.address, port, timeout=timeout, local_address=local_address, socket_options=socket_options,
        )

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None):
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport for one checked target: no proxies, no environment, one pinned address."""

    def __init__(self, target: Target, ssl_context: ssl.SSLContext):
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, network_backend=PinnedBackend(target),
            max_connections=4, max_keepalive_connections=0, http1=True, http2=False, retries=0,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host,
                             port=request.url.port, target=request.url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(core_request)
        except httpcore.TimeoutException as exc:
            raise _as_httpx(exc, httpx.TimeoutException, request) from exc
        except httpcore.NetworkError as exc:
            raise _as_httpx(exc, httpx.NetworkError, request) from exc
        except httpcore.ProtocolError as exc:
            raise _as_httpx(exc, httpx.ProtocolError, request) from exc
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_Body(response.stream), extensions=response.extensions)

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream):
        self._stream = stream

    async def __aiter__(self):
        try:
            async for chunk in self._stream:
                yield chunk
        except httpcore.TimeoutException as exc:
            raise _as_httpx(exc, httpx.TimeoutException, None) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise _as_httpx(exc, httpx.TransportError, None) from exc

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


def _as_httpx(exc: Exception, fallback: type[httpx.TransportError], request: httpx.Request | None):
    """httpcore's exception as httpx's class of the same name (httpx mirrors httpcore's tree)."""
    cls = getattr(httpx, type(exc).__name__, fallback)
    if not (isinstance(cls, type) and issubclass(cls, httpx.TransportError)):
        cls = fallback
    return cls(str(exc) or type(exc).__name__, request=request)
