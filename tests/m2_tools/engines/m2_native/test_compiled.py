"""The compiled fast path (``M2_COMPILE``): a lone row on a static cache, same tokens.

The default tier checks the static-cache step and the handover both ways (a row
decoding alone, another joining, the first alone again) with the step run eagerly;
the slow tier compiles it with ``torch.compile`` as the engine does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.engines.m2_native.batcher import IterationBatcher, PromptGroup
from m2_tools.engines.m2_native.compiled import CompiledDecoder
from m2_tools.engines.m2_native.generation import DecodeOptions, DecodeRow
from m2_tools.prompts import SYSTEM_PROMPT, build_user_text
from m2_tools.settings import Settings

Build = Callable[..., GenerationRequest]


def decode(
    engine: M2NativeEngine,
    fast: CompiledDecoder | None,
    requests: Sequence[GenerationRequest],
    joins_at: Sequence[int],
) -> list[list[int]]:
    """Greedy tokens of each request, request ``i`` joining at step ``joins_at[i]``."""
    batcher = IterationBatcher(
        engine.model,
        stop_ids=engine.processor.stop_ids,
        pad_id=engine.processor.pad_id,
        max_rows=4,
        prefill_tokens=512,
        fast=fast,
    )
    rows = [DecodeRow(DecodeOptions(max_new_tokens=r.max_new_tokens)) for r in requests]
    step = 0
    while step <= max(joins_at) or batcher.busy():
        for request, row, at in zip(requests, rows, joins_at, strict=True):
            if at == step:
                prompt = engine.processor.prepare(
                    request.system_prompt, request.user_text, request.images
                )
                batcher.add([PromptGroup(prompt, [row])])
        batcher.step()
        step += 1
    return [row.output.token_ids for row in rows]


@pytest.fixture(scope="module")
def requests(case_request: Build) -> list[GenerationRequest]:
    return [
        case_request("math_mc", max_new_tokens=40),
        GenerationRequest(SYSTEM_PROMPT, build_user_text("Hi?"), max_new_tokens=10),
    ]


def test_a_lone_row_moves_to_the_static_cache_and_back_without_changing_a_token(
    engine: M2NativeEngine, requests: list[GenerationRequest]
) -> None:
    fast = CompiledDecoder(engine.model, compile_step=False)

    tokens = decode(engine, fast, requests, joins_at=[0, 12])

    assert tokens == decode(engine, None, requests, joins_at=[0, 12])
    assert tokens[0] != tokens[1]
    # Alone before the second row joined, and alone again after it left.
    assert 12 < fast.steps < len(tokens[0])
    assert not fast.active


@pytest.mark.slow
# Why: inductor imports torch.utils.mkldnn, which warns about its own use of torch.jit.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_the_compiled_decode_step_gives_the_tokens_of_the_default_path(
    checkpoint_dir: Path, engine: M2NativeEngine, requests: list[GenerationRequest]
) -> None:
    compiled = M2NativeEngine(Settings(model=str(checkpoint_dir), device="cpu", compile=True))
    compiled.load()
    try:
        # The per-row path, as the service's worker drives it: the first row decodes
        # alone (compiled), the second joins mid-flight, the first ends alone again.
        (first,) = compiled.submit([requests[0]])
        for _ in range(12):
            compiled.step()
        (second,) = compiled.submit([requests[1]])
        while compiled.step():
            pass
    finally:
        compiled.close()

    expected = [engine.generate([request])[0].text for request in requests]
    assert [first.result(0).text, second.result(0).text] == expected
