"""Calls in flight end with ``cancelled`` when the server stops; later calls end at once."""

from __future__ import annotations

import threading
from typing import Any

import anyio

from m2_tools.testing import ScriptedEngine
from mcp_server._inflight import InFlight

from ._support import WAIT_S, ReasonerFactory, connect, error_of, eventually


async def test_stopping_ends_the_call_in_flight_with_cancelled_and_stops_its_generation(
    make_reasoner: ReasonerFactory,
) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate)
    reasoner = make_reasoner(engine=engine)
    inflight = InFlight()
    results: list[Any] = []
    try:
        async with connect(reasoner, inflight=inflight) as client:

            async def call() -> None:
                results.append(await client.call_tool("visual_math_reason", {"question": "q"}))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(call)
                await eventually(lambda: len(engine.requests) == 1 and inflight.calls == 1)
                with anyio.fail_after(WAIT_S):
                    assert await inflight.drain(WAIT_S)

            row = engine.requests[0]
            assert row.cancel is not None
            assert await anyio.to_thread.run_sync(row.cancel.wait, WAIT_S)
            await eventually(lambda: reasoner.status().queue_depth == 0)
    finally:
        gate.set()

    assert error_of(results[0])["code"] == "cancelled"


async def test_after_stopping_new_calls_are_cancelled_without_reaching_the_engine(
    make_reasoner: ReasonerFactory,
) -> None:
    engine = ScriptedEngine()
    inflight = InFlight()
    async with connect(make_reasoner(engine=engine), inflight=inflight) as client:
        inflight.stop()
        result = await client.call_tool("visual_math_reason", {"question": "q"})

    assert error_of(result)["code"] == "cancelled"
    assert engine.requests == []
