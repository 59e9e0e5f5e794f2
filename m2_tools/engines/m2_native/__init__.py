"""The native M2-Reasoning engine: Qwen2.5-VL blocks, the official weights, no remote code.

Public API (each module lists its names in ``__all__``):

- :mod:`.config` (no torch): ``load_config(dir) -> M2Config``, ``parse_config(raw)``;
  typed ``VisionConfig``, ``TextConfig``, ``SpecialTokenIds``; ``rope_mode`` is
  ``m_rope`` or ``1d`` (``use_llm_3drope`` false), anything else is refused.
- :mod:`.checkpoint` (no torch): ``resolve_checkpoint(ref, allow_download=, token=,
  cache_dir=) -> ResolvedCheckpoint`` (local dir, then hub cache, then a prompt
  download attempt), ``read_tensor_index(dir) -> {name: TensorInfo}`` (headers
  only), ``validate_tensors(tensors, config) -> problems``, and
  ``inspect_checkpoint(ref) -> CheckpointReport`` for ``m2-tools doctor``.
- :mod:`.expected` (no torch): ``expected_tensor_shapes(config)``,
  ``estimate_weight_bytes(config, dtype, quantization)``,
  ``estimate_memory_bytes(config, dtype, quantization, batch_size=, context_tokens=)``.
- :mod:`.modeling`: ``M2Model`` (``vision_model``, ``linear_proj``,
  ``language_model``; ``embed_images``, ``forward``) and ``rope_positions``.
- :mod:`.loading`: ``load_model(dir, config, device=, dtype=, attn_implementation=,
  quantization=, progress=) -> M2Model``, ``resolve_device``, ``resolve_dtype``,
  ``resolve_attention``, ``available_memory_bytes``.
- :mod:`.quantization`: bitsandbytes 8-/4-bit decoder weights (CUDA only).
- :mod:`.processor`: ``M2Processor`` (official prompt text, smart resize, patches,
  ``<imagePatch>`` expansion, 3-D positions) → ``PreparedPrompt``.
- :mod:`.generation`: the running batch (``RunningBatch``, ``DecodeRow``) and
  ``generate_batch(model, prompts, options, stop_ids=, pad_id=)`` with per-row
  ``DecodeOptions`` → ``RowOutput``; :mod:`.sampling`: ``sample_token``.
- :mod:`.prefill`: newcomers' prefill, batched (``prefill_together``) or in chunks
  (``ChunkedPrefill``); :mod:`.kv_cache`: ``BatchCache``, rows joining, leaving and
  sharing prefixes in a ``DynamicCache``.
- :mod:`.batcher`: ``IterationBatcher``, one engine step of iteration-level batching;
  :mod:`.rows`: ``prompt_groups``, submitted rows prepared (in the caller's thread).
- :mod:`.compiled`: ``CompiledDecoder``, the ``M2_COMPILE`` fast path for a lone row.
- :mod:`.engine`: ``M2NativeEngine(settings)``, the engine (batch path and stepped
  per-row path of :mod:`m2_tools.engines.base`).

Importing this package does not import torch; ``M2NativeEngine`` is resolved lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from m2_tools.engines.m2_native.engine import M2NativeEngine

__all__ = ["M2NativeEngine"]


def __getattr__(name: str) -> Any:
    # Lazy so that ``doctor`` can use .checkpoint without paying for torch.
    if name == "M2NativeEngine":
        from m2_tools.engines.m2_native.engine import M2NativeEngine

        return M2NativeEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
