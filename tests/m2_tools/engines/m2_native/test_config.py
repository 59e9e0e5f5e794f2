"""Parsing ``config.json`` by hand: sizes read from the file, unknown settings refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import m2_tools.engines.m2_native as m2_native
from m2_tools.engines.m2_native.config import parse_config
from m2_tools.engines.m2_native.expected import expected_tensor_shapes
from m2_tools.errors import ModelUnavailable


@pytest.fixture(scope="module")
def raw(checkpoint_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((checkpoint_dir / "config.json").read_text())
    return loaded


def test_reads_every_size_from_the_file(raw: dict[str, Any]) -> None:
    config = parse_config(raw)
    assert (config.vision.depth, config.vision.hidden_size, config.vision.out_hidden_size) == (
        2, 32, 40,
    )  # fmt: skip
    assert config.vision.fullatt_block_indexes == (1,)
    assert (config.text.hidden_size, config.text.num_key_value_heads) == (64, 2)
    assert config.text.mrope_section == (2, 3, 3)
    assert (config.tokens.image_patch, config.tokens.image_start) == (536, 537)
    assert config.rope_mode == "m_rope"


def test_expected_tensors_are_the_fixture_weight_map(
    raw: dict[str, Any], checkpoint_dir: Path
) -> None:
    index = json.loads((checkpoint_dir / "model.safetensors.index.json").read_text())
    assert set(expected_tensor_shapes(parse_config(raw))) == set(index["weight_map"])


@pytest.mark.parametrize("value", [True, "yes", "rope_3d", None])
def test_refuses_unknown_use_llm_3drope(raw: dict[str, Any], value: object) -> None:
    changed = copy.deepcopy(raw)
    changed["llm_config"]["use_llm_3drope"] = value
    with pytest.raises(ModelUnavailable) as caught:
        parse_config(changed)
    assert caught.value.code == "model_unavailable"


def test_refuses_a_missing_size(raw: dict[str, Any]) -> None:
    changed = copy.deepcopy(raw)
    del changed["vision_config"]["out_hidden_size"]
    with pytest.raises(ModelUnavailable) as caught:
        parse_config(changed)
    assert "out_hidden_size" in caught.value.message


def test_refuses_an_mrope_section_that_does_not_fit_the_heads(raw: dict[str, Any]) -> None:
    changed = copy.deepcopy(raw)
    changed["llm_config"]["rope_scaling"]["mrope_section"] = [16, 24, 24]
    with pytest.raises(ModelUnavailable):
        parse_config(changed)


def test_public_surface_is_pinned() -> None:
    assert m2_native.__all__ == ["M2NativeEngine"]
    assert m2_native.M2NativeEngine.__name__ == "M2NativeEngine"
