"""Checkpoint resolution, header checks and meta-device loading; failures are ModelUnavailable."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.engines.m2_native.checkpoint import inspect_checkpoint, resolve_checkpoint
from m2_tools.engines.m2_native.config import load_config
from m2_tools.engines.m2_native.expected import estimate_memory_bytes, estimate_weight_bytes
from m2_tools.engines.m2_native.loading import available_memory_bytes, load_model
from m2_tools.engines.m2_native.modeling import M2Model
from m2_tools.errors import ModelUnavailable
from m2_tools.settings import Settings

SHARD_1 = "model-00001-of-00002.safetensors"
SHARD_2 = "model-00002-of-00002.safetensors"


def _load(model: str | Path, **settings: object) -> M2NativeEngine:
    engine = M2NativeEngine(Settings(model=str(model), device="cpu", **settings))
    engine.load()
    return engine


def _edit_config(checkpoint: Path, section: str, key: str, value: object) -> None:
    path = checkpoint / "config.json"
    raw = json.loads(path.read_text())
    raw[section][key] = value
    path.write_text(json.dumps(raw))


def _rewrite_shard(checkpoint: Path, shard: str, edit: dict[str, torch.Tensor | None]) -> None:
    tensors = load_file(checkpoint / shard)
    for name, value in edit.items():
        if value is None:
            del tensors[name]
        else:
            tensors[name] = value
    save_file(tensors, checkpoint / shard)


def test_loads_every_tensor_exactly_and_initialises_rotary_buffers(
    checkpoint_dir: Path, engine: M2NativeEngine
) -> None:
    config = load_config(checkpoint_dir)
    eager = M2Model(config).eval()
    weights = {**load_file(checkpoint_dir / SHARD_1), **load_file(checkpoint_dir / SHARD_2)}
    eager.load_state_dict(weights, strict=True)
    loaded = dict(engine.model.named_parameters()) | dict(engine.model.named_buffers())
    expected = dict(eager.named_parameters()) | dict(eager.named_buffers())
    assert loaded.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(loaded[name], tensor), name
    assert not any(t.requires_grad for t in engine.model.parameters())


def test_reports_identity_and_progress_per_shard(checkpoint_dir: Path) -> None:
    engine = M2NativeEngine(Settings(model=str(checkpoint_dir), device="cpu"))
    assert engine.info.id == str(checkpoint_dir)
    events: list[tuple[float, float, str]] = []
    engine.load(lambda done, total, message: events.append((done, total, message)))
    assert [(d, t) for d, t, _ in events if t] == [(1, 2), (2, 2)]
    assert engine.info.backend == "m2-native/cpu/float32"
    assert engine.info.revision is None and engine.info.device == "cpu"
    engine.close()


def test_loads_in_bfloat16_on_request(checkpoint_dir: Path) -> None:
    engine = _load(checkpoint_dir, dtype="bfloat16")
    assert engine.info.backend == "m2-native/cpu/bfloat16"
    assert engine.model.language_model.lm_head.weight.dtype == torch.bfloat16
    assert engine.model.language_model.model.rotary_emb.inv_freq.dtype == torch.float32


def test_missing_directory_is_model_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        _load(tmp_path / "nowhere")
    assert caught.value.code == "model_unavailable"


def test_uncached_hub_id_fails_promptly_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as caught:
        resolve_checkpoint("m2-tools-tests/not-a-model", cache_dir=tmp_path)
    assert time.monotonic() - started < 10
    assert "not found locally and could not be downloaded" in caught.value.message


def test_resolves_a_hub_id_from_the_local_cache_with_its_revision(
    checkpoint_dir: Path, tmp_path: Path
) -> None:
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--m2-tools-tests--tiny"
    shutil.copytree(checkpoint_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    resolved = resolve_checkpoint("m2-tools-tests/tiny", allow_download=False, cache_dir=tmp_path)
    assert (resolved.revision, resolved.source) == (revision, "hub-cache")
    assert load_config(resolved.path).text.vocab_size == 576


def test_missing_shard_is_model_unavailable(checkpoint_copy: Path) -> None:
    (checkpoint_copy / SHARD_2).unlink()
    with pytest.raises(ModelUnavailable) as caught:
        _load(checkpoint_copy)
    assert SHARD_2 in caught.value.message


def test_truncated_shard_is_model_unavailable(checkpoint_copy: Path) -> None:
    shard = checkpoint_copy / SHARD_1
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ModelUnavailable) as caught:
        _load(checkpoint_copy)
    assert "truncated" in caught.value.message


def test_wrong_tensor_shape_is_named(checkpoint_copy: Path) -> None:
    name = "linear_proj.0.weight"
    _rewrite_shard(checkpoint_copy, SHARD_1, {name: torch.zeros(64, 41)})
    with pytest.raises(ModelUnavailable) as caught:
        _load(checkpoint_copy)
    assert name in caught.value.message


def test_missing_and_unexpected_tensors_are_named(checkpoint_copy: Path) -> None:
    _rewrite_shard(
        checkpoint_copy,
        SHARD_2,
        {"language_model.model.norm.weight": None, "language_model.extra": torch.zeros(2)},
    )
    report = inspect_checkpoint(str(checkpoint_copy))
    assert not report.ok
    assert any("language_model.model.norm.weight is missing" in p for p in report.problems)
    assert any("language_model.extra is unexpected" in p for p in report.problems)
    with pytest.raises(ModelUnavailable):
        _load(checkpoint_copy)


def test_unknown_use_llm_3drope_is_refused(checkpoint_copy: Path) -> None:
    _edit_config(checkpoint_copy, "llm_config", "use_llm_3drope", "yarn_3d")
    with pytest.raises(ModelUnavailable) as caught:
        _load(checkpoint_copy)
    assert "use_llm_3drope" in caught.value.message


def test_use_llm_3drope_false_uses_1d_positions(checkpoint_copy: Path) -> None:
    _edit_config(checkpoint_copy, "llm_config", "use_llm_3drope", False)
    engine = _load(checkpoint_copy)
    prompt = engine.processor.prepare("s", "u", [Image.new("RGB", (100, 80), (10, 200, 30))])
    assert prompt.image_tokens > 0
    assert torch.equal(prompt.position_ids, torch.arange(len(prompt.input_ids)).expand(3, -1))
    (result,) = engine.generate([GenerationRequest("s", "u", max_new_tokens=3)])
    assert result.error is None


def test_wrong_model_type_is_refused(checkpoint_copy: Path) -> None:
    raw = json.loads((checkpoint_copy / "config.json").read_text())
    raw["model_type"] = "qwen2_5_vl"
    (checkpoint_copy / "config.json").write_text(json.dumps(raw))
    with pytest.raises(ModelUnavailable):
        _load(checkpoint_copy)


def test_quantization_without_cuda_is_refused(checkpoint_dir: Path) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        _load(checkpoint_dir, quantization="8bit")
    assert "CUDA" in caught.value.message


def test_flash_attention_without_cuda_is_refused(checkpoint_dir: Path) -> None:
    with pytest.raises(ModelUnavailable):
        _load(checkpoint_dir, attn_implementation="flash_attention_2")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA refusal")
def test_cuda_device_without_cuda_is_refused(checkpoint_dir: Path) -> None:
    engine = M2NativeEngine(Settings(model=str(checkpoint_dir), device="cuda"))
    with pytest.raises(ModelUnavailable):
        engine.load()


def test_eager_attention_matches_sdpa(checkpoint_dir: Path, engine: M2NativeEngine) -> None:
    eager = _load(checkpoint_dir, attn_implementation="eager")
    request_ids = engine.processor.prepare("s", "What is 2+2?")
    sdpa_out = engine.model(
        torch.tensor([request_ids.input_ids]), request_ids.position_ids[:, None], logits_to_keep=0
    )
    eager_out = eager.model(
        torch.tensor([request_ids.input_ids]), request_ids.position_ids[:, None], logits_to_keep=0
    )
    assert torch.allclose(sdpa_out, eager_out, atol=1e-4)


def test_refuses_a_checkpoint_too_big_for_memory_before_allocating(checkpoint_copy: Path) -> None:
    """A sparse shard claims a vocabulary of a billion rows; the loader must refuse it early."""
    free = available_memory_bytes(torch.device("cpu"))
    if free is None:
        pytest.skip("free memory unknown on this platform")
    checkpoint = checkpoint_copy
    vocab = 1_000_000_000
    _edit_config(checkpoint, "llm_config", "vocab_size", vocab)
    config = load_config(checkpoint)
    if estimate_weight_bytes(config, "float32") < 2 * free:
        pytest.skip("this machine has enough memory for the oversized test checkpoint")
    header: dict[str, object] = {}
    offset = 0
    shard2 = load_file(checkpoint / SHARD_2)
    for name, tensor in shard2.items():
        shape = list(tensor.shape)
        if name.endswith(("embed_tokens.weight", "lm_head.weight")):
            shape[0] = vocab
        size = 4 * int(torch.tensor(shape).prod())
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header).encode()
    with (checkpoint / SHARD_2).open("wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        f.truncate(8 + len(blob) + offset)  # sparse: no disk blocks are written
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as caught:
        load_model(checkpoint, config, device=torch.device("cpu"), dtype=torch.float32)
    assert "GiB free" in caught.value.message
    assert time.monotonic() - started < 10


def test_inspect_reports_the_fixture_without_loading_it(checkpoint_dir: Path) -> None:
    report = inspect_checkpoint(str(checkpoint_dir))
    assert report.ok, report.problems
    assert report.path == checkpoint_dir.resolve()
    assert report.config is not None and report.config.rope_mode == "m_rope"
    assert (report.tensor_count, report.total_bytes, report.dtype) == (61, 928800, "F32")
    assert report.parameter_count * 4 == report.total_bytes
    assert report.shards == [SHARD_1, SHARD_2]


def test_inspect_never_raises_for_a_missing_model(tmp_path: Path) -> None:
    report = inspect_checkpoint(str(tmp_path / "absent"))
    assert not report.ok and report.config is None


def test_memory_estimate_shrinks_with_dtype_and_quantization(checkpoint_dir: Path) -> None:
    config = load_config(checkpoint_dir)
    fp32 = estimate_weight_bytes(config, "float32")
    assert fp32 == 928800
    assert estimate_weight_bytes(config, "bfloat16") == fp32 // 2
    assert (
        estimate_weight_bytes(config, "bfloat16", "4bit")
        < estimate_weight_bytes(config, "bfloat16", "8bit")
        < fp32 // 2
    )
    assert estimate_memory_bytes(config, "bfloat16") > estimate_weight_bytes(config, "bfloat16")


def test_checkpoint_inspection_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from m2_tools.engines.m2_native.checkpoint import inspect_checkpoint\n"
        "from m2_tools.engines.m2_native.expected import estimate_memory_bytes\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
