"""Batching: concurrent calls share the running batch, and rows stay independent.

The worker is held inside a step of the scripted engine (its ``generate_gate``) while
calls reach the engine, so which rows join the running batch together is decided by
the test, not by timing (``engine.calls`` records the rows that joined at one step).
The last test watches the native engine's decode loop on the golden tiny checkpoint:
rows that reach their own token limit leave the batch, so they stop costing compute.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest

from m2_tools import M2Reasoner
from m2_tools.engines.base import GenerationRequest
from m2_tools.errors import Busy, ImageUnsupported
from m2_tools.prompts import SYSTEM_PROMPT, build_user_text
from m2_tools.schemas import M2Result
from m2_tools.serving.progress import ProgressEvent
from m2_tools.serving.scheduler import Scheduler
from m2_tools.testing import ScriptedEngine, ScriptedReply

from ._support import WAIT_S, ReasonerFactory, eventually, wait_for


def answer(n: int) -> str:
    return f"<think>\nrow {n}\n</think>\n<answer>\\boxed{{{n}}}</answer>"


def numbered_engine(count: int, **options: Any) -> ScriptedEngine:
    """Question ``[q N]`` is answered N, so a result that reached the wrong caller shows."""
    return ScriptedEngine(by_question={f"[q {n}]": answer(n) for n in range(count)}, **options)


async def hold_worker(reasoner: M2Reasoner, engine: ScriptedEngine) -> asyncio.Task[M2Result]:
    """Start a call that keeps the worker inside a step until the engine's gate opens."""
    blocker = asyncio.create_task(reasoner.arun_tool("visual_math_reason", {"question": "hold"}))
    assert await asyncio.to_thread(engine.generate_started.wait, WAIT_S)
    return blocker


def queued(reasoner: M2Reasoner, depth: int) -> Awaitable[None]:
    return eventually(lambda: reasoner.status().queue_depth == depth)


async def test_calls_that_arrive_while_a_row_runs_join_it_at_the_next_step(
    make_reasoner: ReasonerFactory,
) -> None:
    gate = threading.Event()
    engine = numbered_engine(16, generate_gate=gate, max_batch=17)
    reasoner = make_reasoner(engine, max_batch_size=17, queue_size=32, cache_size=0)
    blocker = await hold_worker(reasoner, engine)

    calls = [
        asyncio.create_task(reasoner.arun_tool("visual_math_reason", {"question": f"[q {n}]"}))
        for n in range(16)
    ]
    await eventually(lambda: engine.waiting == 16)
    gate.set()
    results = await asyncio.gather(*calls)
    await blocker

    assert [len(batch) for batch in engine.calls] == [1, 16]
    assert [result.value for result in results] == list(range(16))
    await queued(reasoner, 0)


async def test_rows_beyond_the_batch_size_join_as_running_rows_leave(
    make_reasoner: ReasonerFactory,
) -> None:
    gate = threading.Event()
    engine = numbered_engine(6, generate_gate=gate, max_batch=4)
    reasoner = make_reasoner(engine, cache_size=0)
    blocker = await hold_worker(reasoner, engine)

    calls = [
        asyncio.create_task(reasoner.arun_tool("visual_math_reason", {"question": f"[q {n}]"}))
        for n in range(6)
    ]
    await eventually(lambda: engine.waiting == 6)
    gate.set()
    results = await asyncio.gather(*calls)
    await blocker

    joined = [len(batch) for batch in engine.calls]
    assert joined[:2] == [1, 3], "the blocker runs, three more fill the batch of four"
    assert sum(joined) == 7 and len(joined) > 2
    assert [result.value for result in results] == list(range(6))


def test_samples_run_as_rows_of_one_engine_call(make_reasoner: ReasonerFactory) -> None:
    engine = ScriptedEngine(replies=[answer(7), answer(7), answer(3), answer(7)])
    reasoner = make_reasoner(engine)

    result = reasoner.visual_math_reason(question="vote", samples=4)

    assert len(engine.calls) == 1
    rows = engine.calls[0]
    assert len(rows) == 4
    assert all(row.do_sample for row in rows)
    assert len({row.seed for row in rows}) == 4
    assert result.votes == {"7": 3, "3": 1}
    assert result.confidence == 0.75


def test_greedy_single_calls_are_not_sampled(make_reasoner: ReasonerFactory) -> None:
    engine = ScriptedEngine()
    make_reasoner(engine).visual_math_reason(question="greedy")

    (row,) = engine.requests
    assert row.do_sample is False and row.seed is None


