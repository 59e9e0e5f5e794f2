"""Streamable HTTP: the ASGI app (``/mcp`` and ``/healthz``) and its uvicorn runner.

What guards the endpoint, all of it the SDK's own machinery configured here:

- bearer-token auth on ``/mcp`` when a token is set (see :func:`mcp_server.create_server`);
- a request body limit sized for base64 images (413 beyond it);
- DNS-rebinding protection: the ``Host`` and ``Origin`` headers must name the bound
  address or a localhost form (421 / 403 otherwise).

``GET /healthz`` needs no token: it returns the status JSON, 200 while the model is
idle, loading or ready and 503 once loading failed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from m2_tools.reasoner import M2Reasoner

__all__ = [
    "MAX_REQUEST_BYTES",
    "create_http_app",
    "is_loopback",
    "rebinding_protection",
    "serve_http",
    "url_for",
]

#: Room for several large base64 images in one call (base64 adds a third to the bytes).
MAX_REQUEST_BYTES = 64 * 1024 * 1024

_LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address) only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_form(host: str) -> str:
    """``host`` as it appears in a Host header (IPv6 literals in brackets)."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def rebinding_protection(
    host: str, port: int, extra_hosts: Sequence[str] = ()
) -> TransportSecuritySettings:
    """Allow ``Host``/``Origin`` values naming the bound address, localhost or ``extra_hosts``.

    Args:
        host: The bind address.
        port: The bound port; 0 (any port) allows every port.
        extra_hosts: Further names clients use to reach the server (e.g. a DNS name).
    """
    wildcard = {"0.0.0.0", "::", "[::]"}
    names = [_host_form(h) for h in (host, *extra_hosts) if h not in wildcard]
    names += [name for name in _LOCAL_NAMES if name not in names]
    suffix = f":{port}" if port else ":*"
    hosts = [name + suffix for name in names]
    if port == 80:
        hosts += names
    origins = [f"{scheme}://{value}" for value in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def url_for(host: str, port: int) -> str:
    """The MCP endpoint's URL for a server bound to ``host``:``port``."""
    return f"http://{_host_form(host)}:{port}/mcp"


def create_http_app(
    server: MCPServer,
    reasoner: M2Reasoner,
    *,
    host: str,
    port: int,
    extra_hosts: Sequence[str] = (),
    max_request_bytes: int = MAX_REQUEST_BYTES,
) -> Starlette:
    """Build the streamable HTTP app serving ``server`` at ``/mcp``, plus ``/healthz``.

    Args:
        server: The MCP server from :func:`mcp_server.create_server`.
        reasoner: The service behind it, whose status ``/healthz`` reports.
        host: The bind address, for DNS-rebinding protection.
        port: The bound port, for DNS-rebinding protection.
        extra_hosts: Further Host names to accept.
        max_request_bytes: Largest request body accepted.
    """

    async def healthz(_: Request) -> Response:
        status = reasoner.status()
        code = 503 if status.state == "failed" else 200
        return Response(status.model_dump_json(), status_code=code, media_type="application/json")

    server.custom_route("/healthz", methods=["GET"], include_in_schema=False)(healthz)
    return server.streamable_http_app(
        streamable_http_path="/mcp",
        max_request_body_size=max_request_bytes,
        transport_security=rebinding_protection(host, port, extra_hosts),
        host=host,
    )


async def serve_http(app: Starlette, *, host: str, port: int) -> None:
    """Serve ``app`` with uvicorn until interrupted; uvicorn logs through ``logging`` (stderr)."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on")
    await uvicorn.Server(config).serve()
