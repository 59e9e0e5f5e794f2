"""The plugin reads the official config.json, refuses what the native engine refuses, and
``m2-vllm serve`` starts vLLM with the official prompt format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pytest
from m2_vllm.config import M2ConfigError, M2VllmConfig, parse_m2_config
from m2_vllm.serve import CHAT_TEMPLATE, main, server_arguments


def test_refuses_each_broken_config_with_the_native_engines_message(
    reference: dict[str, Any],
) -> None:
    assert reference["refusals"]
    for case in reference["refusals"]:
        with pytest.raises(M2ConfigError) as caught:
            parse_m2_config(case["config"], source="/ckpt/config.json")
        assert str(caught.value) == case["message"], case["name"]


def test_exposes_llm_config_as_the_text_config(reference: dict[str, Any]) -> None:
    for label, expected_mode in (("m_rope", "m_rope"), ("1d", "1d")):
        path = Path(reference["checkpoints"][label]["path"])
        raw = json.loads((path / "config.json").read_text("utf-8"))
        config = M2VllmConfig(**raw)
        text = config.get_text_config()
        assert text.hidden_size == raw["llm_config"]["hidden_size"]
        assert (
            text.rope_parameters["mrope_section"]
            == raw["llm_config"]["rope_scaling"]["mrope_section"]
        )
        assert config.image_token_id == raw["llm_config"]["image_patch_token"]
        assert config.vision_start_token_id == raw["llm_config"]["image_start_token"]
        assert config.vision_config.out_hidden_size == raw["vision_config"]["out_hidden_size"]
        assert config.rope_mode == expected_mode


def test_chat_template_renders_the_official_prompt(reference: dict[str, Any]) -> None:
    case = reference["checkpoints"]["m_rope"]["cases"]["two_images"]
    placeholders = "<image><imagePatch></image>" * len(case["images"])
    messages = [
        {"role": "system", "content": case["system"]},
        {"role": "user", "content": placeholders + case["user"]},
    ]
    template = jinja2.Environment().from_string(CHAT_TEMPLATE.read_text("utf-8"))
    rendered = template.render(messages=messages, add_generation_prompt=True)
    assert rendered == case["prompt"].replace("<image>", "<image><imagePatch></image>")
    assert rendered.endswith("<|im_start|>assistant<|im_end|>\n")


def test_serve_defaults_give_way_to_given_options() -> None:
    args = server_arguments(
        "/m", "127.0.0.1", 8001, ["--chat-template=/other", "--dtype", "float32"]
    )
    assert args[:6] == ["--model", "/m", "--host", "127.0.0.1", "--port", "8001"]
    assert str(CHAT_TEMPLATE) not in args
    assert args[args.index("--chat-template-content-format") + 1] == "string"
    assert args[args.index("--generation-config") + 1] == "vllm"
    assert args[-3:] == ["--chat-template=/other", "--dtype", "float32"]


def test_serve_refuses_a_broken_checkpoint_before_starting_vllm(tmp_path: Path) -> None:
    raw = {"model_type": "bailing_qwen2_5", "llm_config": {}, "vision_config": {}}
    (tmp_path / "config.json").write_text(json.dumps(raw), "utf-8")
    assert main(["serve", str(tmp_path)]) == 2


def test_serve_refuses_remote_code(tmp_path: Path) -> None:
    assert main(["serve", str(tmp_path), "--trust-remote-code"]) == 2
