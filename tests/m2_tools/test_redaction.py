"""What callers see of the server: model ids and messages without server paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from m2_tools.redaction import public_model_id, without_paths


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/home/ana/models/m2/config.json is missing", ".../config.json is missing"),
        ("cannot read '/srv/m2/model.safetensors'", "cannot read '.../model.safetensors'"),
        (
            "out of memory while loading /models on cuda:0",
            "out of memory while loading .../models on cuda:0",
        ),
        ("see ~/.cache/huggingface/hub/x", "see .../x"),
        (r"C:\Users\ana\m2 is missing", ".../m2 is missing"),
        ("(/tmp/x)", "(.../x)"),
    ],
)
def test_paths_are_cut_to_their_final_name(text: str, expected: str) -> None:
    assert without_paths(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "fetch https://example.com/a/b.png failed",
        "3/4 of the options, and/or more",
        "the model 'inclusionAI/M2-Reasoning' cannot be loaded",
        "a / b",
    ],
)
def test_text_without_server_paths_is_unchanged(text: str) -> None:
    assert without_paths(text) == text


def test_a_local_checkpoint_is_named_by_its_directory(tmp_path: Path) -> None:
    checkpoint = tmp_path / "models" / "M2-Local"
    checkpoint.mkdir(parents=True)

    assert public_model_id(str(checkpoint)) == "M2-Local"
    assert public_model_id(f"{checkpoint}/") == "M2-Local"


@pytest.mark.parametrize("model", ["inclusionAI/M2-Reasoning", "M2-Reasoning"])
def test_a_hub_id_is_unchanged(model: str) -> None:
    assert public_model_id(model) == model


def test_a_relative_path_is_named_by_its_final_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ckpt").mkdir()
    monkeypatch.chdir(tmp_path)

    assert public_model_id("./ckpt") == "ckpt"
    assert public_model_id("deep/nested/ckpt") == "ckpt"
