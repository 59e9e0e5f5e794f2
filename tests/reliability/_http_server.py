"""The streamable HTTP MCP app over a scripted engine, on 127.0.0.1 and a free port.

Imported by the tests to serve in a thread of the test process, and run as a script
(``python tests/reliability/_http_server.py --queue-size 8``) to serve from a
process of its own: it prints ``{"port": N}`` on stdout once its socket listens, and
stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import uvicorn

from m2_tools.engines.base import GenerationRequest, GenerationResult
from m2_tools.reasoner import M2Reasoner
from m2_tools.settings import Settings
from m2_tools.testing import ScriptedEngine
from mcp_server.http import create_http_app, url_for
from mcp_server.server import create_server

HOST = "127.0.0.1"


class UnrecordedEngine(ScriptedEngine):
    """The scripted engine without its record of past batches, for long runs.

    The record keeps every request, and with it the progress callbacks of finished
    calls; a long run would count that as the server's memory.
    """

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Answer like the scripted engine, then forget the batch."""
        try:
            return super().generate(requests)
        finally:
            self.calls.clear()

    def step(self) -> bool:
        """Step like the scripted engine, then forget the rows that joined."""
        try:
            return super().step()
        finally:
            self.calls.clear()


def bind_free_port() -> socket.socket:
    """A listening socket on 127.0.0.1 with a port the kernel chose."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    # Why: listening before uvicorn starts lets early clients queue instead of being refused.
    sock.listen(128)
    return sock


def build_server(reasoner: M2Reasoner, sock: socket.socket) -> uvicorn.Server:
    """A uvicorn server for the MCP app over ``reasoner``, to be served on ``sock``."""
    port = sock.getsockname()[1]
    app = create_http_app(create_server(reasoner), reasoner, host=HOST, port=port)
    config = uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


@contextmanager
def serve_in_thread(reasoner: M2Reasoner, *, start_timeout: float = 20.0) -> Iterator[str]:
    """Serve ``reasoner`` over streamable HTTP from a thread; yield the ``/mcp`` URL."""
    sock = bind_free_port()
    server = build_server(reasoner, sock)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the test below, not lost in the thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    tick = threading.Event()
    while not server.started:
        if failure or not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the HTTP server did not start: {failure!r}")
        tick.wait(0.01)
    try:
        yield url_for(HOST, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        if failure:
            raise RuntimeError(f"the HTTP server failed: {failure!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue-size", type=int, default=8)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--token-delay-s", type=float, default=0.001)
    parser.add_argument("--clients", type=int, default=20, help="reply per '[client N]' tag")
    args = parser.parse_args(argv)
    # Each client's question carries its tag, and the answer is the client's number: a
    # result delivered to the wrong client would show.
    replies = {
        f"[client {n}]": f"<think>\nclient {n} asks\n</think>\n<answer>\\boxed{{{n}}}</answer>"
        for n in range(args.clients)
    }
    engine = UnrecordedEngine(by_question=replies, token_delay_s=args.token_delay_s)
    settings = Settings(
        model="scripted",
        allowed_dirs=(),
        queue_size=args.queue_size,
        max_batch_size=args.max_batch_size,
        cache_size=0,
    )
    reasoner = M2Reasoner(settings, engine=engine)
    sock = bind_free_port()
    server = build_server(reasoner, sock)
    sys.stdout.write(json.dumps({"port": sock.getsockname()[1]}) + "\n")
    sys.stdout.flush()
    try:
        server.run(sockets=[sock])
    finally:
        reasoner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
