"""The outbound HTTP client: SSRF refusals after DNS, and connecting to the address that was checked."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from tests.notify.receivers import HttpReceiver
from tocsin.config import Settings
from tocsin.notify import http

pytestmark = pytest.mark.anyio

GUARDED = Settings(allow_private_targets=False, http_timeout_seconds=3)
OPEN = Settings(allow_private_targets=True, http_timeout_seconds=3)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1::1", True),
        ("127.0.0.1", False),
        ("10.0.0.5", False),
        ("172.16.3.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:93.184.216.34", True),
    ],
)
def test_only_globally_routable_unicast_addresses_are_public(address: str, public: bool) -> None:
    assert http.is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_loopback_is_refused_before_any_request_is_sent(receiver: HttpReceiver, host: str) -> None:
    with pytest.raises(http.BlockedTarget, match="non-public address"):
        await http.post(GUARDED, receiver.url("/x", host=host), content=b"{}", headers={})
    assert receiver.attempts == 0


@pytest.mark.parametrize(
    "url",
    ["http://10.20.30.40/hook", "http://169.254.169.254/latest/meta-data/", "https://192.168.0.1:8443/"],
)
async def test_private_and_metadata_addresses_are_refused(url: str) -> None:
    with pytest.raises(http.BlockedTarget):
        await http.post(GUARDED, url, content=b"{}", headers={})


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    real = http.anyio.getaddrinfo

    async def resolve(host: Any, port: Any, **kw: Any) -> Any:
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers[host]]
        return await real(host, port, **kw)

    monkeypatch.setattr(http.anyio, "getaddrinfo", resolve)


async def test_a_name_with_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"mixed.test": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(http.BlockedTarget, match=r"127\.0\.0\.1"):
        await http.post(GUARDED, "http://mixed.test/", content=b"{}", headers={})


async def test_the_connection_goes_to_the_checked_address_and_keeps_the_host_name(
    receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "rebind.test" exists only in our resolver: reaching the receiver proves the client connected to the
    # address the guard resolved (no second lookup to rebind), while the Host header keeps the name.
    fake_dns(monkeypatch, {"rebind.test": ["127.0.0.1"]})
    reply = await http.post(
        OPEN,
        receiver.url("/x", host="rebind.test"),
        content=b'{"a":1}',
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 200
    [got] = receiver.received
    assert got.headers["host"] == f"rebind.test:{receiver.port}"
    assert got.headers["user-agent"].startswith("Tocsin/")
