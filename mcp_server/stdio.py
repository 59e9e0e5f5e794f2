"""Serving on stdio, with a graceful stop on SIGTERM and SIGINT.

:func:`serve_stdio` serves until stdin closes. The first SIGTERM or SIGINT ends the
calls in flight with ``cancelled``, lets their results reach the client, closes the
engine and ends the process with status 0. A second signal ends it at once.
(:mod:`mcp_server._stdio` keeps stdout for the protocol meanwhile.)

Why the process ends itself: the SDK reads stdin on a worker thread that no
cancellation reaches, so while the client keeps stdin open the transport could never
finish; once the results are out and the engine is closed, nothing is left to do.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

import anyio
from mcp.server.mcpserver import MCPServer

from mcp_server._inflight import DRAIN_TIMEOUT_S, InFlight

__all__ = ["serve_stdio"]

logger = logging.getLogger(__name__)

# The SDK writes a result to stdout from its own task after the call returns; this
# leaves it time to finish before the process ends.
_WRITE_GRACE_S = 0.2


async def serve_stdio(server: MCPServer, inflight: InFlight, close: Callable[[], None]) -> None:
    """Serve ``server`` on stdio until stdin closes (then return) or a stop signal (then exit).

    Args:
        server: The MCP server.
        inflight: Its calls in flight (as given to ``create_server``).
        close: Releases the engine; called before the process ends on a signal (the
            caller calls it itself after a normal return).
    """
    if sys.platform == "win32":  # pragma: no cover - no POSIX signals to receive there
        await server.run_stdio_async()
        return
    async with anyio.create_task_group() as tasks:

        async def serve() -> None:
            await server.run_stdio_async()
            tasks.cancel_scope.cancel()

        async def drain_then_exit(signum: int) -> None:
            logger.info("signal %d: ending the calls in flight, then stopping", signum)
            had_calls = inflight.calls > 0
            await inflight.drain(DRAIN_TIMEOUT_S)
            if had_calls:
                await anyio.sleep(_WRITE_GRACE_S)
            await anyio.to_thread.run_sync(close)
            _exit(0)

        tasks.start_soon(serve)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                if inflight.stopping:
                    logger.warning("signal %d again: stopping now", signum)
                    _exit(0)
                inflight.stop()
                tasks.start_soon(drain_then_exit, signum)


def _exit(status: int) -> NoReturn:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(status)
