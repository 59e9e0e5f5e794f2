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
