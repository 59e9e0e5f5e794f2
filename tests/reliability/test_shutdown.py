"""SIGTERM stops the server like SIGINT: calls in flight end with ``cancelled``, exit 0.

Real ``m2-tools serve`` processes on a tiny checkpoint that never stops on its own
(see ``_processes.py``), so the call is surely generating when the signal arrives.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from ._processes import (
    INITIALIZE,
    INITIALIZED,
    PROCESS_WAIT_S,
    HttpSession,
    StdioSession,
    endless_checkpoint,
    error_code_of,
    free_port,
    is_generating,
    long_call,
    request,
    serve_command,
    server_env,
    short_call,
    wait_until_healthy,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return endless_checkpoint(tmp_path_factory.mktemp("endless") / "checkpoint")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_over_stdio_cancels_the_call_in_flight_and_exits_0(
    checkpoint: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        session = StdioSession(serve_command(checkpoint), server_env(), stderr)
    try:
        session.send(INITIALIZE)
        session.receive_until(lambda message: message.get("id") == 1)
        session.send(INITIALIZED, long_call(2))
        session.receive_until(is_generating)

        session.process.send_signal(signum)
        replies = session.receive_until(lambda message: message.get("id") == 2)
        code = session.process.wait(timeout=PROCESS_WAIT_S)
    finally:
        session.stop()

    assert error_code_of(replies[-1]) == "cancelled"
    assert code == 0
    log = (tmp_path / "stderr.txt").read_text()
    assert "Traceback" not in log


def test_sigterm_over_http_cancels_the_call_in_flight_and_exits_0(
    checkpoint: Path, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = serve_command(checkpoint, "--transport", "http", "--port", str(port))
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(
            command, env=server_env(), stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
        )
    try:
        wait_until_healthy(base, process)
        session = HttpSession(f"{base}/mcp").open()
        reply: dict[str, object] = {}
        with session.stream(long_call(2)) as messages:
            for message in messages:
                if is_generating(message) and not reply:
                    process.send_signal(signal.SIGTERM)
                    reply["signalled"] = True
                if message.get("id") == 2:
                    reply = message
                    break
        code = process.wait(timeout=PROCESS_WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert error_code_of(reply) == "cancelled"
    assert code == 0
    log = (tmp_path / "stderr.txt").read_text()
    assert "Traceback" not in log


def test_a_cancel_over_stdio_gets_no_response_as_the_docs_say(
    checkpoint: Path, tmp_path: Path
) -> None:
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        session = StdioSession(serve_command(checkpoint), server_env(), stderr)
    try:
        session.send(INITIALIZE)
        session.receive_until(lambda message: message.get("id") == 1)
        session.send(INITIALIZED, long_call(2))
        session.receive_until(is_generating)
        cancel = {"requestId": 2, "reason": "the user gave up"}
        session.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel})
        session.send(request(3, "ping"))
        replies = session.receive_until(lambda message: message.get("id") == 3)
        session.send(short_call(4))
        after = session.receive_until(lambda message: message.get("id") == 4)
    finally:
        session.stop()

    assert all(message.get("id") != 2 for message in replies)
    assert "result" in after[-1] and after[-1]["result"]["isError"] is False
