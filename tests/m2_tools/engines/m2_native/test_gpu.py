"""The native engine on CUDA (run with --gpu)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.settings import Settings

pytestmark = pytest.mark.gpu


def _cuda_engine(checkpoint_dir: Path, dtype: str) -> M2NativeEngine:
    engine = M2NativeEngine(Settings(model=str(checkpoint_dir), device="cuda", dtype=dtype))
    engine.load()
    return engine


def test_float32_on_cuda_reproduces_the_reference_tokens(
    checkpoint_dir: Path, case_request: Callable[..., GenerationRequest], cases: dict[str, Any]
) -> None:
    engine = _cuda_engine(checkpoint_dir, "float32")
    assert engine.info.backend.startswith("m2-native/cuda/float32")
    results = engine.generate([case_request(name) for name in cases])
    assert [r.text for r in results] == [c["generated_text"] for c in cases.values()]
    engine.close()


def test_bfloat16_batched_greedy_equals_one_at_a_time_on_cuda(
    checkpoint_dir: Path, case_request: Callable[..., GenerationRequest], cases: dict[str, Any]
) -> None:
    engine = _cuda_engine(checkpoint_dir, "auto")
    assert engine.info.backend.startswith("m2-native/cuda/bfloat16")
    requests = [case_request(name, max_new_tokens=16) for name in cases]
    alone = [engine.generate([r])[0] for r in requests]
    together = engine.generate(requests)
    assert all(r.error is None for r in together)
    # bf16 kernels may differ with batch shape; the token count must not.
    assert [r.completion_tokens for r in together] == [r.completion_tokens for r in alone]
    engine.close()
