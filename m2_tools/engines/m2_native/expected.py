"""The tensors an M2 config implies, and how much memory loading them takes.

The names are the checkpoint's own (no leading ``model.``); they are also the
state-dict keys of :class:`~m2_tools.engines.m2_native.modeling.M2Model`.
"""

from __future__ import annotations

from m2_tools.engines.m2_native.config import M2Config, TextConfig, VisionConfig

__all__ = [
    "DTYPE_SIZES",
    "estimate_memory_bytes",
    "estimate_weight_bytes",
    "expected_tensor_shapes",
    "quantizable",
]

#: Bytes per element of the compute dtypes the engine accepts.
DTYPE_SIZES = {"float32": 4, "bfloat16": 2, "float16": 2}
_QUANT_BYTES = {"8bit": 1.0, "4bit": 0.5}
_GIB = 1024**3

Shapes = dict[str, tuple[int, ...]]


def expected_tensor_shapes(config: M2Config) -> Shapes:
    """Return ``{checkpoint tensor name: shape}`` for every weight the model holds."""
    shapes: Shapes = {}
    shapes.update(_vision_shapes(config.vision))
    out, hidden = config.vision.out_hidden_size, config.text.hidden_size
    # linear_proj is Linear(out, H), then (GELU, Linear(H, H)) per further layer.
    for layer in range(config.projector_depth):
        fan_in = out if layer == 0 else hidden
        shapes[f"linear_proj.{2 * layer}.weight"] = (hidden, fan_in)
        shapes[f"linear_proj.{2 * layer}.bias"] = (hidden,)
    shapes.update(_text_shapes(config.text))
    return shapes


def quantizable(name: str) -> bool:
    """Whether a tensor is a decoder linear weight that 8-/4-bit quantization shrinks."""
    return (
        name.startswith("language_model.model.layers.")
        and name.endswith(".weight")
        and ("_proj." in name)
    )


def estimate_weight_bytes(config: M2Config, dtype: str, quantization: str = "none") -> int:
    """Bytes the weights take in memory once loaded in ``dtype`` (and quantized).

    Args:
        config: The parsed checkpoint config.
        dtype: ``float32``, ``bfloat16`` or ``float16``.
        quantization: ``none``, ``8bit`` or ``4bit`` (decoder linear weights only).
    """
    width = DTYPE_SIZES[dtype]
    total = 0.0
    for name, shape in expected_tensor_shapes(config).items():
        numel = 1
        for d in shape:
            numel *= d
        per = _QUANT_BYTES[quantization] if quantization != "none" and quantizable(name) else width
        total += numel * per
    return int(total)


def estimate_memory_bytes(
    config: M2Config,
    dtype: str,
    quantization: str = "none",
    *,
    batch_size: int = 1,
    context_tokens: int = 8192,
) -> int:
    """Estimate the memory a loaded model needs to serve: weights, KV cache and working space.

    Args:
        config: The parsed checkpoint config.
        dtype: ``float32``, ``bfloat16`` or ``float16``.
        quantization: ``none``, ``8bit`` or ``4bit``.
        batch_size: Rows generated together.
        context_tokens: Prompt plus completion length per row.

    Returns:
        The estimate in bytes; the loader refuses to load when the device clearly
        has less free memory than the weights part of it.
    """
    weights = estimate_weight_bytes(config, dtype, quantization)
    text = config.text
    width = DTYPE_SIZES[dtype]
    kv_heads_width = text.num_key_value_heads * text.head_dim
    kv_cache = 2 * text.num_hidden_layers * kv_heads_width * context_tokens * batch_size * width
    # Prompt logits are never materialised beyond one row per step, so the working
    # space is dominated by a layer's activations and the vision tower: a small
    # fraction of the weights plus a fixed allowance.
    working = int(0.05 * weights) + _GIB // 2
    return weights + kv_cache + working


def _vision_shapes(vision: VisionConfig) -> Shapes:
    h, i = vision.hidden_size, vision.intermediate_size
    merged = h * vision.spatial_merge_size**2
    p, tp = vision.patch_size, vision.temporal_patch_size
    shapes: Shapes = {
        "vision_model.patch_embed.proj.weight": (h, vision.in_channels, tp, p, p),
        "vision_model.merger.ln_q.weight": (h,),
        "vision_model.merger.mlp.0.weight": (merged, merged),
        "vision_model.merger.mlp.0.bias": (merged,),
        "vision_model.merger.mlp.2.weight": (vision.out_hidden_size, merged),
        "vision_model.merger.mlp.2.bias": (vision.out_hidden_size,),
    }
    for b in range(vision.depth):
        pre = f"vision_model.blocks.{b}"
        shapes.update(
            {
                f"{pre}.norm1.weight": (h,),
                f"{pre}.norm2.weight": (h,),
                f"{pre}.attn.qkv.weight": (3 * h, h),
                f"{pre}.attn.qkv.bias": (3 * h,),
                f"{pre}.attn.proj.weight": (h, h),
                f"{pre}.attn.proj.bias": (h,),
                f"{pre}.mlp.gate_proj.weight": (i, h),
                f"{pre}.mlp.gate_proj.bias": (i,),
                f"{pre}.mlp.up_proj.weight": (i, h),
                f"{pre}.mlp.up_proj.bias": (i,),
                f"{pre}.mlp.down_proj.weight": (h, i),
                f"{pre}.mlp.down_proj.bias": (h,),
            }
        )
    return shapes


def _text_shapes(text: TextConfig) -> Shapes:
    h, i, v = text.hidden_size, text.intermediate_size, text.vocab_size
    kv = text.num_key_value_heads * text.head_dim
    shapes: Shapes = {
        "language_model.model.embed_tokens.weight": (v, h),
        "language_model.model.norm.weight": (h,),
    }
    if not text.tie_word_embeddings:
        shapes["language_model.lm_head.weight"] = (v, h)
    for n in range(text.num_hidden_layers):
        pre = f"language_model.model.layers.{n}"
        shapes.update(
            {
                f"{pre}.input_layernorm.weight": (h,),
                f"{pre}.post_attention_layernorm.weight": (h,),
                f"{pre}.self_attn.q_proj.weight": (h, h),
                f"{pre}.self_attn.q_proj.bias": (h,),
                f"{pre}.self_attn.k_proj.weight": (kv, h),
                f"{pre}.self_attn.k_proj.bias": (kv,),
                f"{pre}.self_attn.v_proj.weight": (kv, h),
                f"{pre}.self_attn.v_proj.bias": (kv,),
                f"{pre}.self_attn.o_proj.weight": (h, h),
                f"{pre}.mlp.gate_proj.weight": (i, h),
                f"{pre}.mlp.up_proj.weight": (i, h),
                f"{pre}.mlp.down_proj.weight": (h, i),
            }
        )
    return shapes
