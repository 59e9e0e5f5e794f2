"""``m2-tools serve`` as a real process over stdio: the native engine on the tiny checkpoint."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
from mcp import Client
from mcp.client.stdio import stdio_client

from mcp_server.server import STATUS_URI

from ._support import IMAGES, REPO, TINY_MODEL_ARGS, serve_command, server_env, stdio_params

CALL_TIMEOUT_S = 120.0


async def test_serves_both_tools_over_stdio_with_the_native_engine(tmp_path: Path) -> None:
    params = stdio_params(*TINY_MODEL_ARGS, "--allow-dir", str(IMAGES))
    with (tmp_path / "stderr.txt").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            math = await client.call_tool(
                "visual_math_reason",
                {
                    "question": "What is the side length of the rhombus?",
                    "images": [str(IMAGES / "rhombus.png")],
                    "choices": ["3", "4", "5", "6"],
                    "max_new_tokens": 16,
                },
                read_timeout_seconds=CALL_TIMEOUT_S,
            )
            spatial = await client.call_tool(
                "spatial_reason",
                {
                    "question": "Which object is closer to the camera?",
                    "images": [str(IMAGES / "scene.jpg")],
                    "max_new_tokens": 16,
                    "include_raw": True,
                },
                read_timeout_seconds=CALL_TIMEOUT_S,
            )
            status = json.loads((await client.read_resource(STATUS_URI)).contents[0].text)  # type: ignore[union-attr]

    for name, result in (("visual_math_reason", math), ("spatial_reason", spatial)):
        assert not result.is_error, result.content
        assert result.structured_content is not None
        jsonschema.validate(result.structured_content, tools[name].output_schema)
        assert result.structured_content["model"]["backend"].startswith("m2-native")
        assert result.structured_content["images"][0]["source"] == "path"
    assert "raw_output" in spatial.structured_content  # type: ignore[operator]
    assert status["state"] == "ready"


_NOISE = """
import os, sys, warnings

_done = set()

def _noise(event, args):
    # Why: libraries that print or warn while they load. mcp.server.mcpserver is imported
    # while `serve` sets up, torch while the model loads behind the SDK's transport.
    if event != "import" or args[0] not in ("mcp.server.mcpserver", "torch") or args[0] in _done:
        return
    _done.add(args[0])
    print(f"NOISE print during import of {args[0]}")
    sys.stdout.flush()
    os.write(1, f"NOISE fd-1 write during import of {args[0]}\\n".encode())
    warnings.warn(f"NOISE warning during import of {args[0]}")

sys.addaudithook(_noise)
"""


class _RawSession:
    """Newline-delimited JSON-RPC with a server process, reading stdout on a thread."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._process = process
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self.seen: list[bytes] = []
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stdout: Any) -> None:
        for line in stdout:
            self._lines.put(line)
        self._lines.put(None)

    def exchange(self, messages: list[dict[str, Any]]) -> None:
        """Send ``messages`` and wait for the response to the last one."""
        assert self._process.stdin is not None
        for message in messages:
            self._process.stdin.write(json.dumps(message).encode() + b"\n")
        self._process.stdin.flush()
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while True:
            line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "the server closed stdout early"
            self.seen.append(line)
            if json.loads(line).get("id") == messages[-1]["id"]:
                return

    def close(self) -> int:
        """Close stdin, collect the remaining stdout and return the exit code."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        code = self._process.wait(timeout=30)
        while (line := self._lines.get(timeout=30)) is not None:
            self.seen.append(line)
        return code


def test_stdout_carries_only_protocol_when_libraries_print_and_warn(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(_NOISE)
    stderr_path = tmp_path / "stderr.txt"
    env = server_env(PYTHONPATH=str(tmp_path))
    command = serve_command(*TINY_MODEL_ARGS, "--allow-dir", str(IMAGES))
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
        try:
            session = _RawSession(process)
            session.exchange(
                [
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "initialize",
                        "params": {
                            "protocolVersion": "2025-06-18",
                            "capabilities": {},
                            "clientInfo": {"name": "raw-test", "version": "0"},
                        },
                    },
                    {"jsonrpc": "2.0", "method": "notifications/initialized"},
                    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                    {
                        "jsonrpc": "2.0",
                        "id": 3,
                        "method": "tools/call",
                        "params": {
                            "name": "visual_math_reason",
                            "arguments": {"question": "What is 2 + 2?", "max_new_tokens": 16},
                        },
                    },
                ],
            )
            code = session.close()
        finally:
            process.kill()
            process.wait()
            assert process.stdout is not None
            process.stdout.close()

    replies = [json.loads(line) for line in session.seen]
    assert all(reply["jsonrpc"] == "2.0" for reply in replies)
    assert [reply["id"] for reply in replies] == [1, 2, 3]
    assert replies[2]["result"]["isError"] is False
    assert code == 0
    errors = stderr_path.read_text()
    for module in ("mcp.server.mcpserver", "torch"):
        assert f"NOISE print during import of {module}" in errors
        assert f"NOISE fd-1 write during import of {module}" in errors
        assert f"NOISE warning during import of {module}" in errors
