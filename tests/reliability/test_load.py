"""Load over streamable HTTP: many clients, a small queue, nothing lost, no memory kept.

The server runs in a process of its own (``_http_server.py``: the MCP HTTP app of
``m2-tools serve --transport http`` over a scripted engine with a per-token delay and
a queue of 8), so its memory can be read from ``/proc`` without the clients' in it.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client

from ._support import WAIT_S, wait_for

SERVER_SCRIPT = Path(__file__).with_name("_http_server.py")
REPO_ROOT = Path(__file__).parents[2]
QUEUE_SIZE = 8
#: The longest one call may take before it counts as hung (queue + 8-row batches).
CALL_LIMIT_S = 30.0
#: Memory the server may keep after a measured round, beyond what the warm-up left.
RSS_TOLERANCE_KB = 4 * 1024

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc"
)


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def status(self) -> dict[str, object]:
        response = httpx.get(self.url.removesuffix("/mcp") + "/healthz", timeout=WAIT_S)
        response.raise_for_status()
        data: dict[str, object] = response.json()
        return data


@dataclass
class Tally:
    sent: int = 0
    ok: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    wrong_answers: list[tuple[int, object]] = field(default_factory=list)

    @property
    def settled(self) -> int:
        return sum(self.outcomes.values())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [
            *(sys.executable, str(SERVER_SCRIPT)),
            *("--queue-size", str(QUEUE_SIZE), "--token-delay-s", "0.001", "--clients", "20"),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        # The working tree first, whatever the installed copy is.
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *_python_path()])},
    )
    try:
        port = _read_port(process)
        yield Server(process, f"http://127.0.0.1:{port}/mcp")
        process.terminate()
        # uvicorn shuts down gracefully on SIGTERM, then exits by that signal.
        assert process.wait(WAIT_S) in (0, -signal.SIGTERM), (tmp_path / "server.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(WAIT_S)
        assert process.stdout is not None
        process.stdout.close()
        log.close()


def _python_path() -> list[str]:
    return [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


def _read_port(process: subprocess.Popen[str]) -> int:
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    if not lines or not lines[0]:
        raise AssertionError(f"the server did not start (exit code {process.poll()})")
    port: int = json.loads(lines[0])["port"]
    return port


async def run_clients(url: str, clients: int, calls_each: int) -> Tally:
    """``clients`` concurrent sessions, each making ``calls_each`` calls one after another."""
    tally = Tally()

    async def client(number: int) -> None:
        async with Client(url, read_timeout_seconds=CALL_LIMIT_S) as session:
            for turn in range(calls_each):
                tally.sent += 1
                arguments = {"question": f"[client {number}] turn {turn}", "max_new_tokens": 64}
                with anyio.fail_after(CALL_LIMIT_S):
                    result = await session.call_tool("visual_math_reason", arguments)
                body = json.loads(result.content[0].text)  # type: ignore[union-attr]
                if not result.is_error:
                    tally.outcomes["ok"] += 1
                    if body["value"] != number:
                        tally.wrong_answers.append((number, body["value"]))
                else:
                    tally.outcomes[body["error"]["code"]] += 1

    async with anyio.create_task_group() as tg:
        for number in range(clients):
            tg.start_soon(client, number)
    return tally


def check_round(server: Server, tally: Tally, calls: int) -> None:
    assert tally.sent == calls
    assert tally.settled == calls, f"lost calls: {tally}"
    assert set(tally.outcomes) <= {"ok", "busy"}, tally.outcomes
    assert tally.outcomes["ok"] > 0
    assert tally.wrong_answers == []
    assert wait_for(lambda: server.status()["queue_depth"] == 0)


async def test_twenty_clients_get_a_result_or_busy_and_memory_returns(server: Server) -> None:
    warm_up = await run_clients(server.url, clients=20, calls_each=5)
    check_round(server, warm_up, 100)
    before = server.rss_kb()

    measured = await run_clients(server.url, clients=20, calls_each=10)
    check_round(server, measured, 200)
    after = server.rss_kb()

    assert after - before <= RSS_TOLERANCE_KB, f"RSS grew from {before} kB to {after} kB"
    status = server.status()
    assert status["state"] == "ready" and status["queue_capacity"] == QUEUE_SIZE


@pytest.mark.slow
async def test_memory_stays_flat_over_many_rounds(server: Server) -> None:
    check_round(server, await run_clients(server.url, clients=20, calls_each=10), 200)
    before = server.rss_kb()
    for _ in range(10):
        check_round(server, await run_clients(server.url, clients=20, calls_each=10), 200)
    after = server.rss_kb()

    assert after - before <= RSS_TOLERANCE_KB, f"RSS grew from {before} kB to {after} kB"
