"""The one outbound HTTP client: SSRF-guarded after DNS, connecting only to the address it checked.

Targets come from users (webhook URLs), so a request could otherwise be aimed at the cloud metadata service
or an admin port on the private network. The guard sits in the network layer, below HTTP: every TCP
connection (the first one, and any later one from the pool) resolves the host itself, refuses if *any*
address is not public, and connects to the address it just checked. There is thus no window for DNS
rebinding between check and connect, while the URL, the Host header and TLS SNI/certificate checks still
use the host name. Redirects are not followed and environment proxies are ignored, so neither can route
around the guard.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache

import anyio
import httpcore
import httpx

from tocsin import __version__
from tocsin.config import Settings

MAX_REPLY_BYTES = 16_384  # an error message is all we keep; a huge reply must not fill memory
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedTarget(Exception):
    """The destination resolves to an address outbound notifications may not reach."""


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast: not private, loopback, link-local, CGNAT, reserved, multicast..."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _resolve(host: str, port: int, timeout: float | None) -> list[IPAddress]:  # noqa: ASYNC109
    try:
        with anyio.fail_after(timeout):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    seen: dict[IPAddress, None] = {}
    for info in infos:
        seen[ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])] = None
    return list(seen)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the resolve-check-connect step in front of every TCP connection."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    # httpcore's interface fixes these signatures, timeout parameter included.
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port, timeout)
        if not self._allow_private:
            refused = [str(ip) for ip in addresses if not is_public(ip)]
            if refused:
                raise BlockedTarget(
                    f"{host} resolves to a non-public address ({', '.join(refused)}); outbound "
                    "notifications may only reach public addresses (TOCSIN_ALLOW_PRIVATE_TARGETS)"
                )
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedTarget("outbound notifications do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@cache
def _ssl_context() -> ssl.SSLContext:
    """Built once per process: loading the CA bundle costs ~30 ms, and a context is safe to share."""
    return httpx.create_ssl_context(trust_env=False)


def _transport(settings: Settings) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(verify=_ssl_context(), trust_env=False)
    # httpx has no public parameter for the network backend, so the pool is rebuilt with ours through
    # httpcore's public API; tests/notify/test_http.py fails if a new httpx stops honouring it.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_ssl_context(),
        network_backend=GuardedBackend(allow_private=settings.allow_private_targets),
    )
    return transport


@asynccontextmanager
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for notification traffic.

    One per delivery rather than one per process: a delivery is one or two requests, and a client bound to
    no event loop or process lifetime cannot leak across the engine's restarts or the tests' loops.
    """
    async with httpx.AsyncClient(
        transport=_transport(settings),
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(settings.http_timeout_seconds),
        headers={"User-Agent": f"Tocsin/{__version__}"},
    ) as c:
        yield c


@dataclass(frozen=True)
class Reply:
    status: int
    headers: httpx.Headers
    text: str  # at most MAX_REPLY_BYTES of the body


async def post(settings: Settings, url: str, *, content: bytes, headers: dict[str, str]) -> Reply:
    """POST `content` to `url`; raises BlockedTarget, httpx.InvalidURL or an httpx.TransportError."""
    async with client(settings) as c, c.stream("POST", url, content=content, headers=headers) as response:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_REPLY_BYTES:
                break
        text = b"".join(chunks)[:MAX_REPLY_BYTES].decode("utf-8", "replace")
        return Reply(response.status_code, response.headers, text)
