"""Random weights for M2 checkpoints: their shapes, their values, their shards on disk.

:func:`weight_shapes` lists every tensor of the official layout for a
:class:`~m2_tools.engines.m2_native.tiny.spec.TinyModelSpec`. :func:`write_weights`
writes them as sharded safetensors with ``model.safetensors.index.json``, tensor by
tensor and row block by row block, so even the ``7b-shapes`` preset (about 16.6 GB
in bfloat16) never needs the whole model in memory. :func:`init_random_weights_`
fills a module already in memory with the same distributions, for
:mod:`~m2_tools.engines.m2_native.tiny.random_model`.
"""

from __future__ import annotations

import ctypes
import json
import math
import sys
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import torch

from m2_tools.engines.m2_native.tiny.tokenizer import write_json

if TYPE_CHECKING:
    from m2_tools.engines.m2_native.tiny.spec import TinyModelSpec

__all__ = [
    "DTYPES",
    "init_random_weights_",
    "weight_shapes",
    "write_weights",
]

#: Stored dtype name → (torch dtype, safetensors tag).
DTYPES: dict[str, tuple[torch.dtype, str]] = {
    "float32": (torch.float32, "F32"),
    "bfloat16": (torch.bfloat16, "BF16"),
}
_CHUNK_ELEMENTS = 1 << 23  # rows of big tensors are drawn in ~32 MB pieces
_PROGRESS_MIN_BYTES = 256 * 10**6  # smaller checkpoints are written too fast to need a bar


