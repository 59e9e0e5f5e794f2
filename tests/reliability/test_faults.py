"""Faults over streamable HTTP: a raising engine, a hanging engine, vanishing clients, a dead model.

Each test serves the real MCP HTTP app (the one ``m2-tools serve --transport http``
runs) from a thread on 127.0.0.1, over a scripted engine, and talks to it with the
SDK's client or raw HTTP.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.types import CallToolResult

from m2_tools import M2Reasoner
from m2_tools.errors import ModelUnavailable
from m2_tools.testing import ScriptedEngine, ScriptedReply
from mcp_server.server import STATUS_URI

from ._http_server import serve_in_thread
from ._support import WAIT_S, ReasonerFactory, error_code, eventually, payload_of

MODERN_VERSION = "2026-07-28"


@asynccontextmanager
async def http_client(
    reasoner: M2Reasoner, mode: str = "auto"
) -> AsyncIterator[tuple[Client, str]]:
    """An SDK client connected over HTTP to a server over ``reasoner``, and the server's URL."""
    with serve_in_thread(reasoner) as url:
        async with Client(url, mode=mode, read_timeout_seconds=WAIT_S) as client:
            yield client, url


async def call(client: Client, question: str, **arguments: Any) -> CallToolResult:
    with anyio.fail_after(WAIT_S):
        return await client.call_tool("visual_math_reason", {"question": question, **arguments})


def health(url: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(url.removesuffix("/mcp") + "/healthz", timeout=WAIT_S)
    return response.status_code, response.json()


async def test_engine_raising_while_rows_join_fails_those_rows_and_the_server_goes_on(
    make_reasoner: ReasonerFactory,
) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(
        generate_gate=gate,
        by_question={
            "[boom]": ScriptedReply(raise_in_batch=RuntimeError("CUDA error: device-side"))
        },
    )
    reasoner = make_reasoner(engine, cache_size=0)
    results: dict[str, CallToolResult] = {}

    async def run(question: str) -> None:
        results[question] = await call(client, question)

    async with http_client(reasoner) as (client, _):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "hold")
            await eventually(lambda: len(engine.calls) == 1)
            for question in ("[a]", "[boom]", "[b]"):
                tg.start_soon(run, question)
            # The three have reached the engine and wait to join the running batch together.
            await eventually(lambda: engine.waiting == 3)
            gate.set()
        after = await call(client, "after")

    assert [len(batch) for batch in engine.calls] == [1, 3, 1]
    assert not results["hold"].is_error
    assert [error_code(results[q]) for q in ("[a]", "[boom]", "[b]")] == ["internal"] * 3
    assert "CUDA" not in results["[boom]"].content[0].text  # type: ignore[union-attr]
    assert not after.is_error and payload_of(after)["answer"] == "42"


async def test_hanging_engine_times_out_and_frees_the_slot(make_reasoner: ReasonerFactory) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate)
    reasoner = make_reasoner(engine, queue_size=1, request_timeout_s=0.5, cache_size=0)
    try:
        async with http_client(reasoner) as (client, url):
            hung = await call(client, "hang")
            (row,) = engine.requests
            assert row.cancel is not None and row.cancel.is_set()
            await eventually(lambda: reasoner.status().queue_depth == 0)
            code, status = await anyio.to_thread.run_sync(health, url)

            gate.set()
            after = await call(client, "after")
    finally:
        gate.set()

    body = json.loads(hung.content[0].text)  # type: ignore[union-attr]
    assert body["error"]["code"] == "timeout" and body["error"]["retryable"] is True
    assert (code, status["queue_depth"], status["state"]) == (200, 0, "ready")
    assert not after.is_error


MODERN_HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": MODERN_VERSION,
    "mcp-method": "tools/call",
    "mcp-name": "visual_math_reason",
}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientInfo": {"name": "raw-http", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


