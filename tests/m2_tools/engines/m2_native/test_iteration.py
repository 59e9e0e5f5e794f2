"""Iteration-level batching: rows that join mid-flight decode exactly what they would alone.

The native engine is driven through its per-row path (``submit`` + ``step``) the way
the service's worker drives it, with rows joining the running batch at different
steps, on the golden fixture and on generated checkpoints shaped like the released
model's variants.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from m2_tools.engines.base import GenerationRequest, GenerationResult, RowHandle
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.engines.m2_native.tiny import make_tiny_model
from m2_tools.errors import InvalidArgument
from m2_tools.prompts import SYSTEM_PROMPT, build_user_text
from m2_tools.settings import Settings

Build = Callable[..., GenerationRequest]


def essentials(result: GenerationResult) -> tuple[object, ...]:
    return (
        result.error,
        result.text,
        result.finish_reason,
        result.prompt_tokens,
        result.completion_tokens,
        result.image_sizes,
    )


def staggered(
    engine: M2NativeEngine, requests: Sequence[GenerationRequest], gaps: Sequence[int]
) -> list[RowHandle]:
    """Submit the first row, each next one ``gaps[i]`` steps later, then step to the end.

    Every row after the first must join while an earlier row is still running.
    """
    handles = engine.submit([requests[0]])
    for request, gap in zip(requests[1:], gaps, strict=True):
        for _ in range(gap):
            engine.step()
        assert not all(h.done() for h in handles), "no row was running when this one joined"
        handles += engine.submit([request])
    while engine.step():
        pass
    return handles


def alone(
    engine: M2NativeEngine, requests: Sequence[GenerationRequest]
) -> list[tuple[object, ...]]:
    return [essentials(engine.generate([request])[0]) for request in requests]


@pytest.fixture(scope="module")
def mixed(case_request: Build) -> list[GenerationRequest]:
    """Prompts with none, one and two images, of different lengths and token limits."""
    (rhombus,) = case_request("math_mc").images
    (scene,) = case_request("spatial_jpeg").images
    return [
        case_request("text_only", max_new_tokens=40),
        case_request("math_mc", max_new_tokens=30),
        GenerationRequest(SYSTEM_PROMPT, build_user_text("Hi?"), max_new_tokens=12),
        GenerationRequest(
            SYSTEM_PROMPT,
            build_user_text("Compare the two pictures.", ["same", "different"]),
            images=(scene, rhombus),
            max_new_tokens=20,
        ),
        case_request("spatial_jpeg", max_new_tokens=25),
    ]


def test_rows_joining_at_different_steps_decode_as_alone_on_the_golden_fixture(
    engine: M2NativeEngine, mixed: list[GenerationRequest]
) -> None:
    expected = alone(engine, mixed)

    handles = staggered(engine, mixed, gaps=[3, 7, 1, 5])

    assert [essentials(h.result(0)) for h in handles] == expected
    assert len({row[1] for row in expected}) == len(mixed)


def _variant(root: Path, name: str) -> Path:
    # init_std 0.2: random weights that small give every prompt the same few tokens.
    if name == "windowed-vision-gqa":
        return make_tiny_model(root / name, vision_depth=4, num_key_value_heads=1, init_std=0.2)
    if name == "bf16":
        return make_tiny_model(root / name, dtype="bfloat16", init_std=0.2)
    checkpoint = make_tiny_model(root / name, init_std=0.2)
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    config["llm_config"]["use_llm_3drope"] = False
    (checkpoint / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return checkpoint


@pytest.fixture(scope="module", params=["windowed-vision-gqa", "1d-rope", "bf16"])
def variant(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[M2NativeEngine]:
    checkpoint = _variant(tmp_path_factory.mktemp("variants"), request.param)
    dtype = "bfloat16" if request.param == "bf16" else "float32"
    loaded = M2NativeEngine(Settings(model=str(checkpoint), device="cpu", dtype=dtype))
    loaded.load()
    yield loaded
    loaded.close()


def test_rows_joining_mid_flight_decode_as_alone_on_the_released_model_variants(
    variant: M2NativeEngine, mixed: list[GenerationRequest]
) -> None:
    requests = [replace(r, max_new_tokens=12) for r in mixed]
    expected = alone(variant, requests)

    handles = staggered(variant, requests, gaps=[2, 5, 1, 3])

    assert [essentials(h.result(0)) for h in handles] == expected
    assert len({row[1] for row in expected}) > 1


def _counting_passes(engine: M2NativeEngine) -> tuple[list[tuple[int, int]], Callable[[], None]]:
    """Record (rows, tokens) of every decoder pass and count vision-tower passes."""
    passes: list[tuple[int, int]] = []
    hooks = [
        engine.model.register_forward_pre_hook(
            lambda _m, args: passes.append((int(args[0].shape[0]), int(args[0].shape[1])))
        ),
        engine.model.vision_model.register_forward_pre_hook(
            lambda _m, _args: passes.append((0, 0))
        ),
    ]

    def remove() -> None:
        for hook in hooks:
            hook.remove()

    return passes, remove


def test_samples_share_one_image_pass_and_one_prefill(
    engine: M2NativeEngine, case_request: Build
) -> None:
    # One call's samples: the same request (and image objects) with their own seeds.
    base = case_request("math_mc", do_sample=True, temperature=0.9, max_new_tokens=10)
    votes = [replace(base, seed=seed) for seed in (1, 2, 3, 4)]
    one_by_one = [engine.generate([vote])[0].text for vote in votes]
    passes, remove = _counting_passes(engine)
    try:
        together = [r.text for r in engine.generate(votes)]
    finally:
        remove()

    assert together == one_by_one
    assert len(set(together)) > 1, "four seeds drew the same text"
    assert passes.count((0, 0)) == 1, "one vision-tower pass"
    prefills = [p for p in passes if p[1] > 1]
    assert prefills == [(1, prefills[0][1])], "one prompt prefill, of one row"
    assert {p for p in passes if p[1] == 1} <= {(4, 1)}, "decoding as four rows"


def test_samples_that_do_not_fit_wait_with_their_prefix_and_still_match(
    checkpoint_dir: Path, engine: M2NativeEngine, case_request: Build
) -> None:
    base = case_request("spatial_jpeg", do_sample=True, max_new_tokens=8)
    votes = [replace(base, seed=seed) for seed in (5, 6, 7)]
    narrow = M2NativeEngine(Settings(model=str(checkpoint_dir), device="cpu", max_batch_size=2))
    narrow.load()
    passes, remove = _counting_passes(narrow)
    try:
        texts = [r.text for r in narrow.generate(votes)]
    finally:
        remove()
        narrow.close()

    assert texts == [engine.generate([vote])[0].text for vote in votes]
    assert len([p for p in passes if p[1] > 1]) == 1
    assert max(rows for rows, _ in passes) == 2


def test_a_long_prompt_is_prefilled_in_chunks_while_running_rows_keep_decoding(
    checkpoint_dir: Path, engine: M2NativeEngine, case_request: Build
) -> None:
    running = GenerationRequest(SYSTEM_PROMPT, build_user_text("Hi?"), max_new_tokens=30)
    long = case_request("math_mc", max_new_tokens=10)
    chunked = M2NativeEngine(
        Settings(model=str(checkpoint_dir), device="cpu", prefill_chunk_tokens=16)
    )
    chunked.load()
    passes, remove = _counting_passes(chunked)
    try:
        (first,) = chunked.submit([running])
        while first.tokens == 0:  # its own prompt is chunked too
            chunked.step()
        start = first.tokens
        (second,) = chunked.submit([long])
        progress = []
        while not second.done():
            before = len(passes)
            chunked.step()
            progress.append(first.tokens)
            step_prefills = [p for p in passes[before:] if p[1] > 1]
            assert len(step_prefills) <= 1, "one prefill pass per step at most"
        while chunked.step():
            pass
    finally:
        remove()
        chunked.close()

    prompt_tokens = second.result(0).prompt_tokens
    assert prompt_tokens > 3 * 16
    assert max(tokens for _, tokens in passes) == 16
    # The running row got one token in every step of the newcomer's chunked prefill.
    steps = prompt_tokens // 16
    assert progress[:steps] == list(range(start + 1, start + 1 + steps))
    assert essentials(second.result(0)) == essentials(engine.generate([long])[0])
    assert essentials(first.result(0)) == essentials(engine.generate([running])[0])


def test_cancelling_a_running_row_leaves_its_neighbours_exact(
    engine: M2NativeEngine, mixed: list[GenerationRequest]
) -> None:
    first, doomed, last = mixed[0], mixed[1], mixed[4]
    handles = engine.submit([first])
    engine.step()
    handles += engine.submit([doomed, last])
    for _ in range(4):
        engine.step()
    generated = handles[1].tokens
    handles[1].cancel()
    while engine.step():
        pass

    cancelled = handles[1].result(0)
    assert (cancelled.error, cancelled.finish_reason) == (None, "cancelled")
    assert cancelled.completion_tokens == generated > 0
    assert [essentials(h.result(0)) for h in (handles[0], handles[2])] == alone(
        engine, [first, last]
    )


def test_a_row_cancelled_before_it_joins_never_reaches_the_model(
    engine: M2NativeEngine, case_request: Build
) -> None:
    passes, remove = _counting_passes(engine)
    try:
        (handle,) = engine.submit([case_request("math_mc")])
        handle.cancel()
        while engine.step():
            pass
    finally:
        remove()

    assert handle.result(0).finish_reason == "cancelled"
    assert passes == []


def test_submit_prepares_rows_in_the_calling_thread_before_any_step(
    engine: M2NativeEngine, case_request: Build
) -> None:
    sliver = GenerationRequest(SYSTEM_PROMPT, "x", images=(Image.new("RGB", (1000, 4)),))
    good = case_request("math_mc", max_new_tokens=2)

    bad_handle, good_handle = engine.submit([sliver, good])

    # The bad image was refused by submit itself: tokenising and patching never wait
    # for (or run on) the thread that steps the model.
    assert isinstance(bad_handle.result(0).error, InvalidArgument)
    assert not good_handle.done()
    while engine.step():
        pass
    assert good_handle.result(0).error is None
