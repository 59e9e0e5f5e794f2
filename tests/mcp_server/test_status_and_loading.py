"""The model loads in the background; ``m2://status`` shows idle, loading, ready or failed."""

from __future__ import annotations

import json
import threading
from typing import Any

import anyio
from mcp import Client

from m2_tools.testing import ScriptedEngine
from mcp_server import create_server
from mcp_server.server import STATUS_URI

from ._support import WAIT_S, ReasonerFactory, connect, eventually


async def _status(client: Client) -> dict[str, Any]:
    result = await client.read_resource(STATUS_URI)
    (contents,) = result.contents
    assert contents.mime_type == "application/json"
    status: dict[str, Any] = json.loads(contents.text)  # type: ignore[union-attr]
    return status


async def test_status_resource_is_listed(make_reasoner: ReasonerFactory) -> None:
    async with connect(make_reasoner()) as client:
        listed = await client.list_resources()

    assert [str(resource.uri) for resource in listed.resources] == [STATUS_URI]


async def test_answers_before_the_model_loads_then_shows_loading_then_ready(
    make_reasoner: ReasonerFactory,
) -> None:
    gate = threading.Event()
    reasoner = make_reasoner(engine=ScriptedEngine(load_gate=gate))
    try:
        async with connect(reasoner) as client:
            tools = await client.list_tools()
            await eventually(lambda: reasoner.status().state == "loading")
            loading = await _status(client)
            gate.set()
            assert await anyio.to_thread.run_sync(reasoner.wait_until_loaded, WAIT_S)
            ready = await _status(client)
            result = await client.call_tool("visual_math_reason", {"question": "q"})
    finally:
        gate.set()

    assert len(tools.tools) == 2
    assert loading["state"] == "loading"
    assert loading["model"] == "scripted"
    assert ready["state"] == "ready"
    assert ready["device"] == "cpu"
    assert ready["queue_depth"] == 0
    assert not result.is_error


async def test_call_during_loading_waits_for_the_model(make_reasoner: ReasonerFactory) -> None:
    gate = threading.Event()
    reasoner = make_reasoner(engine=ScriptedEngine(load_gate=gate))
    results: list[Any] = []
    try:
        async with (
            connect(reasoner, load_on_start=False) as client,
            anyio.create_task_group() as tg,
        ):

            async def call() -> None:
                results.append(await client.call_tool("visual_math_reason", {"question": "q"}))

            tg.start_soon(call)
            await eventually(lambda: reasoner.status().state == "loading")
            assert not results
            gate.set()
    finally:
        gate.set()

    assert not results[0].is_error


async def test_failed_load_shows_failed_with_the_reason(make_reasoner: ReasonerFactory) -> None:
    reasoner = make_reasoner(engine=ScriptedEngine(load_error=OSError("no such file: shard 2")))
    async with connect(reasoner) as client:
        await anyio.to_thread.run_sync(reasoner.wait_until_loaded, WAIT_S)
        status = await _status(client)
        tools = await client.list_tools()

    assert status["state"] == "failed"
    assert "no such file: shard 2" in status["reason"]
    assert len(tools.tools) == 2


async def test_lazy_server_loads_on_the_first_call(make_reasoner: ReasonerFactory) -> None:
    reasoner = make_reasoner()
    async with connect(reasoner, load_on_start=False) as client:
        idle = await _status(client)
        result = await client.call_tool("visual_math_reason", {"question": "q"})
        ready = await _status(client)

    assert idle["state"] == "idle"
    assert not result.is_error
    assert ready["state"] == "ready"


async def test_server_starts_loading_once_idle_after_it_starts(
    make_reasoner: ReasonerFactory,
) -> None:
    reasoner = make_reasoner()
    server = create_server(reasoner)
    assert reasoner.status().state == "idle"
    async with Client(server):
        await eventually(lambda: reasoner.status().state == "ready")
