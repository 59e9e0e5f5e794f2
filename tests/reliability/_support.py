"""Helpers for the reliability suites: result decoding, bounded waits, small images."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
from mcp.types import CallToolResult
from PIL import Image

from m2_tools import M2Reasoner

ReasonerFactory = Callable[..., M2Reasoner]

#: Upper bound of every wait in these suites; reaching it is a failure, never a pass.
WAIT_S = 15.0


def payload_of(result: CallToolResult) -> dict[str, Any]:
    """The JSON text of a tool result (success or error)."""
    assert len(result.content) == 1
    block = result.content[0]
    assert block.type == "text"
    data: dict[str, Any] = json.loads(block.text)
    return data


def error_code(result: CallToolResult) -> str:
    """The contract error code of an error result (fails on a success)."""
    assert result.is_error, payload_of(result)
    body = payload_of(result)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "retryable"}
    code: str = body["error"]["code"]
    return code


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await anyio.sleep(0.005)


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    """Blocking :func:`eventually`: True once ``predicate`` holds, False at the deadline."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.005)
    return True


def png_data_uri(
    width: int = 32, height: int = 24, color: tuple[int, int, int] = (200, 40, 40)
) -> str:
    """A small solid PNG as a data URI."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