async def test_client_dropping_the_connection_stops_the_generation_and_frees_the_slot(
    make_reasoner: ReasonerFactory,
) -> None:
    # A raw HTTP client that closes its socket mid-call: no MCP cancellation is ever sent.
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate)
    reasoner = make_reasoner(engine, queue_size=1, cache_size=0)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "visual_math_reason",
            "arguments": {"question": "hang"},
            "_meta": MODERN_META,
        },
    }
    try:
        with serve_in_thread(reasoner) as url:
            async with httpx.AsyncClient(timeout=WAIT_S) as http:
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(lambda: http.post(url, json=body, headers=MODERN_HEADERS))
                        await eventually(lambda: len(engine.requests) == 1)
                        scope.cancel()
            (row,) = engine.requests
            assert row.cancel is not None
            assert await anyio.to_thread.run_sync(row.cancel.wait, WAIT_S)
            await eventually(lambda: reasoner.status().queue_depth == 0)

            gate.set()
            async with Client(url, read_timeout_seconds=WAIT_S) as client:
                assert not (await call(client, "next")).is_error
    finally:
        gate.set()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_client_cancelling_its_call_stops_the_generation(
    make_reasoner: ReasonerFactory, mode: str
) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate)
    reasoner = make_reasoner(engine, queue_size=1, cache_size=0)
    try:
        async with http_client(reasoner, mode=mode) as (client, _):
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call, client, "hang")
                    await eventually(lambda: len(engine.requests) == 1)
                    scope.cancel()
            (row,) = engine.requests
            assert row.cancel is not None
            assert await anyio.to_thread.run_sync(row.cancel.wait, WAIT_S)
            await eventually(lambda: reasoner.status().queue_depth == 0)
            gate.set()
            assert not (await call(client, "next")).is_error
    finally:
        gate.set()


async def test_legacy_session_dropped_without_cancel_runs_until_the_call_time_limit(
    make_reasoner: ReasonerFactory,
) -> None:
    # On a handshake-era session a lost connection is not a cancellation (the client may
    # resume the stream), so the generation ends at request_timeout_s, and then frees its slot.
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate)
    reasoner = make_reasoner(engine, queue_size=1, request_timeout_s=1.0, cache_size=0)
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw-http", "version": "0"},
        },
    }
    try:
        with serve_in_thread(reasoner) as url:
            async with httpx.AsyncClient(timeout=WAIT_S) as http:
                response = await http.post(url, json=hello, headers=headers)
                session = {
                    **headers,
                    "mcp-session-id": response.headers["mcp-session-id"],
                    "mcp-protocol-version": "2025-11-25",
                }
                initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                await http.post(url, json=initialized, headers=session)
                tool_call = {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {"name": "visual_math_reason", "arguments": {"question": "hang"}},
                }
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(lambda: http.post(url, json=tool_call, headers=session))
                        await eventually(lambda: len(engine.requests) == 1)
                        scope.cancel()
            (row,) = engine.requests
            assert row.cancel is not None
            assert await anyio.to_thread.run_sync(row.cancel.wait, WAIT_S)
            await eventually(lambda: reasoner.status().queue_depth == 0)
    finally:
        gate.set()


async def test_model_that_fails_to_load_shows_in_status_and_calls_get_model_unavailable(
    make_reasoner: ReasonerFactory,
) -> None:
    engine = ScriptedEngine(load_error=ModelUnavailable("shard 2 of 4 is missing"))
    reasoner = make_reasoner(engine)

    async with http_client(reasoner) as (client, url):
        assert await anyio.to_thread.run_sync(reasoner.wait_until_loaded, WAIT_S)
        first = await call(client, "q")
        second = await call(client, "q again")
        resource = await client.read_resource(STATUS_URI)
        code, status = await anyio.to_thread.run_sync(health, url)

    for result in (first, second):
        body = json.loads(result.content[0].text)  # type: ignore[union-attr]
        assert body["error"]["code"] == "model_unavailable"
        assert body["error"]["retryable"] is False
        assert "shard 2 of 4 is missing" in body["error"]["message"]
    published = json.loads(resource.contents[0].text)  # type: ignore[union-attr]
    assert published["state"] == "failed" and "shard 2" in published["reason"]
    assert code == 503 and status["state"] == "failed"
    assert engine.calls == []


async def test_a_prompt_slow_to_prepare_stalls_neither_other_calls_nor_healthz(
    make_reasoner: ReasonerFactory,
) -> None:
    gate = threading.Event()
    slow_reply = ScriptedReply(text="<answer>\\boxed{7}</answer>", prepare_gate=gate)
    engine = ScriptedEngine(by_question={"[huge prompt]": slow_reply})
    reasoner = make_reasoner(engine, cache_size=0)
    try:
        async with http_client(reasoner) as (client, url), anyio.create_task_group() as tg:
            slow: dict[str, CallToolResult] = {}

            async def run_slow() -> None:
                slow["result"] = await call(client, "[huge prompt]")

            tg.start_soon(run_slow)
            await eventually(lambda: engine.preparing == 1)
            quick = await call(client, "quick")
            code, status = await anyio.to_thread.run_sync(health, url)
            still_preparing = engine.preparing == 1
            gate.set()
    finally:
        gate.set()

    assert not quick.is_error and payload_of(quick)["answer"] == "42"
    assert (code, status["queue_depth"]) == (200, 1), "the slow call still holds its slot"
    assert still_preparing, "the quick call and /healthz were answered meanwhile"
    assert payload_of(slow["result"])["answer"] == "7"
