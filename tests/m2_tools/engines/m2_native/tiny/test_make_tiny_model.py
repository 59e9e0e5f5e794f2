"""The checkpoint generator writes the official M2 layout at any size, loadable by the engine."""

from __future__ import annotations

import json
import math
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from m2_tools.cli import main
from m2_tools.engines.m2_native.checkpoint import inspect_checkpoint, read_tensor_index
from m2_tools.engines.m2_native.config import load_config, parse_config
from m2_tools.engines.m2_native.expected import expected_tensor_shapes
from m2_tools.engines.m2_native.tiny import (
    M2_ADDED_TOKENS,
    QWEN_SPECIAL_TOKENS,
    build_config,
    build_spec,
    make_tiny_model,
    weight_shapes,
)

SPECIAL_TOKENS = [*QWEN_SPECIAL_TOKENS, *M2_ADDED_TOKENS]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "ckpt")


@pytest.fixture(scope="module")
def tokenizer(tiny: Path) -> Tokenizer:
    return Tokenizer.from_file(str(tiny / "tokenizer.json"))


def _shards(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("model-*-of-*.safetensors")}


def test_writes_every_file_of_the_official_layout(tiny: Path, fixture_dir: Path) -> None:
    official = fixture_dir / "checkpoint"
    names = {p.name for p in tiny.iterdir()}
    assert names - _shards(tiny) == {p.name for p in official.iterdir()} - _shards(official)
    count = len(_shards(tiny))
    assert count >= 2
    assert _shards(tiny) == {
        f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)
    }


def test_tiny_preset_reproduces_the_fixture_config_and_processor_files(
    tiny: Path, fixture_dir: Path
) -> None:
    for name in (
        "config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "processor_config.json",
        "chat_template.json",
        "special_tokens_map.json",
        "tokenizer_config.json",
        "added_tokens.json",
    ):
        assert (tiny / name).read_bytes() == (fixture_dir / "checkpoint" / name).read_bytes(), name


def test_tokenizer_pipeline_matches_the_fixture(tiny: Path, fixture_dir: Path) -> None:
    ours = json.loads((tiny / "tokenizer.json").read_text(encoding="utf-8"))
    official = json.loads((fixture_dir / "checkpoint" / "tokenizer.json").read_text("utf-8"))
    for section in ("normalizer", "pre_tokenizer", "post_processor", "decoder", "added_tokens"):
        assert ours[section] == official[section], section
    model_options = {k: v for k, v in ours["model"].items() if k not in ("vocab", "merges")}
    assert model_options == {
        k: v for k, v in official["model"].items() if k not in ("vocab", "merges")
    }
    vocab = json.loads((tiny / "vocab.json").read_text(encoding="utf-8"))
    assert vocab == ours["model"]["vocab"]
    merges = (tiny / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0] == "#version: 0.2"
    assert [m.split(" ") for m in merges[1:]] == ours["model"]["merges"]


def test_index_covers_every_tensor_of_every_shard(tiny: Path) -> None:
    index = json.loads((tiny / "model.safetensors.index.json").read_text(encoding="utf-8"))
    tensors = read_tensor_index(tiny)
    assert set(index["weight_map"]) == set(tensors)
    assert {index["weight_map"][name] == info.shard for name, info in tensors.items()} == {True}
    assert set(index["weight_map"].values()) == _shards(tiny)
    assert index["metadata"]["total_size"] == sum(t.nbytes for t in tensors.values())


def test_tensors_are_what_the_engine_expects(tiny: Path) -> None:
    report = inspect_checkpoint(str(tiny))

    assert report.problems == []
    assert report.tensor_count == len(expected_tensor_shapes(load_config(tiny)))
    assert report.dtypes == {"F32": report.tensor_count}


def test_special_tokens_follow_the_official_order_after_the_bpe(
    tiny: Path, tokenizer: Tokenizer, fixture_dir: Path
) -> None:
    added = json.loads((tiny / "added_tokens.json").read_text(encoding="utf-8"))
    first = tokenizer.get_vocab_size(with_added_tokens=False)
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == list(
        range(first, first + len(SPECIAL_TOKENS))
    )
    assert added == {t: tokenizer.token_to_id(t) for t in SPECIAL_TOKENS}
    official = json.loads((fixture_dir / "checkpoint" / "added_tokens.json").read_text("utf-8"))
    assert sorted(added, key=added.__getitem__) == sorted(official, key=official.__getitem__)


def test_config_token_ids_are_the_tokenizers(tiny: Path, tokenizer: Tokenizer) -> None:
    llm = json.loads((tiny / "config.json").read_text(encoding="utf-8"))["llm_config"]
    config = load_config(tiny)

    assert config.tokens.image_patch == tokenizer.token_to_id("<imagePatch>")
    assert config.tokens.image_start == tokenizer.token_to_id("<image>")
    assert config.tokens.video_start == tokenizer.token_to_id("<video>")
    assert llm["eos_token_id"] == tokenizer.token_to_id("<|im_end|>")
    assert llm["pad_token_id"] == tokenizer.token_to_id("<|endoftext|>")
    assert llm["vocab_size"] >= tokenizer.get_vocab_size(with_added_tokens=True)


