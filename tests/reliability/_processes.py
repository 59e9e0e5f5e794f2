"""Real ``m2-tools serve`` processes on a tiny checkpoint that never stops on its own.

The shutdown and disconnect suites need a call that is surely still generating when
they act. The fixture checkpoint's random weights end most answers within a few
hundred tokens, so :func:`endless_checkpoint` copies it with the output rows of the
stop tokens zeroed: their logit is then 0 while the largest of the 576 others is
positive, so greedy decoding runs to ``max_new_tokens``.

The clients speak the 2025-06-18 wire by hand (newline-delimited JSON-RPC on stdio;
POSTs with a session id and SSE replies on streamable HTTP), so a test controls
exactly when it disconnects or signals.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from safetensors.numpy import load_file, save_file

REPO = Path(__file__).resolve().parents[2]
CHECKPOINT = REPO / "tests" / "fixtures" / "m2-tiny-reference" / "checkpoint"
PROTOCOL = "2025-06-18"
#: Bound of every wait on a server process (loading the tiny model included).
PROCESS_WAIT_S = 120.0
#: A budget far beyond what the tests wait for: the call is cut off long before.
ENDLESS_TOKENS = 4000
_STOP_TOKENS = ("<|endoftext|>", "<|im_end|>")
_HEAD = "language_model.lm_head.weight"

Message = dict[str, Any]


def endless_checkpoint(target: Path) -> Path:
    """Copy the fixture checkpoint to ``target`` with its stop tokens made unreachable."""
    shutil.copytree(CHECKPOINT, target)
    for path in target.iterdir():
        path.chmod(0o644)
    added = json.loads((target / "added_tokens.json").read_text())
    shard = (
        target
        / json.loads((target / "model.safetensors.index.json").read_text())["weight_map"][_HEAD]
    )
    tensors = load_file(shard)
    for name in _STOP_TOKENS:
        tensors[_HEAD][added[name]] = 0.0
    save_file(tensors, shard, metadata={"format": "pt"})
    return target


def serve_command(checkpoint: Path, *options: str) -> list[str]:
    """``m2-tools serve`` on ``checkpoint`` (CPU, float32), run by this interpreter."""
    model = ["--model", str(checkpoint), "--device", "cpu", "--dtype", "float32"]
    return [sys.executable, "-m", "m2_tools.cli", "serve", *model, *options]


def server_env(**extra: str) -> dict[str, str]:
    """No ``M2_*`` settings leak in, no hub traffic; one row at a time, no cache."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("M2_")}
    env.update(HF_HUB_OFFLINE="1", M2_MAX_BATCH_SIZE="1", M2_CACHE_SIZE="0", **extra)
    return env


def request(request_id: int, method: str, params: Message | None = None) -> Message:
    """A JSON-RPC request."""
    message: Message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: Message | None = None) -> Message:
    """A JSON-RPC notification."""
    message: Message = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


