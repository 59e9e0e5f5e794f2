"""Streamable HTTP: the ASGI app (``/mcp`` and ``/healthz``) and its uvicorn runner.

What guards the endpoint, all of it the SDK's own machinery configured here:

- bearer-token auth on ``/mcp`` when a token is set (see :func:`mcp_server.create_server`);
- a request body limit sized for base64 images (413 beyond it);
- DNS-rebinding protection: the ``Host`` and ``Origin`` headers must name the bound
  address or a localhost form (421 / 403 otherwise), on ``/mcp`` and ``/healthz`` alike.

``GET /healthz`` answers 200 while the model is idle, loading or ready and 503 once
loading failed. It needs no token, but only a caller who could read ``m2://status``
over ``/mcp`` (the bearer token, when one is set) gets the status details; anyone
else gets just ``{"state": ...}``.

Shutdown: the first SIGTERM or SIGINT ends the calls in flight with ``cancelled``,
waits until their responses are out, then stops uvicorn; the exit status is 0. A
closed response stream cancels its call (see :mod:`mcp_server._inflight`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence
from types import FrameType

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m2_tools.reasoner import M2Reasoner
from m2_tools.settings import Settings
from mcp_server._auth import StaticTokenVerifier
from mcp_server._inflight import DISCONNECTED, DRAIN_TIMEOUT_S, InFlight

__all__ = [
    "MAX_REQUEST_BYTES",
    "create_http_app",
    "is_loopback",
    "rebinding_protection",
    "serve_http",
    "url_for",
]

logger = logging.getLogger(__name__)

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
    settings: Settings | None = None,
    inflight: InFlight | None = None,
) -> Starlette:
    """Build the streamable HTTP app serving ``server`` at ``/mcp``, plus ``/healthz``.

    Args:
        server: The MCP server from :func:`mcp_server.create_server`.
        reasoner: The service behind it, whose status ``/healthz`` reports.
        host: The bind address, for DNS-rebinding protection.
        port: The bound port, for DNS-rebinding protection.
        extra_hosts: Further Host names to accept.
        max_request_bytes: Largest request body accepted.
        settings: Where the bearer token comes from; ``reasoner.settings`` when omitted.
        inflight: The server's calls in flight (as given to ``create_server``), so a
            graceful stop waits for their responses.
    """
    settings = settings if settings is not None else reasoner.settings
    security = rebinding_protection(host, port, extra_hosts)
    rebinding = TransportSecurityMiddleware(security)
    verifier = StaticTokenVerifier(settings.auth_token) if settings.auth_token else None

    async def healthz(request: Request) -> Response:
        refused = await rebinding.validate_request(request)
        if refused is not None:
            return refused
        status = reasoner.status()
        code = 503 if status.state == "failed" else 200
        if not await _may_read_status(request, verifier):
            return JSONResponse({"state": status.state}, status_code=code)
        return Response(status.model_dump_json(), status_code=code, media_type="application/json")

    server.custom_route("/healthz", methods=["GET"], include_in_schema=False)(healthz)
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        max_request_body_size=max_request_bytes,
        transport_security=security,
        host=host,
    )
    app.add_middleware(_CallerWatch, inflight=inflight if inflight is not None else InFlight())
    return app


async def _may_read_status(request: Request, verifier: StaticTokenVerifier | None) -> bool:
    """Whether the caller may read the details: it could read ``m2://status`` over ``/mcp``."""
    if verifier is None:
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and await verifier.verify_token(token) is not None


class _CallerWatch:
    """ASGI middleware: tells a call when its HTTP client went away, and counts POSTs.

    Each request's scope carries an :class:`anyio.Event` (under
    :data:`~mcp_server._inflight.DISCONNECTED`) set when the server receives
    ``http.disconnect``; the POSTs in progress are counted for a graceful stop.
    """

    def __init__(self, app: ASGIApp, inflight: InFlight) -> None:
        self._app = app
        self._inflight = inflight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        gone = anyio.Event()
        scope[DISCONNECTED] = gone

        async def watched() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            return message

        if scope.get("method") != "POST":
            await self._app(scope, watched, send)
            return
        with self._inflight.responding():
            await self._app(scope, watched, send)


async def serve_http(
    app: Starlette, *, host: str, port: int, inflight: InFlight | None = None
) -> None:
    """Serve ``app`` with uvicorn until SIGTERM or SIGINT; uvicorn logs to stderr.

    Args:
        app: The app from :func:`create_http_app`.
        host: The bind address.
        port: The port.
        inflight: The calls in flight to end with ``cancelled`` before stopping.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=DRAIN_TIMEOUT_S,
    )
    await _DrainingServer(config, inflight if inflight is not None else InFlight()).serve()


class _DrainingServer(uvicorn.Server):
    """uvicorn, except that a stop signal first ends the calls in flight, and exits with 0.

    uvicorn alone stops at once (its SSE streams close, so calls get a cut stream) and
    then raises the signal again, which ends the process by it (exit status 143).
    """

    def __init__(self, config: uvicorn.Config, inflight: InFlight) -> None:
        super().__init__(config)
        self._inflight = inflight
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: drain, then stop. A second one: stop now."""
        if self._loop is None or self._drain is not None:
            self.force_exit = self.should_exit
            self.should_exit = True
            return
        logger.info("signal %d: ending the calls in flight, then stopping", sig)
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        if self._drain is None:
            self._drain = asyncio.ensure_future(self._drain_then_stop())

    async def _drain_then_stop(self) -> None:
        try:
            await self._inflight.drain(DRAIN_TIMEOUT_S)
        finally:
            self.should_exit = True
