"""M2 on vLLM equals m2-tools' native engine, token for token (vLLM's CPU build).

For text, one-image and two-image prompts, on the 3-D (mRoPE) checkpoint and on its 1-D RoPE
copy: the same prompt ids, image patches, image embeddings within 1e-5, the same greedy
tokens, and the same tokens again when a rerun is served from vLLM's prefix cache. The native
side comes from ``native_reference.py`` (m2-tools' environment).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
# One process: the engine core runs in the test process (faster start, no spawn).
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

torch = pytest.importorskip("torch")
vllm = pytest.importorskip("vllm")

from m2_vllm.processing import IMAGE_PLACEHOLDER, M2ImageProcessor, _preprocessor_config  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

CASES = ("text", "one_image", "two_images")
LABELS = ("m_rope", "1d")


@dataclass
class VllmRun:
    """What vLLM made of every case of one checkpoint."""

    native: dict[str, Any]
    first: dict[str, Any]
    rerun: dict[str, Any]
    embeds: dict[str, Any]


def _prompt(case: dict[str, Any]) -> dict[str, Any]:
    # The native prompt with each <image> written as the placeholder vLLM expands.
    prompt: dict[str, Any] = {"prompt": case["prompt"].replace("<image>", IMAGE_PLACEHOLDER)}
    if case["images"]:
        prompt["multi_modal_data"] = {"image": [Image.open(p) for p in case["images"]]}
    return prompt


def _embed(pixel_values: Any, grid: Any) -> Any:
    def run(model: Any) -> Any:
        with torch.no_grad():
            parts = model.embed_multimodal(pixel_values=pixel_values, image_grid_thw=grid)
        return torch.cat(list(parts)).cpu()

    return run


@pytest.fixture(scope="module", params=LABELS)
def vllm_run(
    request: pytest.FixtureRequest, reference: dict[str, Any], reference_dir: Path
) -> Iterator[VllmRun]:
    label = request.param
    native = reference["checkpoints"][label]
    tensors = load_file(str(reference_dir / "reference.safetensors"))
    llm = vllm.LLM(
        model=native["path"], dtype="float32", max_model_len=2048, max_num_seqs=4,
        enforce_eager=True, enable_prefix_caching=True, seed=0,
    )  # fmt: skip
    params = vllm.SamplingParams(
        temperature=0.0,
        max_tokens=reference["greedy_tokens"],
        stop_token_ids=native["cases"]["text"]["stop_ids"],
        skip_special_tokens=False,
    )
    prompts = [_prompt(native["cases"][name]) for name in CASES]
    first = dict(zip(CASES, llm.generate(prompts, params, use_tqdm=False), strict=True))
    rerun = dict(zip(CASES, llm.generate(prompts, params, use_tqdm=False), strict=True))
    embeds = {}
    for name in CASES[1:]:
        key = f"{label}/{name}"
        [found] = llm.apply_model(
            _embed(tensors[f"{key}/pixel_values"], tensors[f"{key}/image_grid_thw"])
        )
        embeds[name] = (found, tensors[f"{key}/image_embeds"])
    yield VllmRun(native["cases"], first, rerun, embeds)
    del llm
    gc.collect()


@pytest.mark.parametrize("case", CASES)
def test_prompt_ids_equal_the_native_engines(vllm_run: VllmRun, case: str) -> None:
    assert list(vllm_run.first[case].prompt_token_ids) == vllm_run.native[case]["prompt_ids"]


@pytest.mark.parametrize("case", CASES)
def test_greedy_tokens_equal_the_native_engines(vllm_run: VllmRun, case: str) -> None:
    assert list(vllm_run.first[case].outputs[0].token_ids) == vllm_run.native[case]["greedy_ids"]


@pytest.mark.parametrize("case", CASES[1:])
def test_image_embeddings_match_within_1e5(vllm_run: VllmRun, case: str) -> None:
    found, expected = vllm_run.embeds[case]
    assert found.shape == expected.shape
    assert torch.allclose(found, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_prefix_cache_rerun_gives_the_same_tokens(vllm_run: VllmRun, case: str) -> None:
    rerun = vllm_run.rerun[case]
    assert (rerun.num_cached_tokens or 0) > 0
    assert list(rerun.outputs[0].token_ids) == list(vllm_run.first[case].outputs[0].token_ids)


@pytest.mark.parametrize("case", CASES[1:])
def test_image_patches_equal_the_native_processors(
    reference: dict[str, Any], reference_dir: Path, case: str
) -> None:
    native = reference["checkpoints"]["m_rope"]
    tensors = load_file(str(reference_dir / "reference.safetensors"))
    processor = M2ImageProcessor(_preprocessor_config(native["path"]))
    out = processor([Image.open(p) for p in native["cases"][case]["images"]])
    assert torch.equal(out["image_grid_thw"], tensors[f"m_rope/{case}/image_grid_thw"])
    assert torch.allclose(out["pixel_values"], tensors[f"m_rope/{case}/pixel_values"], atol=1e-6)
