"""Parsing ``config.json`` by hand: sizes read from the file, unknown settings refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import m2_tools.engines.m2_native as m2_native
from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.engines.m2_native.config import parse_config
from m2_tools.engines.m2_native.expected import expected_tensor_shapes
from m2_tools.engines.m2_native.modeling import text_config_for
from m2_tools.errors import ModelUnavailable
from m2_tools.settings import Settings


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


def _one_d(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` as a checkpoint with 1-D positions and no rope scaling, which the official
    code runs."""
    changed = copy.deepcopy(raw)
    changed["llm_config"]["use_llm_3drope"] = False
    changed["llm_config"]["rope_scaling"] = None
    return changed


def test_accepts_1d_positions_without_rope_scaling(raw: dict[str, Any]) -> None:
    config = parse_config(_one_d(raw))

    assert config.rope_mode == "1d"
    assert config.text.mrope_section is None


def test_1d_mode_ignores_an_mrope_section_that_it_does_not_use(raw: dict[str, Any]) -> None:
    changed = _one_d(raw)
    changed["llm_config"]["rope_scaling"] = {"mrope_section": [16, 24, 24]}

    assert parse_config(changed).text.mrope_section is None


def test_1d_decoder_config_spans_every_rotary_frequency(raw: dict[str, Any]) -> None:
    config = parse_config(_one_d(raw))

    section = text_config_for(config).rope_parameters["mrope_section"]

    assert section == [config.text.head_dim // 2]


@pytest.mark.parametrize("rope_scaling", [None, {}, {"rope_type": "default"}])
def test_refuses_m_rope_without_a_section_and_says_so(
    raw: dict[str, Any], rope_scaling: dict[str, Any] | None
) -> None:
    changed = copy.deepcopy(raw)
    changed["llm_config"]["rope_scaling"] = rope_scaling

    with pytest.raises(ModelUnavailable) as caught:
        parse_config(changed)

    assert caught.value.code == "model_unavailable"
    # The message is the point here: it names the missing field instead of a sum.
    assert "mrope_section" in caught.value.message
    assert "missing" in caught.value.message


def test_a_1d_checkpoint_without_rope_scaling_generates_the_text_only_reference(
    checkpoint_dir: Path,
    raw: dict[str, Any],
    tmp_path: Path,
    case_request: Callable[..., GenerationRequest],
    cases: dict[str, Any],
) -> None:
    # Why this reference: a text-only prompt has equal positions on the three axes in
    # either mode, so a correct 1-D engine writes exactly what the m_rope one does.
    one_d = tmp_path / "checkpoint-1d"
    one_d.mkdir()
    for path in checkpoint_dir.iterdir():
        if path.name != "config.json":
            (one_d / path.name).symlink_to(path)
    (one_d / "config.json").write_text(json.dumps(_one_d(raw)))
    engine = M2NativeEngine(Settings(model=str(one_d), device="cpu", dtype="float32"))
    engine.load()
    try:
        (result,) = engine.generate([case_request("text_only")])
    finally:
        engine.close()

    assert result.error is None
    assert result.text == cases["text_only"]["generated_text"]


def test_public_surface_is_pinned() -> None:
    assert m2_native.__all__ == ["M2NativeEngine"]
    assert m2_native.M2NativeEngine.__name__ == "M2NativeEngine"
