"""Build :class:`M2Model` on the meta device and fill it shard by shard.

Nothing is allocated until a tensor is read from its shard, cast to the target
dtype and placed on the target device, so peak memory stays close to the size
of the loaded weights (a 16.7 GB bfloat16 checkpoint loads on a 24 GB machine).
The headers are checked against the config first, so a broken checkpoint is
refused before any memory is spent on it.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from m2_tools.engines.m2_native.checkpoint import TensorInfo, read_tensor_index, validate_tensors
from m2_tools.engines.m2_native.config import M2Config
from m2_tools.engines.m2_native.expected import estimate_weight_bytes, quantizable
from m2_tools.engines.m2_native.modeling import M2Model
from m2_tools.engines.m2_native.quantization import (
    quantized_parameter,
    replace_linears,
    require_bitsandbytes,
)
from m2_tools.errors import ModelUnavailable

__all__ = [
    "available_memory_bytes",
    "load_model",
    "resolve_attention",
    "resolve_device",
    "resolve_dtype",
]

logger = logging.getLogger(__name__)

#: Called after each shard with (shards done, shard count, message).
ShardProgress = Callable[[int, int, str], None]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_HEADROOM = 1.05  # weights plus allocator slack must fit in what the device has free


def resolve_device(device: str) -> torch.device:
    """``auto`` → cuda, then mps, then cpu; anything else is checked for availability.

    Raises:
        ModelUnavailable: The requested device does not exist here.
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelUnavailable(f"device {device} was requested but CUDA is not available")
        if (resolved.index or 0) >= torch.cuda.device_count():
            raise ModelUnavailable(f"device {device} does not exist")
        if resolved.index is None:
            resolved = torch.device("cuda", torch.cuda.current_device())
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ModelUnavailable("device mps was requested but MPS is not available")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` → bfloat16 on CUDA and MPS, float32 on CPU."""
    if dtype == "auto":
        return torch.float32 if device.type == "cpu" else torch.bfloat16
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ModelUnavailable(f"unknown dtype {dtype!r}; use {', '.join(_DTYPES)}") from None


def resolve_attention(setting: str, device: torch.device, dtype: torch.dtype) -> str:
    """``auto`` → flash_attention_2 when installed on CUDA in half precision, else sdpa.

    Raises:
        ModelUnavailable: flash_attention_2 was forced where it cannot run.
    """
    flash_ok = (
        device.type == "cuda"
        and dtype in (torch.float16, torch.bfloat16)
        and importlib.util.find_spec("flash_attn") is not None
    )
    if setting == "auto":
        return "flash_attention_2" if flash_ok else "sdpa"
    if setting == "flash_attention_2" and not flash_ok:
        raise ModelUnavailable(
            "attn_implementation flash_attention_2 needs CUDA, float16/bfloat16 and the "
            "flash-attn package"
        )
    return setting


def available_memory_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` (MemAvailable for CPU, free CUDA memory), or None if unknown."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def load_model(
    checkpoint_dir: Path,
    config: M2Config,
    *,
    device: torch.device,
    dtype: torch.dtype,
    attn_implementation: str = "sdpa",
    quantization: str = "none",
    progress: ShardProgress | None = None,
) -> M2Model:
    """Check the checkpoint, then build the model on ``meta`` and assign it shard by shard.

    Args:
        checkpoint_dir: The resolved checkpoint directory.
        config: Its parsed config.
        device: Where the weights go.
        dtype: The compute dtype every floating tensor is cast to.
        attn_implementation: ``sdpa``, ``eager`` or ``flash_attention_2``.
        quantization: ``none``, ``8bit`` or ``4bit`` (CUDA with bitsandbytes only).
        progress: Called after each shard.

    Raises:
        ModelUnavailable: Missing or mis-shaped tensors, not enough memory, or an
            unsupported quantization.
    """
    tensors = read_tensor_index(checkpoint_dir)
    problems = validate_tensors(tensors, config)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ModelUnavailable(f"checkpoint {checkpoint_dir}: {'; '.join(problems[:3])}{more}")
    bnb = require_bitsandbytes(quantization, device)
    dtype_name = str(dtype).removeprefix("torch.")
    needed = estimate_weight_bytes(config, dtype_name, quantization)
    free = available_memory_bytes(device)
    if free is not None and needed * _HEADROOM > free:
        raise ModelUnavailable(
            f"{device} has {free / 2**30:.1f} GiB free but the weights need about "
            f"{needed / 2**30:.1f} GiB in {dtype_name}; use a smaller dtype, quantization "
            "or another device"
        )
    with torch.device("meta"):
        model = M2Model(config, attn_implementation)
    if bnb is not None:
        replace_linears(model, bnb, quantization, dtype)
    _assign_shards(model, checkpoint_dir, tensors, device, dtype, bnb, progress)
    if config.text.tie_word_embeddings:
        model.language_model.lm_head.weight = model.language_model.model.embed_tokens.weight
    _init_rotary_buffers(model, device)
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise ModelUnavailable(f"checkpoint {checkpoint_dir}: tensors never loaded: {leftover[:3]}")
    return model.eval().requires_grad_(False)


def _assign_shards(
    model: M2Model,
    checkpoint_dir: Path,
    tensors: Mapping[str, TensorInfo],
    device: torch.device,
    dtype: torch.dtype,
    bnb: Any | None,
    progress: ShardProgress | None,
) -> None:
    shards = sorted({t.shard for t in tensors.values()})
    # safetensors can read straight into CUDA memory; other devices go through the
    # CPU, and so do weights bitsandbytes is to quantize (it does so on the move).
    read_at = str(device) if device.type == "cuda" and bnb is None else "cpu"
    for done, shard in enumerate(shards, start=1):
        with safe_open(str(checkpoint_dir / shard), framework="pt", device=read_at) as f:
            for name in f.keys():  # noqa: SIM118 - safe_open is not a Mapping
                value = f.get_tensor(name)
                module_name, _, attr = name.rpartition(".")
                module = model.get_submodule(module_name)
                if bnb is not None and attr == "weight" and quantizable(name):
                    module.weight = quantized_parameter(bnb, module, value, device)
                else:
                    value = value.to(device=device, dtype=dtype)
                    module._parameters[attr] = nn.Parameter(value, requires_grad=False)
        logger.info("loaded shard %s (%d/%d)", shard, done, len(shards))
        if progress is not None:
            progress(done, len(shards), f"loaded {shard}")


def _init_rotary_buffers(model: M2Model, device: torch.device) -> None:
    # inv_freq buffers are not in the checkpoint; on meta they hold nothing, so
    # recompute them from the config, in float32 as transformers keeps them.
    for module in model.modules():
        compute = getattr(module, "compute_default_rope_parameters", None) or getattr(
            module, "compute_axial_rope_parameters", None
        )
        if compute is None or not hasattr(module, "inv_freq"):
            continue
        inv_freq, scaling = compute(module.config)
        inv_freq = inv_freq.to(device=device, dtype=torch.float32)
        module.register_buffer("inv_freq", inv_freq, persistent=False)
        module.register_buffer("original_inv_freq", inv_freq.clone(), persistent=False)
        module.attention_scaling = scaling
