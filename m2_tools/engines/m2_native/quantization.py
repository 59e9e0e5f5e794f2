"""Optional 8-/4-bit weights for the decoder's linear layers, through bitsandbytes on CUDA.

Only the decoder's projection weights are quantized (the bulk of the model);
embeddings, norms, the output head, the vision tower and the projector stay in
the compute dtype. bitsandbytes quantizes a weight when it moves from the CPU to
CUDA, so the loader hands these weights over on the CPU.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from m2_tools.engines.m2_native.expected import quantizable
from m2_tools.engines.m2_native.modeling import M2Model
from m2_tools.errors import ModelUnavailable

__all__ = ["quantized_parameter", "replace_linears", "require_bitsandbytes"]

#: bitsandbytes' and transformers' default outlier threshold for LLM.int8().
INT8_THRESHOLD = 6.0


def require_bitsandbytes(quantization: str, device: torch.device) -> Any | None:
    """Return the bitsandbytes module when ``quantization`` asks for it, else None.

    Raises:
        ModelUnavailable: An unknown mode, a non-CUDA device, or bitsandbytes missing.
    """
    if quantization == "none":
        return None
    if quantization not in ("8bit", "4bit"):
        raise ModelUnavailable(f"unknown quantization {quantization!r}; use none, 8bit or 4bit")
    if device.type != "cuda":
        raise ModelUnavailable(f"{quantization} quantization needs a CUDA device, not {device}")
    try:
        import bitsandbytes  # type: ignore[import-not-found]
    except ImportError:
        raise ModelUnavailable(
            f"{quantization} quantization needs the bitsandbytes package "
            "(pip install 'm2-tools[cuda]')"
        ) from None
    return bitsandbytes


def replace_linears(
    model: M2Model, bnb: Any, quantization: str, compute_dtype: torch.dtype
) -> None:
    """Swap the decoder's quantizable ``nn.Linear`` layers for empty bitsandbytes ones (on meta)."""
    decoder = model.language_model.model
    for name, module in list(decoder.named_modules()):
        if not (
            isinstance(module, nn.Linear) and quantizable(f"language_model.model.{name}.weight")
        ):
            continue
        parent_name, _, child = name.rpartition(".")
        has_bias = module.bias is not None
        with torch.device("meta"):
            if quantization == "8bit":
                new = bnb.nn.Linear8bitLt(
                    module.in_features, module.out_features, has_bias,
                    has_fp16_weights=False, threshold=INT8_THRESHOLD,
                )  # fmt: skip
            else:
                new = bnb.nn.Linear4bit(
                    module.in_features, module.out_features, has_bias,
                    compute_dtype=compute_dtype, quant_type="nf4",
                )  # fmt: skip
        setattr(decoder.get_submodule(parent_name), child, new)


def quantized_parameter(
    bnb: Any, module: nn.Module, weight: torch.Tensor, device: torch.device
) -> nn.Parameter:
    """Quantize a CPU ``weight`` for ``module`` by moving it to ``device``."""
    half = weight.to("cpu", torch.float16)
    if isinstance(module, bnb.nn.Linear8bitLt):
        param = bnb.nn.Int8Params(half, requires_grad=False, has_fp16_weights=False)
    else:
        param = bnb.nn.Params4bit(half, requires_grad=False, quant_type="nf4")
    moved: nn.Parameter = param.to(device)
    return moved
