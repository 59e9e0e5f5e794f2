"""The scheduler: slots are taken before work starts, and only reserved calls delay a batch."""

from __future__ import annotations

import threading

import pytest

from m2_tools import Busy
from m2_tools.engines.base import GenerationRequest
from m2_tools.serving.scheduler import Scheduler
from m2_tools.testing import ScriptedEngine

ROW = GenerationRequest(system_prompt="s", user_text="u", max_new_tokens=16)


def test_a_full_queue_refuses_at_reservation_before_any_work() -> None:
    scheduler = Scheduler(capacity=2, max_batch_size=8, batch_wait_s=0)

    first, second = scheduler.reserve(), scheduler.reserve()

    with pytest.raises(Busy):
        scheduler.reserve()
    assert scheduler.depth == 2
    with first, second:
        pass
    assert scheduler.depth == 0


def test_an_unused_slot_is_given_back_on_exit() -> None:
    scheduler = Scheduler(capacity=1, max_batch_size=8, batch_wait_s=0)

    with pytest.raises(RuntimeError), scheduler.reserve():
        raise RuntimeError("image intake failed")

    with scheduler.reserve():
        assert scheduler.depth == 1


def test_a_lone_call_does_not_wait_out_the_batch_window() -> None:
    engine = ScriptedEngine()
    scheduler = Scheduler(capacity=4, max_batch_size=8, batch_wait_s=60)
    scheduler.start(engine)
    try:
        job = scheduler.reserve().submit([ROW], threading.Event())

        results = job.future.result(timeout=10)
    finally:
        scheduler.close()

    assert results[0].finish_reason == "stop"


def test_the_worker_waits_for_calls_that_hold_a_slot() -> None:
    engine = ScriptedEngine()
    scheduler = Scheduler(capacity=4, max_batch_size=8, batch_wait_s=60)
    scheduler.start(engine)
    try:
        late = scheduler.reserve()
        early = scheduler.reserve().submit([ROW], threading.Event())
        assert not early.future.done()

        second = late.submit([ROW, ROW], threading.Event())

        early.future.result(timeout=10)
        second.future.result(timeout=10)
    finally:
        scheduler.close()

    assert [len(batch) for batch in engine.calls] == [3]


LONG = " ".join(f"w{i}" for i in range(400))
SHORT = "<answer>\\boxed{1}</answer>"


def _long_and_short(policy: str) -> tuple[Scheduler, ScriptedEngine]:
    # Each step of the scripted engine takes 2 ms and gives every running row one token.
    engine = ScriptedEngine(by_question={"long": LONG, "short": SHORT}, token_delay_s=0.002)
    scheduler = Scheduler(capacity=4, max_batch_size=8, batch_wait_s=0, policy=policy)  # type: ignore[arg-type]
    scheduler.start(engine)
    return scheduler, engine


def _row(text: str) -> GenerationRequest:
    return GenerationRequest(system_prompt="s", user_text=text, max_new_tokens=1000)


def test_a_short_call_behind_a_long_one_does_not_wait_for_it() -> None:
    scheduler, engine = _long_and_short("iteration")
    try:
        long = scheduler.reserve().submit([_row("long")], threading.Event())
        assert engine.generate_started.wait(10)
        short = scheduler.reserve().submit([_row("short")], threading.Event())

        (result,) = short.future.result(timeout=10)
        still_running = not long.future.done()
    finally:
        scheduler.close()

    assert result.finish_reason == "stop" and result.text == SHORT
    assert still_running, "the short call finished while the long one was still decoding"
    assert [len(rows) for rows in engine.calls] == [1, 1]


def test_the_static_policy_makes_a_short_call_wait_for_the_running_batch() -> None:
    scheduler, engine = _long_and_short("static")
    try:
        long = scheduler.reserve().submit([_row("long")], threading.Event())
        assert engine.generate_started.wait(10)
        short = scheduler.reserve().submit([_row("short")], threading.Event())

        short.future.result(timeout=20)
        long_done_first = long.future.done()
    finally:
        scheduler.close()

    assert scheduler.policy == "static"
    assert long_done_first


def test_an_engine_that_batches_itself_gets_each_row_at_once() -> None:
    gate = threading.Event()
    engine = ScriptedEngine(row_mode="self", generate_gate=gate)
    scheduler = Scheduler(capacity=4, max_batch_size=8, batch_wait_s=60)
    scheduler.start(engine)
    try:
        first = scheduler.reserve().submit([ROW], threading.Event())
        second = scheduler.reserve().submit([ROW, ROW], threading.Event())
        handed_over = [len(rows) for rows in engine.calls]
        gate.set()
        results = first.future.result(timeout=10) + second.future.result(timeout=10)
    finally:
        scheduler.close()

    assert handed_over == [1, 2], "both calls reached the engine while it was still held"
    assert [r.finish_reason for r in results] == ["stop"] * 3


def test_closing_cancels_rows_that_have_not_started_and_lets_running_ones_end() -> None:
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate, max_batch=1)
    scheduler = Scheduler(capacity=4, max_batch_size=8, batch_wait_s=0)
    scheduler.start(engine)
    running = scheduler.reserve().submit([ROW], threading.Event())
    assert engine.generate_started.wait(10)
    waiting = scheduler.reserve().submit([ROW], threading.Event())

    closing = threading.Thread(target=scheduler.close, kwargs={"timeout": 10})
    closing.start()
    (cancelled,) = waiting.future.result(timeout=10)
    gate.set()
    closing.join(10)

    assert cancelled.finish_reason == "cancelled"
    assert running.future.result(timeout=0)[0].finish_reason == "stop"
    assert scheduler.depth == 0
