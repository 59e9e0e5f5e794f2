"""Helpers for the MCP server tests: in-memory clients, result decoding, bounded waits."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult
from PIL import Image

from m2_tools import M2Reasoner
from mcp_server import create_server

ReasonerFactory = Callable[..., M2Reasoner]

WAIT_S = 10.0


@asynccontextmanager
async def connect(reasoner: M2Reasoner, **options: Any) -> AsyncIterator[Client]:
    """An in-memory client of a server over ``reasoner`` (``options`` go to ``create_server``)."""
    mode = options.pop("mode", "auto")
    async with Client(create_server(reasoner, **options), mode=mode) as client:
        yield client


def payload_of(result: CallToolResult) -> dict[str, Any]:
    """The JSON text of a result (success or error)."""
    assert len(result.content) == 1
    block = result.content[0]
    assert block.type == "text"
    data: dict[str, Any] = json.loads(block.text)
    return data


def error_of(result: CallToolResult) -> dict[str, Any]:
    """The contract error body of an error result."""
    assert result.is_error, payload_of(result)
    assert result.structured_content is None
    body = payload_of(result)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "retryable"}
    error: dict[str, Any] = body["error"]
    return error


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Wait until ``predicate()`` holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await anyio.sleep(0.005)


def png_data_uri(width: int = 40, height: int = 30) -> str:
    """A small PNG as a data URI."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# ---- real server processes ---------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "m2-tiny-reference"
CHECKPOINT = FIXTURE / "checkpoint"
IMAGES = FIXTURE / "images"
TINY_MODEL_ARGS = ["--model", str(CHECKPOINT), "--device", "cpu", "--dtype", "float32"]


def serve_command(*options: str) -> list[str]:
    """The command line of ``m2-tools serve`` run by this interpreter."""
    return [sys.executable, "-m", "m2_tools.cli", "serve", *options]


def server_env(**extra: str) -> dict[str, str]:
    """The environment for a server process: no ``M2_*`` settings leak in, no hub traffic."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("M2_")}
    env.update(HF_HUB_OFFLINE="1", **extra)
    return env


def stdio_params(*options: str, **env: str) -> StdioServerParameters:
    """Parameters to launch ``m2-tools serve`` over stdio from the repository root."""
    command, *args = serve_command(*options)
    return StdioServerParameters(command=command, args=args, env=server_env(**env), cwd=REPO)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class HttpServer:
    """A running ``m2-tools serve --transport http`` process."""

    base: str
    url: str
    token: str
    port: int
