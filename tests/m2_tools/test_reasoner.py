"""The service flow, end to end above the model, with the scripted engine."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from m2_tools import (
    Busy,
    InternalError,
    InvalidArgument,
    M2Reasoner,
    ModelLoading,
    ModelUnavailable,
    ProgressEvent,
    RequestTimeout,
)
from m2_tools.testing import ScriptedEngine, ScriptedReply

CHOICES = ["11.3", "22.4", "22.6", "25.6"]
SOLVED = (
    "<think>\nThe area of a rhombus is d1*d2/2, so QS = 2*137.9/12.2 = 22.6.\n</think>\n"
    "<answer>\n\\boxed{C. 22.6}\n</answer>"
)
QUESTION = "Rhombus QRST has an area of 137.9 square meters. If RT is 12.2 meters, find QS."
WaitUntil = Callable[..., bool]


def test_answers_multiple_choice_with_letter_value_and_rationale(make_reasoner) -> None:
    reasoner = make_reasoner(ScriptedEngine(replies=[SOLVED]))

    result = reasoner.visual_math_reason(question=QUESTION, choices=CHOICES)

    assert (result.answer, result.choice, result.choice_text, result.value) == (
        "C. 22.6",
        "C",
        "22.6",
        22.6,
    )
    assert result.status == "ok"
    assert result.finish_reason == "stop"
    assert "d1*d2/2" in (result.rationale or "")
    assert result.raw_output is None
    assert result.votes is None and result.confidence is None
    assert result.model.backend == "scripted"
    assert result.usage.completion_tokens > 0
    assert result.timings_ms.total >= result.timings_ms.generate


def test_prompt_uses_system_prompt_and_lettered_options(make_reasoner) -> None:
    engine = ScriptedEngine(replies=[SOLVED])
    reasoner = make_reasoner(engine)

    reasoner.visual_math_reason(question=QUESTION, choices=CHOICES)

    (request,) = engine.requests
    assert request.system_prompt.startswith("You are a helpful assistant.")
    assert (
        request.user_text == "\nQuestion:\n\n" + QUESTION + "\nA. 11.3\nB. 22.4\nC. 22.6\nD. 25.6"
    )
    assert request.do_sample is False


def test_include_raw_returns_the_completion(make_reasoner) -> None:
    reasoner = make_reasoner(ScriptedEngine(replies=[SOLVED]))

    result = reasoner.visual_math_reason(question=QUESTION, include_raw=True)

    assert result.raw_output == SOLVED
    assert "raw_output" in result.to_payload()


def test_payload_omits_raw_output_unless_asked(make_reasoner) -> None:
    reasoner = make_reasoner(ScriptedEngine(replies=[SOLVED]))

    payload = reasoner.visual_math_reason(question=QUESTION).to_payload()

    assert "raw_output" not in payload
    assert payload["tool"] == "visual_math_reason"


def test_reports_truncated_when_generation_hits_the_limit(make_reasoner) -> None:
    long_thought = "<think>\n" + "step " * 100 + "\n</think>\n<answer>\\boxed{3}</answer>"
    reasoner = make_reasoner(ScriptedEngine(replies=[long_thought]))

    result = reasoner.visual_math_reason(question="q", max_new_tokens=16)

    assert result.finish_reason == "length"
    assert result.status == "truncated"
    assert result.rationale_truncated is True
    assert result.answer is None


def test_reports_no_answer_for_an_empty_box(make_reasoner) -> None:
    reasoner = make_reasoner(
        ScriptedEngine(replies=["<think>hmm</think><answer>\\boxed{}</answer>"])
    )

    result = reasoner.visual_math_reason(question="q")

    assert result.status == "no_answer"
    assert result.answer is None


def test_votes_across_samples_and_reports_confidence(make_reasoner) -> None:
    engine = ScriptedEngine(
        replies=[
            "<answer>\\boxed{B}</answer>",
            "<answer>\\boxed{C}</answer>",
            "<answer>\\boxed{22.6}</answer>",
        ]
    )
    reasoner = make_reasoner(engine)

    result = reasoner.visual_math_reason(question=QUESTION, choices=CHOICES, samples=3)

    assert result.choice == "C"
    assert result.votes == {"B": 1, "C": 2}
    assert result.confidence == pytest.approx(2 / 3)
    rows = engine.requests
    assert len(rows) == 3
    assert all(row.do_sample for row in rows)
    assert len({row.seed for row in rows}) == 3


def test_sampling_seeds_are_reproducible_for_the_same_request(make_reasoner) -> None:
    engine = ScriptedEngine()
    reasoner = make_reasoner(engine)

    reasoner.visual_math_reason(question=QUESTION, samples=2)
    reasoner.visual_math_reason(question=QUESTION, samples=2)

    first, second = engine.calls[0], engine.calls[1]
    assert [r.seed for r in first] == [r.seed for r in second]


def test_refuses_invalid_arguments_without_echoing_them(make_reasoner) -> None:
    reasoner = make_reasoner(ScriptedEngine())
    huge = "x" * 30000

    with pytest.raises(InvalidArgument) as empty:
        reasoner.visual_math_reason(question="")
    with pytest.raises(InvalidArgument) as too_long:
        reasoner.visual_math_reason(question=huge)
    with pytest.raises(InvalidArgument):
        reasoner.visual_math_reason(question="q", samples=9)
    with pytest.raises(InvalidArgument):
        reasoner.visual_math_reason(question="q", choices=["only one"])
    with pytest.raises(InvalidArgument):
        reasoner.visual_math_reason(question="q", unknown_field=1)
    with pytest.raises(InvalidArgument):
        reasoner.spatial_reason(question="where is the chair?")
    with pytest.raises(InvalidArgument):
        reasoner.run_tool("no_such_tool", {"question": "q"})

    assert "question" in empty.value.message
    assert huge not in too_long.value.message


def test_passes_images_to_the_engine_and_describes_them(make_reasoner, tmp_path: Path) -> None:
    Image.new("RGB", (355, 231), "white").save(tmp_path / "figure.png")
    engine = ScriptedEngine(replies=[SOLVED])
    reasoner = make_reasoner(engine, allowed_dirs=(tmp_path,))

    result = reasoner.spatial_reason(
        question="Which is closer?", images=[str(tmp_path / "figure.png")]
    )

    (request,) = engine.requests
    assert [image.size for image in request.images] == [(355, 231)]
    assert request.max_new_tokens == 2048
    (info,) = result.images
    assert (info.source, info.width, info.height) == ("path", 355, 231)
    assert result.tool == "spatial_reason"


def test_refuses_when_the_queue_is_full(make_reasoner) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate)
    reasoner = make_reasoner(engine, queue_size=1)
    first = threading.Thread(target=reasoner.visual_math_reason, kwargs={"question": "first"})
    first.start()
    assert engine.generate_started.wait(10)

    try:
        with pytest.raises(Busy) as refused:
            reasoner.visual_math_reason(question="second")
    finally:
        gate.set()
        first.join(10)

    assert refused.value.retryable is True
    assert reasoner.visual_math_reason(question="third").status == "ok"


def test_times_out_cancels_the_generation_and_frees_the_slot(make_reasoner, wait_until) -> None:
    engine = ScriptedEngine(generate_gate=threading.Event())
    reasoner = make_reasoner(engine, queue_size=1, request_timeout_s=0.2)

    with pytest.raises(RequestTimeout):
        reasoner.visual_math_reason(question="slow")

    (request,) = engine.requests
    assert request.cancel is not None and request.cancel.is_set()
    assert wait_until(lambda: reasoner.status().queue_depth == 0)


def test_engine_failure_becomes_internal_and_the_service_stays_up(make_reasoner) -> None:
    engine = ScriptedEngine(
        replies=[ScriptedReply(raise_in_batch=RuntimeError("CUDA error: secret detail")), SOLVED]
    )
    reasoner = make_reasoner(engine)

    with pytest.raises(InternalError) as failed:
        reasoner.visual_math_reason(question="q")

    assert "secret detail" not in failed.value.message
    assert reasoner.visual_math_reason(question="q2").status == "ok"


def test_a_failing_row_does_not_fail_its_batch_mates(make_reasoner) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(
        by_question={"bad": ScriptedReply(error=InvalidArgument("image too odd")), "good": SOLVED},
        generate_gate=gate,
    )
    reasoner = make_reasoner(engine, batch_wait_ms=50)
    blocker = threading.Thread(target=reasoner.visual_math_reason, kwargs={"question": "good 0"})
    blocker.start()
    assert engine.generate_started.wait(10)
    outcomes: dict[str, object] = {}

    def call(question: str) -> None:
        try:
            outcomes[question] = reasoner.visual_math_reason(question=question).status
        except InvalidArgument as exc:
            outcomes[question] = exc.code

    callers = [threading.Thread(target=call, args=(q,)) for q in ("bad 1", "good 2")]
    for caller in callers:
        caller.start()
    assert _depth_reaches(reasoner, 3)
    gate.set()
    for thread in [blocker, *callers]:
        thread.join(10)

    assert outcomes == {"bad 1": "invalid_argument", "good 2": "ok"}
    assert [len(batch) for batch in engine.calls] == [1, 2]


def test_load_failure_becomes_model_unavailable_with_the_reason(make_reasoner) -> None:
    reasoner = make_reasoner(ScriptedEngine(load_error=RuntimeError("shard 3 is missing")))

    with pytest.raises(ModelUnavailable) as failed:
        reasoner.visual_math_reason(question="q")

    assert "shard 3 is missing" in failed.value.message
    status = reasoner.status()
    assert status.state == "failed"
    assert status.reason is not None and "shard 3" in status.reason


def test_call_during_a_slow_load_gets_model_loading_then_succeeds(make_reasoner) -> None:
    gate = threading.Event()
    reasoner = make_reasoner(ScriptedEngine(load_gate=gate), load_wait_s=0.05)

    with pytest.raises(ModelLoading) as loading:
        reasoner.visual_math_reason(question="q")
    assert loading.value.retryable is True
    assert reasoner.status().state == "loading"

    gate.set()
    assert reasoner.wait_until_loaded(10)
    assert reasoner.visual_math_reason(question="q").status == "ok"
    assert reasoner.status().state == "ready"


def test_call_waits_for_a_load_that_finishes_in_time(make_reasoner) -> None:
    gate = threading.Event()
    reasoner = make_reasoner(ScriptedEngine(load_gate=gate), load_wait_s=30)
    events: list[ProgressEvent] = []

    def on_progress(event: ProgressEvent) -> None:
        events.append(event)
        if event.phase == "loading":
            gate.set()

    result = reasoner.visual_math_reason(question="q", progress=on_progress)

    assert result.status == "ok"
    assert any(e.phase == "loading" for e in events)
    assert result.timings_ms.queue > 0


def test_repeated_greedy_call_is_served_from_the_cache(make_reasoner) -> None:
    engine = ScriptedEngine(replies=[SOLVED])
    reasoner = make_reasoner(engine)

    first = reasoner.visual_math_reason(question=QUESTION, choices=CHOICES)
    second = reasoner.visual_math_reason(question=QUESTION, choices=CHOICES, include_raw=True)

    assert len(engine.calls) == 1
    assert second.timings_ms.cache_hit is True and first.timings_ms.cache_hit is False
    assert second.choice == first.choice == "C"
    assert second.raw_output == SOLVED
    assert reasoner.status().cache_hits == 1


def test_sampled_calls_are_never_cached(make_reasoner) -> None:
    engine = ScriptedEngine()
    reasoner = make_reasoner(engine)

    reasoner.visual_math_reason(question=QUESTION, samples=2)
    reasoner.visual_math_reason(question=QUESTION, samples=2)

    assert len(engine.requests) == 4


def test_cache_can_be_disabled(make_reasoner) -> None:
    engine = ScriptedEngine()
    reasoner = make_reasoner(engine, cache_size=0)

    reasoner.visual_math_reason(question=QUESTION)
    reasoner.visual_math_reason(question=QUESTION)

    assert len(engine.calls) == 2


async def test_async_call_reports_monotonic_generation_progress(make_reasoner) -> None:
    reasoner = make_reasoner(ScriptedEngine(replies=[SOLVED]))
    seen: list[ProgressEvent] = []

    async def on_progress(event: ProgressEvent) -> None:
        seen.append(event)

    result = await reasoner.avisual_math_reason(
        question=QUESTION, choices=CHOICES, progress=on_progress
    )

    assert result.choice == "C"
    generating = [e.done for e in seen if e.phase == "generating"]
    assert generating and generating == sorted(generating)
    assert all(e.total == 4096 for e in seen if e.phase == "generating")


async def test_cancelling_an_async_call_stops_its_generation(make_reasoner, wait_until) -> None:
    engine = ScriptedEngine(generate_gate=threading.Event())
    reasoner = make_reasoner(engine)
    task = asyncio.create_task(reasoner.avisual_math_reason(question="long"))
    assert await asyncio.to_thread(engine.generate_started.wait, 10)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    (request,) = engine.requests
    assert request.cancel is not None and request.cancel.is_set()
    assert await asyncio.to_thread(wait_until, lambda: reasoner.status().queue_depth == 0)


async def test_concurrent_calls_share_one_batch(make_reasoner, wait_until) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate)
    reasoner = make_reasoner(engine, batch_wait_ms=200)
    first = asyncio.create_task(reasoner.avisual_math_reason(question="first"))
    assert await asyncio.to_thread(engine.generate_started.wait, 10)
    rest = [asyncio.create_task(reasoner.avisual_math_reason(question=f"q{i}")) for i in range(3)]
    assert await asyncio.to_thread(_depth_reaches, reasoner, 4)
    # Prepared and waiting at the engine, so they all join at the next step.
    assert await asyncio.to_thread(wait_until, lambda: engine.waiting == 3)

    gate.set()
    results = await asyncio.gather(first, *rest)

    assert all(r.status == "ok" for r in results)
    assert [len(batch) for batch in engine.calls] == [1, 3]


def test_status_reports_queue_and_model(make_reasoner) -> None:
    reasoner = make_reasoner(ScriptedEngine(), queue_size=7)

    before = reasoner.status()
    reasoner.visual_math_reason(question="q")
    after = reasoner.status()

    assert before.state == "idle"
    assert (after.state, after.queue_depth, after.queue_capacity) == ("ready", 0, 7)


def _depth_reaches(reasoner: M2Reasoner, depth: int) -> bool:
    done = threading.Event()
    for _ in range(2000):
        if reasoner.status().queue_depth >= depth:
            return True
        done.wait(0.005)
    return False


def test_untagged_text_cut_off_at_the_token_limit_is_truncated_not_an_answer(
    make_reasoner,
) -> None:
    rambling = " ".join(f"word{i}" for i in range(40))
    reasoner = make_reasoner(ScriptedEngine(replies=[rambling]))

    result = reasoner.visual_math_reason(question="q", max_new_tokens=16)

    assert (result.status, result.finish_reason) == ("truncated", "length")
    assert (result.answer, result.choice, result.value) == (None, None, None)


def test_a_boxed_answer_before_the_token_limit_still_counts(make_reasoner) -> None:
    reply = "<think>short</think><answer>\\boxed{5}</answer> " + "trailing " * 40
    reasoner = make_reasoner(ScriptedEngine(replies=[reply]))

    result = reasoner.visual_math_reason(question="q", max_new_tokens=16)

    assert (result.status, result.finish_reason, result.value) == ("ok", "length", 5)


def test_a_short_untagged_answer_that_ended_normally_is_kept(make_reasoner) -> None:
    reasoner = make_reasoner(ScriptedEngine(replies=["The answer is 7."]))

    result = reasoner.visual_math_reason(question="q")

    assert (result.status, result.value) == ("ok", 7)
