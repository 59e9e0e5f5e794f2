"""RowHandle, the per-row path's handle: progress, one final result, cancel from any thread."""

from __future__ import annotations

import threading

from m2_tools.engines.base import GenerationRequest, GenerationResult, RowHandle

ROW = GenerationRequest(system_prompt="s", user_text="u")


def test_cancelling_a_waiting_row_settles_it_at_once_and_the_engine_drops_it() -> None:
    handle = RowHandle(ROW)

    handle.cancel()

    assert handle.done() and handle.result(0).finish_reason == "cancelled"
    assert handle.claim() is False


def test_a_running_row_is_only_asked_to_stop_and_the_engine_settles_it() -> None:
    handle = RowHandle(ROW)
    assert handle.claim() is True

    handle.cancel()

    assert handle.cancel_requested and not handle.done()
    assert handle.finish(GenerationResult(text="par", finish_reason="cancelled"))
    assert handle.result(0).text == "par"


def test_the_request_cancel_event_counts_as_a_cancel() -> None:
    event = threading.Event()
    handle = RowHandle(GenerationRequest(system_prompt="s", user_text="u", cancel=event))
    event.set()

    assert handle.cancel_requested
    assert handle.claim() is False
    assert handle.result(0).finish_reason == "cancelled"


def test_only_the_first_result_counts() -> None:
    handle = RowHandle(ROW)
    seen: list[str] = []
    handle.add_done_callback(lambda done: seen.append(done.result(0).text))

    assert handle.finish(GenerationResult(text="first")) is True
    assert handle.finish(GenerationResult(text="second")) is False

    assert seen == ["first"] and handle.result(0).text == "first"


def test_progress_reaches_on_token_and_a_broken_callback_is_contained() -> None:
    counts: list[int] = []
    tracked = RowHandle(GenerationRequest(system_prompt="s", user_text="u", on_token=counts.append))

    def broken(_count: int) -> None:
        raise RuntimeError("callback bug")

    fragile = RowHandle(GenerationRequest(system_prompt="s", user_text="u", on_token=broken))
    for n in (1, 2):
        tracked.advance(n)
        fragile.advance(n)

    assert counts == [1, 2] and tracked.tokens == 2 and fragile.tokens == 2