async def test_a_failing_row_and_a_cancelled_row_leave_their_batch_mates_alone(
    make_reasoner: ReasonerFactory,
) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(
        generate_gate=gate,
        by_question={
            "[q 0]": answer(0),
            "[bad]": ScriptedReply(error=ImageUnsupported("row-level failure")),
            "[q 2]": answer(2),
            "[cancel me]": answer(9),
        },
    )
    reasoner = make_reasoner(engine, cache_size=0)
    blocker = await hold_worker(reasoner, engine)

    def doomed_row_cancelled() -> bool:
        rows = engine.calls[-1]
        row = next((r for r in rows if "[cancel me]" in r.user_text), None)
        return row is not None and row.cancel is not None and row.cancel.is_set()

    def hold_first_row(event: ProgressEvent) -> None:
        # Runs on the worker, inside the shared batch's first row: the batch cannot move on
        # before the test has cancelled one of its later rows.
        if event.phase == "generating":
            assert wait_for(doomed_row_cancelled)

    def call(question: str) -> asyncio.Task[M2Result]:
        return asyncio.create_task(reasoner.arun_tool("visual_math_reason", {"question": question}))

    first = asyncio.create_task(
        asyncio.to_thread(
            reasoner.run_tool, "visual_math_reason", {"question": "[q 0]"}, progress=hold_first_row
        )
    )
    await queued(reasoner, 2)
    bad, doomed, last = call("[bad]"), call("[cancel me]"), call("[q 2]")
    await queued(reasoner, 5)
    await eventually(lambda: engine.waiting == 4)  # prepared: they join at the next step
    gate.set()
    await eventually(lambda: len(engine.calls) == 2)
    doomed.cancel()
    results = await asyncio.gather(first, bad, doomed, last, return_exceptions=True)
    await blocker

    assert len(engine.calls[1]) == 4, "the four calls shared one engine call"
    assert isinstance(results[0], M2Result) and results[0].value == 0
    assert isinstance(results[1], ImageUnsupported)
    assert isinstance(results[2], asyncio.CancelledError)
    assert isinstance(results[3], M2Result) and results[3].value == 2
    await queued(reasoner, 0)


async def test_a_failed_join_fails_only_the_rows_that_joined_with_it(
    make_reasoner: ReasonerFactory,
) -> None:
    gate = threading.Event()
    replies: dict[str, str | ScriptedReply] = {f"[q {n}]": answer(n) for n in range(4)}
    replies["[boom]"] = ScriptedReply(raise_in_batch=OSError("prefill fault"))
    engine = ScriptedEngine(by_question=replies, generate_gate=gate)
    reasoner = make_reasoner(engine, cache_size=0)
    blocker = await hold_worker(reasoner, engine)

    def call(question: str) -> asyncio.Task[M2Result]:
        return asyncio.create_task(reasoner.arun_tool("visual_math_reason", {"question": question}))

    doomed = [call("[q 1]"), call("[boom]")]
    await eventually(lambda: engine.waiting == 2)
    gate.set()
    failed = await asyncio.gather(*doomed, return_exceptions=True)
    later = await asyncio.gather(call("[q 2]"), call("[q 3]"))

    assert [getattr(r, "code", None) for r in failed] == ["internal", "internal"]
    assert (await blocker).value == 42, "the running row was not touched"
    assert [r.value for r in later] == [2, 3]


async def test_a_step_that_raises_fails_the_running_rows_and_waiting_rows_go_on(
    make_reasoner: ReasonerFactory,
) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(
        by_question={
            "[bug]": ScriptedReply(raise_in_step=RuntimeError("engine bug")),
            "[q 5]": answer(5),
        },
        generate_gate=gate,
        max_batch=2,
    )
    reasoner = make_reasoner(engine, cache_size=0)
    blocker = await hold_worker(reasoner, engine)

    def call(question: str) -> asyncio.Task[M2Result]:
        return asyncio.create_task(reasoner.arun_tool("visual_math_reason", {"question": question}))

    bug = call("[bug]")
    await eventually(lambda: engine.waiting == 1)
    waiting = call("[q 5]")
    await eventually(lambda: engine.waiting == 2)
    gate.set()
    results = await asyncio.gather(blocker, bug, waiting, return_exceptions=True)

    assert [getattr(r, "code", None) for r in results[:2]] == ["internal", "internal"]
    assert isinstance(results[2], M2Result) and results[2].value == 5
    await queued(reasoner, 0)