def weight_shapes(spec: TinyModelSpec, vocab_size: int) -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor of the checkpoint in module order: vision tower, projector, language model.

    Args:
        spec: The model's sizes.
        vocab_size: Rows of the embedding and of the LM head.

    Returns:
        ``(name, shape)`` pairs with the official tensor names.
    """
    vh, vi, h = spec.vision_hidden_size, spec.vision_intermediate_size, spec.hidden_size
    merged = vh * 4  # spatial_merge_size ** 2 patches are concatenated before the merger MLP
    shapes: list[tuple[str, tuple[int, ...]]] = [
        ("vision_model.patch_embed.proj.weight", (vh, 3, 2, 14, 14))
    ]
    for i in range(spec.vision_depth):
        p = f"vision_model.blocks.{i}."
        shapes += [
            (p + "norm1.weight", (vh,)), (p + "norm2.weight", (vh,)),
            (p + "attn.qkv.weight", (3 * vh, vh)), (p + "attn.qkv.bias", (3 * vh,)),
            (p + "attn.proj.weight", (vh, vh)), (p + "attn.proj.bias", (vh,)),
            (p + "mlp.gate_proj.weight", (vi, vh)), (p + "mlp.gate_proj.bias", (vi,)),
            (p + "mlp.up_proj.weight", (vi, vh)), (p + "mlp.up_proj.bias", (vi,)),
            (p + "mlp.down_proj.weight", (vh, vi)), (p + "mlp.down_proj.bias", (vh,)),
        ]  # fmt: skip
    shapes += [
        ("vision_model.merger.ln_q.weight", (vh,)),
        ("vision_model.merger.mlp.0.weight", (merged, merged)),
        ("vision_model.merger.mlp.0.bias", (merged,)),
        ("vision_model.merger.mlp.2.weight", (spec.out_hidden_size, merged)),
        ("vision_model.merger.mlp.2.bias", (spec.out_hidden_size,)),
        ("linear_proj.0.weight", (h, spec.out_hidden_size)),
        ("linear_proj.0.bias", (h,)),
        ("linear_proj.2.weight", (h, h)),
        ("linear_proj.2.bias", (h,)),
        ("language_model.model.embed_tokens.weight", (vocab_size, h)),
    ]
    q = spec.num_attention_heads * spec.head_dim
    kv = spec.num_key_value_heads * spec.head_dim
    inter = spec.intermediate_size
    for i in range(spec.num_hidden_layers):
        p = f"language_model.model.layers.{i}."
        shapes += [
            (p + "input_layernorm.weight", (h,)),
            (p + "self_attn.q_proj.weight", (q, h)), (p + "self_attn.q_proj.bias", (q,)),
            (p + "self_attn.k_proj.weight", (kv, h)), (p + "self_attn.k_proj.bias", (kv,)),
            (p + "self_attn.v_proj.weight", (kv, h)), (p + "self_attn.v_proj.bias", (kv,)),
            (p + "self_attn.o_proj.weight", (h, q)),
            (p + "post_attention_layernorm.weight", (h,)),
            (p + "mlp.gate_proj.weight", (inter, h)), (p + "mlp.up_proj.weight", (inter, h)),
            (p + "mlp.down_proj.weight", (h, inter)),
        ]  # fmt: skip
    shapes += [
        ("language_model.model.norm.weight", (h,)),
        ("language_model.lm_head.weight", (vocab_size, h)),
    ]
    return shapes


def _is_norm(name: str) -> bool:
    return name.endswith(("norm.weight", "norm1.weight", "norm2.weight", "ln_q.weight"))


def _tensor_seed(seed: int, name: str) -> int:
    return (seed * 0x9E3779B1 + zlib.crc32(name.encode())) % (1 << 63)


def _fill_random_(tensor: torch.Tensor, name: str, std: float, generator: torch.Generator) -> None:
    """Normal(0, std) weights and biases; RMSNorm scales near one so every tensor matters."""
    tensor.normal_(0.0, std, generator=generator)
    if _is_norm(name):
        tensor.add_(1.0)


def _random_chunks(
    name: str, shape: tuple[int, ...], dtype: torch.dtype, std: float, seed: int
) -> Iterator[torch.Tensor]:
    """Yield the tensor ``name`` as row blocks, drawn from its own seeded generator."""
    generator = torch.Generator().manual_seed(_tensor_seed(seed, name))
    row = math.prod(shape[1:])
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(row, 1))
    for start in range(0, shape[0], rows_per_chunk):
        rows = min(rows_per_chunk, shape[0] - start)
        block = torch.empty((rows, *shape[1:]), dtype=torch.float32)
        _fill_random_(block, name, std, generator)
        yield block.to(dtype)


def _write_bytes(handle: BinaryIO, tensor: torch.Tensor) -> None:
    # A zero-copy view of the tensor's memory; torch offers no bytes view without NumPy.
    tensor = tensor.contiguous()
    buffer = (ctypes.c_char * tensor.nbytes).from_address(tensor.data_ptr())
    handle.write(memoryview(buffer))


def _plan_shards(
    shapes: Sequence[tuple[str, tuple[int, ...]]], itemsize: int, shard_bytes: int
) -> list[list[tuple[str, tuple[int, ...]]]]:
    """Fill shards in module order; a tensor bigger than a shard gets one to itself."""
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, shape in shapes:
        nbytes = math.prod(shape) * itemsize
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += nbytes
    return shards


def _write_shard(
    path: Path,
    tensors: Sequence[tuple[str, tuple[int, ...]]],
    dtype: str,
    std: float,
    seed: int,
    progress: Any,
) -> None:
    torch_dtype, tag = DTYPES[dtype]
    itemsize = torch.empty((), dtype=torch_dtype).element_size()
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    ordered = sorted(tensors)
    for name, shape in ordered:
        nbytes = math.prod(shape) * itemsize
        header[name] = {
            "dtype": tag,
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as handle:
        handle.write(len(raw).to_bytes(8, "little"))
        handle.write(raw)
        for name, shape in ordered:
            for block in _random_chunks(name, shape, torch_dtype, std, seed):
                _write_bytes(handle, block)
                progress.update(block.nbytes)


def write_weights(
    out: Path,
    shapes: Sequence[tuple[str, tuple[int, ...]]],
    dtype: str,
    shard_size_mb: float,
    std: float,
    seed: int,
) -> int:
    """Write seeded random tensors as safetensors shards plus ``model.safetensors.index.json``.

    Args:
        out: The checkpoint directory.
        shapes: ``(name, shape)`` pairs in module order, as :func:`weight_shapes` gives.
        dtype: A :data:`DTYPES` name.
        shard_size_mb: Largest shard in MB (10**6 bytes); a bigger tensor gets its own.
        std: Standard deviation of the random weights.
        seed: Seed of the weights; each tensor draws from its own generator derived
            from it and its name, so a tensor's values do not depend on the sharding.

    Returns:
        The checkpoint's tensor bytes (the index's ``total_size``).
    """
    # Imported here: only writing to disk shows progress.
    from tqdm import tqdm

    itemsize = torch.empty((), dtype=DTYPES[dtype][0]).element_size()
    shards = _plan_shards(shapes, itemsize, max(1, int(shard_size_mb * 10**6)))
    total = sum(math.prod(shape) * itemsize for _, shape in shapes)
    weight_map: dict[str, str] = {}
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        file=sys.stderr,
        mininterval=1.0,
        desc="weights",
        disable=total < _PROGRESS_MIN_BYTES,
    ) as progress:
        for index, tensors in enumerate(shards, start=1):
            filename = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
            _write_shard(out / filename, tensors, dtype, std, seed, progress)
            weight_map.update({name: filename for name, _ in tensors})
    index_data = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    write_json(out / "model.safetensors.index.json", index_data, indent=2, newline=False)
    return total


def init_random_weights_(module: torch.nn.Module, *, std: float = 0.02, seed: int = 0) -> None:
    """Fill every parameter of ``module`` in place, drawn like a generated checkpoint's.

    Same distributions (normal with ``std``; RMSNorm scales 1 + noise), not the
    same values. Works on any device, with one seeded generator per device.

    Args:
        module: The module whose parameters are overwritten.
        std: Standard deviation of the random weights.
        seed: Seed of every device's generator.
    """
    generators: dict[torch.device, torch.Generator] = {}
    with torch.no_grad():
        for name, param in module.named_parameters():
            device = param.device
            if device not in generators:
                generators[device] = torch.Generator(device=device).manual_seed(seed)
            _fill_random_(param, name, std, generators[device])
