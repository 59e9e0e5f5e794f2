"""Progress notifications on one increasing scale, and cancellation that stops the model."""

from __future__ import annotations

import threading

import anyio
import pytest

from m2_tools.testing import ScriptedEngine

from ._support import WAIT_S, ReasonerFactory, connect, eventually

LONG_REPLY = "<think>\n" + " ".join(f"step{i}" for i in range(40)) + "\n</think>\n\\boxed{7}"

Report = tuple[float, float | None, str | None]


async def test_progress_covers_loading_then_tokens_and_only_increases(
    make_reasoner: ReasonerFactory,
) -> None:
    # The first call starts a slow load (load_delay_s is the scripted engine's simulated
    # slowness), so it sees loading progress, then one report per token.
    engine = ScriptedEngine(default=LONG_REPLY, load_delay_s=0.5)
    reasoner = make_reasoner(engine=engine)
    reports: list[Report] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total, message))

    async with connect(reasoner, load_on_start=False) as client:
        result = await client.call_tool(
            "visual_math_reason",
            {"question": "count", "max_new_tokens": 64},
            progress_callback=on_progress,
        )

    assert not result.is_error
    values = [progress for progress, _, _ in reports]
    assert values == sorted(set(values)), "progress must strictly increase"
    loading = [r for r in reports if r[0] < 1]
    tokens = [r for r in reports if r[0] >= 1]
    assert loading and tokens
    assert all(total is None for _, total, _ in loading)
    assert all(total == 64 for _, total, _ in tokens)
    assert tokens[-1][0] <= 64
    assert all(message for _, _, message in reports)


async def test_no_progress_token_means_no_notifications_and_a_normal_result(
    make_reasoner: ReasonerFactory,
) -> None:
    async with connect(make_reasoner(engine=ScriptedEngine(default=LONG_REPLY))) as client:
        result = await client.call_tool("visual_math_reason", {"question": "q"})

    assert not result.is_error


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_cancelled_call_stops_its_generation_and_frees_its_slot(
    make_reasoner: ReasonerFactory, mode: str
) -> None:
    # legacy: the client sends notifications/cancelled over JSON-RPC; auto: the in-process
    # modern path cancels the request's scope directly.
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate)
    reasoner = make_reasoner(engine=engine, queue_size=1)
    try:
        async with connect(reasoner, mode=mode) as client:
            with anyio.CancelScope() as scope:

                async def call_then_fail() -> None:
                    await client.call_tool("visual_math_reason", {"question": "hang"})
                    raise AssertionError("the call should have been cancelled")

                async with anyio.create_task_group() as tg:
                    tg.start_soon(call_then_fail)
                    await eventually(lambda: len(engine.requests) == 1)
                    scope.cancel()

            row = engine.requests[0]
            assert row.cancel is not None
            assert await anyio.to_thread.run_sync(row.cancel.wait, WAIT_S)
            await eventually(lambda: reasoner.status().queue_depth == 0)

            gate.set()
            after = await client.call_tool("visual_math_reason", {"question": "next"})
            assert not after.is_error
    finally:
        gate.set()
