"""Bind-address policy, DNS-rebinding allow-lists and the static bearer-token verifier."""

from __future__ import annotations

import pytest

from mcp_server._auth import StaticTokenVerifier
from mcp_server.http import is_loopback, rebinding_protection, url_for


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_rebinding_protection_allows_the_bound_address_and_localhost_forms() -> None:
    security = rebinding_protection("127.0.0.1", 8765)

    assert security.enable_dns_rebinding_protection
    assert set(security.allowed_hosts) == {"127.0.0.1:8765", "localhost:8765", "[::1]:8765"}
    assert "http://localhost:8765" in security.allowed_origins
    assert not any("evil" in origin for origin in security.allowed_origins)


def test_rebinding_protection_for_a_wildcard_bind_needs_named_hosts() -> None:
    security = rebinding_protection("0.0.0.0", 9000, ["m2.internal"])

    assert "m2.internal:9000" in security.allowed_hosts
    assert not any(host.startswith("0.0.0.0") for host in security.allowed_hosts)


def test_rebinding_protection_brackets_ipv6_and_allows_any_port_for_port_zero() -> None:
    security = rebinding_protection("::1", 0)

    assert "[::1]:*" in security.allowed_hosts


def test_url_for_brackets_ipv6() -> None:
    assert url_for("::1", 8765) == "http://[::1]:8765/mcp"


async def test_static_token_verifier_accepts_only_its_token() -> None:
    verifier = StaticTokenVerifier("s3cret")

    assert await verifier.verify_token("s3cret") is not None
    assert await verifier.verify_token("s3cret ") is None
    assert await verifier.verify_token("") is None


@pytest.mark.parametrize("token", ["", " ", "\t\n  "])
def test_static_token_verifier_refuses_an_empty_or_blank_token(token: str) -> None:
    with pytest.raises(ValueError):
        StaticTokenVerifier(token)
