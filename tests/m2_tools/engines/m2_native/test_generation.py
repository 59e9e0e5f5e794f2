"""Batched decoding: equal to one-at-a-time, per-row seeds, callbacks, cancellation, row errors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from m2_tools.engines.base import GenerationRequest, GenerationResult
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.engines.m2_native.generation import sample_token
from m2_tools.errors import InvalidArgument, ModelUnavailable
from m2_tools.prompts import SYSTEM_PROMPT, build_user_text
from m2_tools.settings import Settings


def _essentials(result: GenerationResult) -> tuple[object, ...]:
    return (
        result.error,
        result.text,
        result.finish_reason,
        result.prompt_tokens,
        result.completion_tokens,
        result.image_tokens,
        result.image_sizes,
    )


@pytest.fixture(scope="module")
def mixed_requests(
    case_request: Callable[..., GenerationRequest], fixture_dir: Path
) -> list[GenerationRequest]:
    """Prompts of different lengths, with none, one and two images, and different limits."""
    (rhombus,) = case_request("math_mc").images
    (scene,) = case_request("spatial_jpeg").images
    return [
        case_request("math_mc", max_new_tokens=30),
        GenerationRequest(SYSTEM_PROMPT, build_user_text("Hi?"), max_new_tokens=12),
        case_request("text_only", max_new_tokens=40),
        GenerationRequest(
            SYSTEM_PROMPT,
            build_user_text("Compare the two pictures.", ["same", "different"]),
            images=(scene, rhombus),
            max_new_tokens=20,
        ),
        case_request("spatial_jpeg", max_new_tokens=25),
    ]


def test_batched_greedy_equals_one_at_a_time(
    engine: M2NativeEngine, mixed_requests: list[GenerationRequest]
) -> None:
    alone = [engine.generate([request])[0] for request in mixed_requests]
    together = engine.generate(mixed_requests)
    assert [_essentials(r) for r in together] == [_essentials(r) for r in alone]
    assert all(r.error is None for r in together)
    assert {r.completion_tokens for r in together} != {together[0].completion_tokens}


def test_splits_requests_beyond_max_batch_size(
    checkpoint_dir: Path, engine: M2NativeEngine, mixed_requests: list[GenerationRequest]
) -> None:
    small = M2NativeEngine(Settings(model=str(checkpoint_dir), device="cpu", max_batch_size=2))
    small.load()
    assert small.max_batch_size == 2
    expected = [_essentials(r) for r in engine.generate(mixed_requests)]
    assert [_essentials(r) for r in small.generate(mixed_requests)] == expected
    small.close()


def test_bad_row_gets_its_own_error_and_the_others_still_run(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> None:
    sliver = GenerationRequest(SYSTEM_PROMPT, "x", images=(Image.new("RGB", (1000, 4)),))
    good = case_request("text_only")
    results = engine.generate([good, sliver, good])
    assert isinstance(results[1].error, InvalidArgument)
    assert results[1].error.code == "invalid_argument"
    assert results[0].error is None and results[2].error is None
    assert _essentials(results[0]) == _essentials(engine.generate([good])[0])


def test_calls_on_token_once_per_generated_token(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> None:
    seen: list[int] = []
    (result,) = engine.generate([case_request("text_only", on_token=seen.append)])
    assert seen == list(range(1, result.completion_tokens + 1))


def test_cancel_stops_one_row_early_and_the_batch_goes_on(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> None:
    cancel = threading.Event()

    def cancel_after_three(count: int) -> None:
        if count == 3:
            cancel.set()

    doomed = case_request("math_mc", on_token=cancel_after_three, cancel=cancel)
    other = case_request("text_only")
    first, second = engine.generate([doomed, other])
    assert first.finish_reason == "cancelled"
    assert first.completion_tokens == 3
    assert _essentials(second) == _essentials(engine.generate([other])[0])


def test_a_row_cancelled_before_it_starts_generates_nothing(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> None:
    cancel = threading.Event()
    cancel.set()
    (result,) = engine.generate([case_request("text_only", cancel=cancel)])
    assert (result.error, result.finish_reason, result.completion_tokens) == (None, "cancelled", 0)


def test_a_broken_progress_callback_does_not_fail_the_row(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> None:
    def broken(count: int) -> None:
        raise RuntimeError("callback bug")

    (result,) = engine.generate([case_request("text_only", on_token=broken)])
    assert result.error is None and result.completion_tokens == 24


def test_sampling_with_the_same_seed_is_reproducible_alone_and_in_a_batch(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> None:
    votes = [
        case_request("math_mc", do_sample=True, temperature=0.9, seed=seed, max_new_tokens=16)
        for seed in (1, 2)
    ]
    alone = [engine.generate([vote])[0].text for vote in votes]
    again = [engine.generate([vote])[0].text for vote in votes]
    batched = [r.text for r in engine.generate(votes)]
    assert alone == again == batched
    assert alone[0] != alone[1]


def test_greedy_ignores_seed_and_temperature(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> None:
    plain = engine.generate([case_request("spatial_jpeg")])[0]
    seeded = engine.generate([case_request("spatial_jpeg", seed=5, temperature=0.3)])[0]
    assert _essentials(plain) == _essentials(seeded)


def test_stops_at_im_end_and_strips_it_from_the_text(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> None:
    # Sample with a high temperature until some row ends on a stop token.
    requests = [
        case_request("text_only", do_sample=True, temperature=5.0, seed=s, max_new_tokens=200)
        for s in range(8)
    ]
    stopped = [r for r in engine.generate(requests) if r.finish_reason == "stop"]
    assert stopped, "no sampled row hit a stop token"
    for result in stopped:
        assert result.completion_tokens <= 200
        assert not result.text.endswith(("<|im_end|>", "<|endoftext|>"))


def test_rejects_bad_sampling_arguments_per_row(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> None:
    good = case_request("text_only", max_new_tokens=2)
    bad = [replace(good, max_new_tokens=0), replace(good, do_sample=True, temperature=0.0)]
    results = engine.generate([*bad, replace(good, top_p=0.0), good])
    assert [type(r.error) for r in results] == [InvalidArgument] * 3 + [type(None)]


def test_nucleus_sampling_with_tiny_top_p_takes_the_most_likely_token() -> None:
    logits = torch.tensor([0.1, 3.0, 2.9, -1.0])
    generator = torch.Generator().manual_seed(0)
    assert {sample_token(logits, 1.0, 1e-6, generator) for _ in range(20)} == {1}
    assert {sample_token(logits, 1.0, 1.0, generator) for _ in range(200)} >= {1, 2}


def test_refuses_a_prompt_beyond_the_context(engine: M2NativeEngine) -> None:
    long_text = build_user_text("why? " * 5000)
    (result,) = engine.generate([GenerationRequest(SYSTEM_PROMPT, long_text)])
    assert isinstance(result.error, InvalidArgument)


def test_rows_fail_with_model_unavailable_before_load_and_after_close(
    checkpoint_dir: Path,
) -> None:
    engine = M2NativeEngine(Settings(model=str(checkpoint_dir), device="cpu"))
    request = GenerationRequest(SYSTEM_PROMPT, build_user_text("Hi?"), max_new_tokens=2)
    assert isinstance(engine.generate([request])[0].error, ModelUnavailable)
    engine.load()
    assert engine.generate([request])[0].error is None
    engine.close()
    assert isinstance(engine.generate([request])[0].error, ModelUnavailable)
