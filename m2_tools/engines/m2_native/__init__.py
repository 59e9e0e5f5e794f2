"""The native M2-Reasoning engine: Qwen2.5-VL blocks, the official weights, no remote code.

Public API (each module lists its names in ``__all__``):

- :mod:`.config`: ``load_config(dir) -> M2Config``, ``parse_config(raw)``; typed
  ``VisionConfig``, ``TextConfig``, ``SpecialTokenIds``.
- :mod:`.checkpoint` (no torch import): ``resolve_checkpoint(ref) -> ResolvedCheckpoint``
  (local dir, hub cache, then a prompt download attempt), ``read_tensor_index(dir)``
  (safetensors headers only), ``validate_tensors(tensors, config) -> problems``,
  ``inspect_checkpoint(ref) -> CheckpointReport`` for ``m2-tools doctor``.
- :mod:`.expected` (no torch import): ``expected_tensor_shapes(config)``,
  ``estimate_weight_bytes(config, dtype, quantization)``,
  ``estimate_memory_bytes(config, dtype, quantization, batch_size=, context_tokens=)``.
- :mod:`.modeling`: ``M2Model`` (``vision_model``, ``linear_proj``, ``language_model``)
  and ``rope_positions`` (3-D mRoPE positions).
- :mod:`.loading`: ``load_model(dir, config, device=, dtype=, ...) -> M2Model``,
  ``resolve_device``, ``resolve_dtype``, ``available_memory_bytes``.
- :mod:`.processor`: ``M2Processor`` (prompt text, image pre-resize and patches,
  tokenisation and ``<imagePatch>`` expansion, left-padded batches).
- :mod:`.generation`: ``generate_batch`` (KV-cached greedy/sampled decoding of
  a left-padded batch, per-row stop, seed, callback and cancel).
- :mod:`.engine`: ``M2NativeEngine(settings)``, the :class:`~m2_tools.engines.base.Engine`.

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