INITIALIZE = request(
    1,
    "initialize",
    {
        "protocolVersion": PROTOCOL,
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
)
INITIALIZED = notification("notifications/initialized")


def long_call(request_id: int, question: str = "Count the chairs.") -> Message:
    """A ``visual_math_reason`` call with a progress token that generates for minutes."""
    arguments = {"question": question, "max_new_tokens": ENDLESS_TOKENS}
    params = {"name": "visual_math_reason", "arguments": arguments}
    return request(request_id, "tools/call", {**params, "_meta": {"progressToken": "p"}})


def short_call(request_id: int) -> Message:
    """A ``visual_math_reason`` call that ends after 16 tokens."""
    arguments = {"question": "What is 2 + 2?", "max_new_tokens": 16}
    return request(request_id, "tools/call", {"name": "visual_math_reason", "arguments": arguments})


def is_generating(message: Message) -> bool:
    """A progress notification from the token phase (values of 1 and above)."""
    return (
        message.get("method") == "notifications/progress"
        and float(message["params"]["progress"]) >= 1
    )


def error_code_of(message: Message) -> str:
    """The contract error code of a tool result message (fails on a success)."""
    result = message["result"]
    assert result["isError"] is True, result
    code: str = json.loads(result["content"][0]["text"])["error"]["code"]
    return code


class StdioSession:
    """A server process on stdio; stdout is read line by line on a thread."""

    def __init__(self, command: list[str], env: dict[str, str], stderr: IO[bytes]) -> None:
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, *messages: Message) -> None:
        """Write ``messages`` to the server's stdin."""
        assert self.process.stdin is not None
        for message in messages:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def receive(self, timeout: float = PROCESS_WAIT_S) -> Message:
        """The next message from the server; fails when it closes stdout or is silent."""
        line = self._lines.get(timeout=timeout)
        assert line is not None, "the server closed stdout"
        message: Message = json.loads(line)
        return message

    def receive_until(self, wanted: Any, timeout: float = PROCESS_WAIT_S) -> list[Message]:
        """Messages up to and including the first for which ``wanted(message)`` holds."""
        deadline = time.monotonic() + timeout
        seen: list[Message] = []
        while not seen or not wanted(seen[-1]):
            seen.append(self.receive(max(0.1, deadline - time.monotonic())))
        return seen

    def stop(self) -> None:
        """End the process if it still runs (a failed test must not leave it behind)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=PROCESS_WAIT_S)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@dataclass
class HttpSession:
    """One MCP session on the 2025-06-18 streamable HTTP wire, spoken with plain httpx."""

    url: str
    id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        """What every POST of the session carries."""
        headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": PROTOCOL,
        }
        if self.id:
            headers["Mcp-Session-Id"] = self.id
        return headers

    def open(self) -> HttpSession:
        """Initialize the session."""
        with httpx.Client(timeout=PROCESS_WAIT_S) as http:
            answered = http.post(self.url, json=INITIALIZE, headers=self.headers)
            answered.raise_for_status()
            self.id = answered.headers["mcp-session-id"]
            http.post(self.url, json=INITIALIZED, headers=self.headers).raise_for_status()
        return self

    def notify(self, message: Message) -> None:
        """POST a notification (answered 202)."""
        with httpx.Client(timeout=PROCESS_WAIT_S) as http:
            http.post(self.url, json=message, headers=self.headers).raise_for_status()

    @contextmanager
    def stream(
        self, message: Message, timeout: float = PROCESS_WAIT_S
    ) -> Iterator[Iterator[Message]]:
        """POST a request on a connection of its own; yield the messages of its SSE reply.

        Leaving the block early closes the connection: the client has gone away.
        """
        with (
            httpx.Client(timeout=httpx.Timeout(timeout)) as http,
            http.stream("POST", self.url, json=message, headers=self.headers) as response,
        ):
            response.raise_for_status()
            yield _sse_messages(response.iter_lines())

    def call(self, message: Message, timeout: float = PROCESS_WAIT_S) -> Message:
        """POST a request and return its reply; fail when no byte comes for ``timeout`` s."""
        with self.stream(message, timeout) as messages:
            for received in messages:
                if received.get("id") == message["id"]:
                    return received
        raise AssertionError(f"the stream ended without a reply to {message['id']}")


def _sse_messages(lines: Iterator[str]) -> Iterator[Message]:
    for line in lines:
        if line.startswith("data:") and line[5:].strip():
            message: Message = json.loads(line[5:])
            yield message


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    """Wait for ``GET /healthz`` to answer 200; fail if the process ends or is too slow."""
    deadline = time.monotonic() + PROCESS_WAIT_S
    pause = threading.Event()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited early with {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        pause.wait(0.05)  # polling a process we do not control, within a deadline
    raise AssertionError(f"the server did not answer within {PROCESS_WAIT_S} s")


def queue_depth(base: str) -> int:
    """The server's queue depth, from ``/healthz`` (no token is configured)."""
    depth: int = httpx.get(f"{base}/healthz", timeout=10).json()["queue_depth"]
    return depth
