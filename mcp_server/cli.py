"""``m2-tools serve``: the MCP server over stdio (default) or streamable HTTP.

Exit codes: 0 after a clean stop (stdin closed, or SIGTERM/SIGINT: the calls in
flight end with ``cancelled`` and the engine is closed first), 2 for a configuration
error (bad option, a blank ``M2_AUTH_TOKEN``, or a non-loopback HTTP bind without a
bearer token).
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import nullcontext, suppress

from m2_tools.cli.options import add_model_options, configure_logging, settings_from_args
from m2_tools.settings import ENV_VARS, Settings
from mcp_server._stdio import StdoutGuard

__all__ = ["HELP", "add_arguments", "run"]

HELP = "Run the MCP server (stdio by default, or streamable HTTP)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser``."""
    parser.add_argument(
        "--transport", choices=["stdio", "http"], default="stdio", help="Default: stdio."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)."
    )
    parser.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765).")
    parser.add_argument(
        "--lazy-load",
        action="store_true",
        help="Load the model on the first call instead of right after start.",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="HTTP: a further Host name clients use to reach the server (DNS-rebinding "
        "protection accepts the bind address and localhost forms); repeatable.",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="HTTP: allow binding a non-loopback address without M2_AUTH_TOKEN.",
    )
    add_model_options(parser)


def run(args: argparse.Namespace) -> int:
    """Serve until stdin closes (stdio) or the process is interrupted (HTTP)."""
    guard = StdoutGuard() if args.transport == "stdio" else nullcontext()
    with guard:
        try:
            settings = _settings(args)
        except ValueError as exc:
            return _refuse(f"invalid option: {exc}")
        configure_logging(settings.log_level)
        if args.transport == "http":
            problem = _http_problem(args, settings)
            if problem:
                return _refuse(problem)
        with suppress(KeyboardInterrupt):
            _serve(args, settings, guard)
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    extra = {}
    local_files_configured = args.allow_dir or os.environ.get(ENV_VARS["allowed_dirs"])
    if args.transport == "http" and not local_files_configured:
        # Why: a remote caller must not read the server's files unless the operator says so.
        extra["allowed_dirs"] = ()
    return settings_from_args(args, **extra)


def _http_problem(args: argparse.Namespace, settings: Settings) -> str | None:
    from mcp_server.http import is_loopback

    if not 0 <= args.port <= 65535:
        return f"--port must be between 0 and 65535, not {args.port}"
    if settings.auth_token is not None and not settings.auth_token.strip():
        # Why: a blank token is no secret, yet it would count as "authentication is on".
        return "M2_AUTH_TOKEN is set but blank; set a real secret, or unset it"
    if settings.auth_token or is_loopback(args.host) or args.insecure_no_auth:
        return None
    return (
        f"refusing to serve on {args.host!r} without authentication: set M2_AUTH_TOKEN "
        "(clients then send 'Authorization: Bearer <token>'), bind 127.0.0.1, or pass "
        "--insecure-no-auth if another layer authenticates callers"
    )


def _serve(
    args: argparse.Namespace, settings: Settings, guard: StdoutGuard | nullcontext[None]
) -> None:
    # Local imports: argument errors stay fast, and the SDK loads only when serving.
    import anyio

    from m2_tools.reasoner import M2Reasoner
    from mcp_server._inflight import InFlight
    from mcp_server.server import create_server

    reasoner = M2Reasoner(settings)
    inflight = InFlight()
    try:
        server = create_server(
            reasoner, settings=settings, load_on_start=not args.lazy_load, inflight=inflight
        )
        if isinstance(guard, StdoutGuard):
            from mcp_server.stdio import serve_stdio

            with guard.handed_to_transport():
                anyio.run(serve_stdio, server, inflight, reasoner.close)
            return
        from mcp_server.http import create_http_app, serve_http, url_for

        app = create_http_app(
            server,
            reasoner,
            host=args.host,
            port=args.port,
            extra_hosts=args.allow_host,
            settings=settings,
            inflight=inflight,
        )
        sys.stderr.write(f"m2-tools: serving MCP at {url_for(args.host, args.port)}\n")
        anyio.run(lambda: serve_http(app, host=args.host, port=args.port, inflight=inflight))
    finally:
        reasoner.close()


def _refuse(message: str) -> int:
    sys.stderr.write(f"m2-tools serve: {message}\n")
    return 2
