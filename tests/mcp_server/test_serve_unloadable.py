"""A model that cannot load: the server still answers at once, and calls get model_unavailable."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import stdio_client

from mcp_server.server import STATUS_URI

from ._support import stdio_params

#: Generous bound for "promptly": loading fails only after torch is imported, which takes
#: seconds on a busy CPU.
FAILURE_WITHIN_S = 60.0


@pytest.mark.parametrize(
    "model",
    [
        pytest.param("inclusionAI/M2-Reasoning", id="hub-id-offline"),
        pytest.param("{tmp}/no-such-model", id="missing-directory"),
    ],
)
async def test_unloadable_model_lists_tools_at_once_and_calls_fail_with_model_unavailable(
    tmp_path: Path, model: str
) -> None:
    params = stdio_params("--model", model.format(tmp=tmp_path), "--device", "cpu")
    with (tmp_path / "stderr.txt").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            started = time.perf_counter()
            tools = await client.list_tools()
            listed_in = time.perf_counter() - started

            started = time.perf_counter()
            result = await client.call_tool(
                "visual_math_reason", {"question": "q"}, read_timeout_seconds=FAILURE_WITHIN_S
            )
            failed_in = time.perf_counter() - started
            status = json.loads((await client.read_resource(STATUS_URI)).contents[0].text)  # type: ignore[union-attr]
            again = await client.list_tools()

    assert len(tools.tools) == 2
    assert listed_in < 1.0
    assert result.is_error
    error = json.loads(result.content[0].text)["error"]  # type: ignore[union-attr]
    assert error["code"] == "model_unavailable"
    assert error["retryable"] is False
    assert failed_in < FAILURE_WITHIN_S
    assert status["state"] == "failed"
    assert status["reason"]
    assert len(again.tools) == 2
    # Server paths stay in the server's log: not in the message, not in the status.
    for server_path in (str(tmp_path), str(Path.home())):
        assert server_path not in error["message"]
        assert server_path not in json.dumps(status)
