"""Prompt layout, image expansion, pixel budgets and 3-D positions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image

from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.engines.m2_native.config import load_config
from m2_tools.engines.m2_native.modeling import rope_positions
from m2_tools.engines.m2_native.processor import M2Processor, PreparedPrompt, smart_resize
from m2_tools.errors import InvalidArgument, ModelUnavailable

PATCH, START, END = 536, 537, 538  # the fixture's <imagePatch>, <image>, </image>


@pytest.fixture(scope="module")
def processor(checkpoint_dir: Path) -> M2Processor:
    return M2Processor(checkpoint_dir, load_config(checkpoint_dir))


@pytest.fixture(scope="module")
def two_image_prompt(
    processor: M2Processor, case_request: Callable[..., GenerationRequest]
) -> PreparedPrompt:
    (rhombus,) = case_request("math_mc").images
    (scene,) = case_request("spatial_jpeg").images
    return processor.prepare("sys", "\nQuestion:\n\nSame?", [scene, rhombus])


def _image_blocks(ids: list[int]) -> list[tuple[int, int]]:
    """(start index of the patches, patch count) of each <image> … </image> block."""
    blocks = []
    for i, token in enumerate(ids):
        if token == START:
            n = 0
            while ids[i + 1 + n] == PATCH:
                n += 1
            assert ids[i + 1 + n] == END
            blocks.append((i + 1, n))
    return blocks


def test_expands_each_image_with_its_own_patch_count_in_order(
    two_image_prompt: PreparedPrompt,
) -> None:
    grids = two_image_prompt.image_grid_thw
    assert grids is not None
    expected_counts = [t * h * w // 4 for t, h, w in grids.tolist()]
    assert expected_counts[0] != expected_counts[1]
    blocks = _image_blocks(two_image_prompt.input_ids)
    assert [n for _, n in blocks] == expected_counts
    assert two_image_prompt.input_ids.count(PATCH) == sum(expected_counts)
    assert two_image_prompt.image_tokens == sum(expected_counts)
    assert blocks[1][0] == blocks[0][0] + blocks[0][1] + 2  # </image><image> between them


def test_multi_image_positions_follow_get_rope_index(two_image_prompt: PreparedPrompt) -> None:
    pos = two_image_prompt.position_ids
    grids = two_image_prompt.image_grid_thw
    assert grids is not None
    blocks = _image_blocks(two_image_prompt.input_ids)
    for (first, count), (_, h, w) in zip(blocks, grids.tolist(), strict=True):
        gh, gw = h // 2, w // 2
        base = int(pos[0, first - 1]) + 1  # one past the <image> token
        block = pos[:, first : first + count]
        assert torch.equal(block[0], torch.full((count,), base))
        assert torch.equal(block[1], base + torch.arange(gh).repeat_interleave(gw))
        assert torch.equal(block[2], base + torch.arange(gw).repeat(gh))
        after = pos[:, first + count]  # </image> continues from the larger merged side
        assert torch.equal(after, torch.full((3,), base + max(gh, gw)))
    last = pos[:, -1]
    assert torch.equal(last, torch.full((3,), int(last[0])))
    length = len(two_image_prompt.input_ids)
    assert int(last[0]) + 1 == length + two_image_prompt.rope_delta


def test_generates_after_a_two_image_prompt(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> None:
    (rhombus,) = case_request("math_mc").images
    request = GenerationRequest("sys", "\nQuestion:\n\nSame?", images=(rhombus, rhombus))
    (result,) = engine.generate([request])
    assert result.error is None
    assert result.image_sizes == ((280, 168), (280, 168))
    assert result.image_tokens == 120


def test_text_only_positions_are_plain_on_all_axes(processor: M2Processor) -> None:
    prompt = processor.prepare("sys", "hello")
    n = len(prompt.input_ids)
    assert torch.equal(prompt.position_ids, torch.arange(n).expand(3, -1))
    assert prompt.rope_delta == 0


def test_1d_rope_mode_ignores_the_image_grid() -> None:
    ids = [1, START, PATCH, PATCH, PATCH, PATCH, END, 2]
    positions, delta = rope_positions(
        ids, [(1, 4, 4)], image_token_id=PATCH, spatial_merge_size=2, mode="1d"
    )
    assert torch.equal(positions, torch.arange(8).expand(3, -1))
    assert delta == 0
    positions, delta = rope_positions(ids, [(1, 4, 4)], image_token_id=PATCH, spatial_merge_size=2)
    assert positions[:, 2:6].tolist() == [[2, 2, 2, 2], [2, 2, 3, 3], [2, 3, 2, 3]]
    assert delta == -2


def test_chatml_style_opens_the_assistant_turn(checkpoint_dir: Path) -> None:
    config = load_config(checkpoint_dir)
    official = M2Processor(checkpoint_dir, config).prompt_text("s", "u", 1)
    chatml = M2Processor(checkpoint_dir, config, prompt_style="chatml").prompt_text("s", "u", 1)
    assert official.endswith(
        "<|im_start|>user\n<image>u<|im_end|>\n<|im_start|>assistant<|im_end|>\n"
    )
    assert chatml == official.removesuffix("<|im_start|>assistant<|im_end|>\n") + (
        "<|im_start|>assistant\n"
    )


def test_refuses_aspect_ratio_above_200(processor: M2Processor) -> None:
    with pytest.raises(InvalidArgument):
        smart_resize(4, 1000)
    with pytest.raises(InvalidArgument):
        processor.prepare("s", "u", [Image.new("RGB", (4, 1000))])
    assert smart_resize(28, 28 * 200) == (28, 5600)


def test_refuses_text_smuggling_image_patch_tokens(processor: M2Processor) -> None:
    with pytest.raises(InvalidArgument):
        processor.prepare("s", "look: <imagePatch>")


def test_request_pixel_budget_lowers_but_never_raises_the_cap(
    processor: M2Processor, case_request: Callable[..., GenerationRequest]
) -> None:
    (scene,) = case_request("spatial_jpeg").images
    default = processor.prepare("s", "u", [scene])
    lowered = processor.prepare("s", "u", [scene], max_pixels=3136 * 4)
    raised = processor.prepare("s", "u", [scene], max_pixels=10**8)
    assert lowered.image_tokens < default.image_tokens
    w, h = lowered.image_sizes[0]
    assert w * h <= 3136 * 4
    assert raised.image_sizes == default.image_sizes


def test_many_images_share_the_total_pixel_budget(checkpoint_dir: Path) -> None:
    config = load_config(checkpoint_dir)
    budget = 32 * 3136 * 4
    shared = M2Processor(checkpoint_dir, config, max_total_pixels=budget)
    frames = [Image.new("RGB", (640, 480), (i * 8, 0, 0)) for i in range(32)]
    prompt = shared.prepare("s", "What changes?", frames)
    assert len(prompt.image_sizes) == 32
    assert sum(w * h for w, h in prompt.image_sizes) <= budget
    assert _image_blocks(prompt.input_ids) and len(_image_blocks(prompt.input_ids)) == 32
    assert shared.per_image_max_pixels(1) == shared.max_pixels


def test_server_cap_lowers_the_checkpoint_cap(checkpoint_dir: Path) -> None:
    config = load_config(checkpoint_dir)
    assert M2Processor(checkpoint_dir, config).max_pixels == 50176
    assert M2Processor(checkpoint_dir, config, max_pixels=10_000).max_pixels == 10_000
    assert M2Processor(checkpoint_dir, config, max_pixels=10**9).max_pixels == 50176


def test_transparent_images_are_flattened_on_white(processor: M2Processor) -> None:
    clear = processor.prepare("s", "u", [Image.new("RGBA", (56, 56), (0, 0, 0, 0))])
    white = processor.prepare("s", "u", [Image.new("RGB", (56, 56), (255, 255, 255))])
    assert clear.pixel_values is not None and white.pixel_values is not None
    assert torch.equal(clear.pixel_values, white.pixel_values)


def test_refuses_a_tokenizer_that_disagrees_with_the_config(checkpoint_copy: Path) -> None:
    path = checkpoint_copy / "config.json"
    raw = json.loads(path.read_text())
    raw["llm_config"]["image_patch_token"] = 537
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelUnavailable):
        M2Processor(checkpoint_copy, load_config(checkpoint_copy))
