"""An independent client, the MCP Inspector CLI, lists and calls the tools."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from ._support import IMAGES, REPO, TINY_MODEL_ARGS, HttpServer, server_env

INSPECTOR = REPO / "node_modules" / ".bin" / "mcp-inspector"

pytestmark = pytest.mark.skipif(
    not INSPECTOR.exists(),
    reason="the MCP Inspector is not installed: run `npm ci` at the repository root",
)


def _inspect(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(INSPECTOR), "--cli", *args],
        cwd=REPO,
        env=server_env(),
        capture_output=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_inspector_lists_the_tools_over_stdio() -> None:
    server = [sys.executable, "-m", "m2_tools.cli", "serve", *TINY_MODEL_ARGS]

    listed = _inspect(*server, "--method", "tools/list")

    assert {tool["name"] for tool in listed["tools"]} == {"visual_math_reason", "spatial_reason"}
    for tool in listed["tools"]:
        assert tool["annotations"]["readOnlyHint"] is True
        assert tool["outputSchema"]["type"] == "object"


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("visual_math_reason", ["question=What is 2 + 2?", 'choices=["3", "4"]']),
        (
            "spatial_reason",
            ["question=How many chairs?", f"images={json.dumps([str(IMAGES / 'scene.jpg')])}"],
        ),
    ],
)
def test_inspector_calls_each_tool_over_http(
    http_server: HttpServer, tool: str, arguments: list[str]
) -> None:
    tool_args = [part for arg in [*arguments, "max_new_tokens=16"] for part in ("--tool-arg", arg)]

    result = _inspect(
        http_server.url,
        "--transport",
        "http",
        "--header",
        f"Authorization: Bearer {http_server.token}",
        "--method",
        "tools/call",
        "--tool-name",
        tool,
        *tool_args,
    )

    assert result.get("isError") is not True, result
    assert result["structuredContent"]["tool"] == tool
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
