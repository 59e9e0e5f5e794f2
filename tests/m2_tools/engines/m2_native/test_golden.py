"""The native engine reproduces the official implementation's outputs on the golden fixture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.engines.m2_native.generation import DecodeOptions, generate_batch
from m2_tools.engines.m2_native.processor import PreparedPrompt, fetch_resize

CASES = ("math_mc", "spatial_jpeg", "text_only")
IMAGE_CASES = ("math_mc", "spatial_jpeg")


@pytest.fixture(scope="module")
def references(fixture_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {c: load_file(fixture_dir / "reference" / f"{c}.safetensors") for c in CASES}


@pytest.fixture(scope="module")
def prepared(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> dict[str, PreparedPrompt]:
    out = {}
    for case in CASES:
        request = case_request(case)
        out[case] = engine.processor.prepare(
            request.system_prompt, request.user_text, request.images
        )
    return out


@pytest.mark.parametrize("case", CASES)
def test_writes_the_official_prompt_text(
    engine: M2NativeEngine,
    case_request: Callable[..., GenerationRequest],
    cases: dict[str, Any],
    case: str,
) -> None:
    request = case_request(case)
    text = engine.processor.prompt_text(
        request.system_prompt, request.user_text, len(request.images)
    )
    assert text == cases[case]["prompt_text"]


@pytest.mark.parametrize("case", CASES)
def test_reproduces_input_ids_and_3d_positions(
    prepared: dict[str, PreparedPrompt],
    references: dict[str, dict[str, torch.Tensor]],
    cases: dict[str, Any],
    case: str,
) -> None:
    ref, got = references[case], prepared[case]
    assert got.input_ids == ref["input_ids"].tolist()
    assert len(got.input_ids) == cases[case]["prompt_tokens"]
    assert torch.equal(got.position_ids, ref["position_ids"])
    assert got.rope_delta == int(ref["rope_delta"])


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_reproduces_image_resizing_and_pixel_values(
    prepared: dict[str, PreparedPrompt],
    references: dict[str, dict[str, torch.Tensor]],
    case_request: Callable[..., GenerationRequest],
    cases: dict[str, Any],
    case: str,
) -> None:
    ref, got = references[case], prepared[case]
    resized = [list(fetch_resize(image).size) for image in case_request(case).images]
    assert resized == cases[case]["image_sizes_after_fetch_resize_wh"]
    assert got.image_grid_thw is not None and got.pixel_values is not None
    assert got.image_grid_thw.tolist() == cases[case]["image_grid_thw"]
    assert got.pixel_values.shape == ref["pixel_values"].shape
    assert (got.pixel_values - ref["pixel_values"]).abs().max().item() <= 1e-5


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_reproduces_normalised_image_embeddings(
    engine: M2NativeEngine,
    prepared: dict[str, PreparedPrompt],
    references: dict[str, dict[str, torch.Tensor]],
    case: str,
) -> None:
    got = prepared[case]
    assert got.pixel_values is not None and got.image_grid_thw is not None
    with torch.inference_mode():
        embeds = engine.model.embed_images(got.pixel_values, got.image_grid_thw)
    assert embeds.shape == references[case]["image_embeds"].shape
    assert (embeds - references[case]["image_embeds"]).abs().max().item() <= 1e-4
    assert torch.allclose(embeds.norm(dim=-1), torch.ones(embeds.shape[0]), atol=1e-5)


def _teacher_forced_logits(
    engine: M2NativeEngine, prompt: PreparedPrompt, continuation: list[int]
) -> torch.Tensor:
    """Logits over prompt + continuation in one pass, decode positions from the rope delta."""
    ids = torch.tensor(prompt.input_ids + continuation)[None]
    start = len(prompt.input_ids) + prompt.rope_delta
    extra = torch.arange(start, start + len(continuation)).expand(3, -1)
    positions = torch.cat([prompt.position_ids, extra], dim=1)[:, None]
    with torch.inference_mode():
        embeds = None
        if prompt.pixel_values is not None and prompt.image_grid_thw is not None:
            embeds = engine.model.embed_images(prompt.pixel_values, prompt.image_grid_thw)
        logits: torch.Tensor = engine.model(ids, positions, None, None, embeds, logits_to_keep=0)
        return logits[0]


@pytest.mark.parametrize("case", CASES)
def test_reproduces_prompt_logits(
    engine: M2NativeEngine,
    prepared: dict[str, PreparedPrompt],
    references: dict[str, dict[str, torch.Tensor]],
    case: str,
) -> None:
    logits = _teacher_forced_logits(engine, prepared[case], [])
    assert (logits - references[case]["prompt_logits"]).abs().max().item() <= 1e-4


@pytest.mark.parametrize("case", CASES)
def test_reproduces_generation_scores_at_decode_positions(
    engine: M2NativeEngine,
    prepared: dict[str, PreparedPrompt],
    references: dict[str, dict[str, torch.Tensor]],
    case: str,
) -> None:
    ref = references[case]
    generated = ref["generated_ids"].tolist()
    logits = _teacher_forced_logits(engine, prepared[case], generated[:-1])
    scores = logits[len(prepared[case].input_ids) - 1 :]
    assert (scores - ref["generation_scores"]).abs().max().item() <= 1e-4


@pytest.mark.parametrize("case", CASES)
def test_reproduces_greedy_tokens_with_the_kv_cache(
    engine: M2NativeEngine,
    prepared: dict[str, PreparedPrompt],
    references: dict[str, dict[str, torch.Tensor]],
    case: str,
) -> None:
    # The reference ran 24 steps with no early stop, so stopping is disabled here.
    (out,) = generate_batch(
        engine.model,
        [prepared[case]],
        [DecodeOptions(max_new_tokens=24)],
        stop_ids=(),
        pad_id=engine.processor.pad_id,
    )
    assert out.token_ids == references[case]["generated_ids"].tolist()
    assert out.finish_reason == "length"


@pytest.mark.parametrize("case", CASES)
def test_engine_returns_the_reference_text_and_counts(
    engine: M2NativeEngine,
    case_request: Callable[..., GenerationRequest],
    cases: dict[str, Any],
    case: str,
) -> None:
    reference = cases[case]
    # No stop token occurs in the reference, so the engine's stopping cannot cut it short.
    assert not set(reference["generated_ids"]) & set(engine.processor.stop_ids)
    (result,) = engine.generate([case_request(case)])
    assert result.error is None
    assert result.text == reference["generated_text"]
    assert result.finish_reason == "length"
    assert result.completion_tokens == 24
    assert result.prompt_tokens == reference["prompt_tokens"]
    grids = reference["image_grid_thw"] or []
    assert result.image_tokens == sum(t * h * w // 4 for t, h, w in grids)
    assert result.image_sizes == tuple((w * 14, h * 14) for _, h, w in grids)