def test_transformers_reads_the_same_tokenizer(tiny: Path, tokenizer: Tokenizer) -> None:
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(str(tiny))
    text = "<|im_start|>user\n<image><imagePatch></image>\nQuestion: area?<|im_end|>\n"

    assert loaded(text)["input_ids"] == tokenizer.encode(text).ids
    assert loaded.eos_token == "<|im_end|>"
    assert loaded.pad_token == "<|endoftext|>"


@settings(max_examples=200, deadline=None, database=None)
@given(text=st.text(max_size=200))
def test_tokenizer_round_trips_any_nfc_text(tokenizer: Tokenizer, text: str) -> None:
    assume(unicodedata.normalize("NFC", text) == text)
    ids = tokenizer.encode(text).ids
    assert tokenizer.decode(ids, skip_special_tokens=False) == text


def test_ordinary_words_tokenize_to_few_tokens(tokenizer: Tokenizer) -> None:
    for word in ("triangle", "area", "circle", "left", "right", "question", "answer", "the"):
        assert len(tokenizer.encode(" " + word).ids) == 1, word
    special = "<think>x</think><image><imagePatch></image>"
    assert tokenizer.encode(special).tokens[:3] == ["<think>", "x", "</think>"]


def test_same_seed_writes_identical_files_and_another_seed_other_weights(
    tiny: Path, tmp_path: Path
) -> None:
    again = make_tiny_model(tmp_path / "again")
    other = make_tiny_model(tmp_path / "other", seed=1)

    for name in [*sorted(_shards(tiny)), "tokenizer.json", "config.json"]:
        assert (again / name).read_bytes() == (tiny / name).read_bytes(), name
    first = sorted(_shards(tiny))[0]
    assert (other / first).read_bytes() != (tiny / first).read_bytes()


def test_bfloat16_sizes_and_shards_follow_the_options(tmp_path: Path) -> None:
    out = make_tiny_model(
        tmp_path / "bf16",
        dtype="bfloat16",
        hidden_size=128,
        num_hidden_layers=3,
        vision_hidden_size=64,
        shard_size_mb=0.1,
    )
    report = inspect_checkpoint(str(out))
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))

    assert report.problems == []
    assert set(report.dtypes) == {"BF16"}
    assert len(report.shards) > 3
    assert config["torch_dtype"] == "bfloat16"
    llm = config["llm_config"]
    assert (llm["hidden_size"], llm["num_hidden_layers"], llm["num_attention_heads"]) == (128, 3, 8)
    head_dim = llm["hidden_size"] // llm["num_attention_heads"]
    assert sum(llm["rope_scaling"]["mrope_section"]) == head_dim // 2


def test_7b_shapes_preset_has_the_real_sizes() -> None:
    spec = build_spec("7b-shapes")
    ids = {token: 151643 + i for i, token in enumerate(SPECIAL_TOKENS)}
    config = parse_config(build_config(spec, ids, 152064, "bfloat16"))
    shapes = dict(weight_shapes(spec, 152064))

    assert shapes == expected_tensor_shapes(config)
    assert config.text.mrope_section == (16, 24, 24)
    assert config.vision.fullatt_block_indexes == (7, 15, 23, 31)
    assert 8.2e9 < sum(math.prod(s) for s in shapes.values()) < 8.4e9


@pytest.mark.parametrize(
    "overrides",
    [
        {"num_attention_heads": 3},
        {"num_key_value_heads": 3},
        {"vision_num_heads": 5},
        {"vocab_size": 100},
        {"x": 1},
    ],
)
def test_refuses_sizes_the_model_cannot_have(overrides: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_tiny_model(tmp_path / "bad", **overrides)
    assert not (tmp_path / "bad").exists()


def test_bfloat16_checkpoint_loads_and_generates_with_the_engine(
    tmp_path: Path, fixture_dir: Path
) -> None:
    from PIL import Image

    from m2_tools.engines.base import GenerationRequest
    from m2_tools.engines.m2_native.engine import M2NativeEngine
    from m2_tools.settings import Settings

    out = make_tiny_model(tmp_path / "bf16", dtype="bfloat16", seed=7)
    engine = M2NativeEngine(Settings(model=str(out), device="cpu", dtype="bfloat16"))
    engine.load()
    image = Image.open(fixture_dir / "images" / "rhombus.png")
    requests = [
        GenerationRequest(
            "You are helpful.", "\nQuestion:\n\nFind QS.", (image,), max_new_tokens=5
        ),
        GenerationRequest("You are helpful.", "What is the area?", max_new_tokens=5),
    ]

    results = engine.generate(requests)
    engine.close()

    assert [r.error for r in results] == [None, None]
    assert results[0].image_tokens > 0
    assert results[1].image_tokens == 0
    for result in results:
        assert 1 <= result.completion_tokens <= 5
        assert result.finish_reason in ("stop", "length")


def test_cli_writes_a_checkpoint_and_prints_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"

    code = main(["make-tiny-model", str(out), "--layers", "1", "--seed", "3"])

    assert code == 0
    assert capsys.readouterr().out.strip() == str(out.resolve())
    assert inspect_checkpoint(str(out)).problems == []


def test_cli_refuses_a_non_empty_dir_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")

    assert main(["make-tiny-model", str(out)]) == 1
    assert [p.name for p in out.iterdir()] == ["notes.txt"]

    assert main(["make-tiny-model", str(out), "--overwrite"]) == 0
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert inspect_checkpoint(str(out)).problems == []