async def test_cancelling_a_queued_call_frees_its_slot_at_once(
    make_reasoner: ReasonerFactory,
) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate)
    reasoner = make_reasoner(engine, queue_size=2, cache_size=0)
    try:
        blocker = await hold_worker(reasoner, engine)
        waiting = asyncio.create_task(reasoner.arun_tool("visual_math_reason", {"question": "w"}))
        await queued(reasoner, 2)
        with pytest.raises(Busy):
            await reasoner.arun_tool("visual_math_reason", {"question": "refused"})

        waiting.cancel()
        # The worker is still held: only the cancellation itself can free the slot.
        await queued(reasoner, 1)
        assert len(engine.calls) == 1
        late = asyncio.create_task(reasoner.arun_tool("visual_math_reason", {"question": "late"}))
        await queued(reasoner, 2)
    finally:
        gate.set()
    assert (await late).status == "ok"
    await blocker
    assert "w" not in [row.user_text for row in engine.requests]


def test_scheduler_settles_a_cancelled_queued_job_without_the_worker() -> None:
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate)
    scheduler = Scheduler(capacity=2, max_batch_size=8, batch_wait_s=0)
    scheduler.start(engine)
    row = GenerationRequest(system_prompt="s", user_text="u", max_new_tokens=16)
    try:
        running = scheduler.reserve().submit([row], threading.Event())
        assert engine.generate_started.wait(WAIT_S)
        waiting = scheduler.reserve().submit([row, row], threading.Event())
        assert scheduler.depth == 2

        waiting.request_cancel()

        assert scheduler.depth == 1
        results = waiting.future.result(timeout=WAIT_S)
        assert [r.finish_reason for r in results] == ["cancelled", "cancelled"]
    finally:
        gate.set()
    assert running.future.result(timeout=WAIT_S)[0].finish_reason == "stop"
    scheduler.close()
    assert len(engine.requests) == 1


async def test_each_row_keeps_its_own_token_limit_in_a_shared_batch(
    make_reasoner: ReasonerFactory,
) -> None:
    long_reply = "<think>\n" + " ".join(f"w{i}" for i in range(100)) + "\n</think>\n\\boxed{1}"
    gate = threading.Event()
    engine = ScriptedEngine(default=long_reply, generate_gate=gate)
    reasoner = make_reasoner(engine, cache_size=0)
    blocker = await hold_worker(reasoner, engine)

    limits = [16, 40, 64, 200]
    tasks = [
        asyncio.create_task(
            reasoner.arun_tool("visual_math_reason", {"question": f"q{n}", "max_new_tokens": n})
        )
        for n in limits
    ]
    await queued(reasoner, 5)
    await eventually(lambda: engine.waiting == 4)  # prepared: they join at the next step
    gate.set()
    results = await asyncio.gather(*tasks)
    await blocker

    assert sorted(row.max_new_tokens for row in engine.calls[1]) == limits
    assert [r.usage.completion_tokens for r in results] == [16, 40, 64, 104]
    assert [r.finish_reason for r in results] == ["length", "length", "length", "stop"]


# ---- the native engine on the golden tiny checkpoint ----------------------------------------


@pytest.fixture(scope="module")
def native_engine(fixture_dir: Path) -> Iterator[Any]:
    from m2_tools import Settings
    from m2_tools.engines.m2_native import M2NativeEngine

    checkpoint = fixture_dir / "checkpoint"
    engine = M2NativeEngine(Settings(model=str(checkpoint), device="cpu", dtype="float32"))
    engine.load()
    yield engine
    engine.close()


def test_native_loop_drops_finished_rows_from_the_batch(native_engine: Any) -> None:
    widths: list[int] = []
    hook = native_engine.model.register_forward_pre_hook(
        lambda _module, args: widths.append(int(args[0].shape[0]))
    )
    limits = [2, 5, 9]
    requests = [
        GenerationRequest(
            system_prompt=SYSTEM_PROMPT,
            user_text=build_user_text(f"What is {n} + {n}?", None),
            max_new_tokens=n,
        )
        for n in limits
    ]
    try:
        results = native_engine.generate(requests)
    finally:
        hook.remove()

    assert [r.error for r in results] == [None, None, None]
    assert all(r.completion_tokens <= n for r, n in zip(results, limits, strict=True))
    # Prefill of all three rows, then one decode step per token still owed by a live row.
    assert widths[0] == 3
    assert widths == sorted(widths, reverse=True)
    live = [sum(1 for r in results if r.completion_tokens > step) for step in range(1, 9)]
    assert widths[1:] == [n for n in live if n]
