"""Streamable HTTP on the 2025-06-18 wire: a caller that goes away, or cancels, frees its slot.

On this wire a call's result travels on its POST's event stream; with no event store it
can never be delivered once that stream is closed, so the call is cancelled. A real
``m2-tools serve --transport http`` process runs on a tiny checkpoint that never stops on
its own (see ``_processes.py``), one row at a time: a call left running would hold the
only slot for minutes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from ._processes import (
    HttpSession,
    Message,
    endless_checkpoint,
    free_port,
    is_generating,
    long_call,
    notification,
    queue_depth,
    serve_command,
    server_env,
    short_call,
    wait_until_healthy,
)
from ._support import WAIT_S, wait_for


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    checkpoint = endless_checkpoint(tmp_path_factory.mktemp("endless") / "checkpoint")
    port = free_port()
    command = serve_command(checkpoint, "--transport", "http", "--port", str(port))
    log = tmp_path_factory.mktemp("server") / "stderr.txt"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            command, env=server_env(), stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def _generation_started(messages: Iterator[Message]) -> None:
    for message in messages:
        if is_generating(message):
            return
    raise AssertionError("the call ended before it generated a token")


def test_a_caller_that_disconnects_mid_call_frees_its_slot(base: str) -> None:
    session = HttpSession(f"{base}/mcp").open()
    with session.stream(long_call(2)) as messages:
        _generation_started(messages)
    # Leaving the block closed the connection without notifications/cancelled.

    assert wait_for(lambda: queue_depth(base) == 0, WAIT_S), "the call kept its slot"
    reply = session.call(short_call(3), timeout=WAIT_S)
    assert reply["result"]["isError"] is False


def test_a_cancel_on_this_wire_is_answered_with_request_cancelled(base: str) -> None:
    # docs/mcp.md: on streamable HTTP the SDK ends the cancelled request's stream with
    # JSON-RPC error -32800 (over stdio no response follows).
    session = HttpSession(f"{base}/mcp").open()
    with session.stream(long_call(4)) as messages:
        _generation_started(messages)
        session.notify(notification("notifications/cancelled", {"requestId": 4}))
        reply = next(message for message in messages if message.get("id") == 4)

    assert reply["error"]["code"] == -32800
    assert wait_for(lambda: queue_depth(base) == 0, WAIT_S)


def test_another_sessions_call_starts_promptly_after_a_disconnect(base: str) -> None:
    first, second = HttpSession(f"{base}/mcp").open(), HttpSession(f"{base}/mcp").open()
    with first.stream(long_call(5)) as messages:
        _generation_started(messages)

    # The only slot would otherwise stay taken for minutes.
    reply = second.call(short_call(6), timeout=WAIT_S)

    assert reply["result"]["isError"] is False
