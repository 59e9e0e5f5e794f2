"""Random-weight M2 checkpoints in the official layout (``m2-tools make-tiny-model``).

:mod:`.spec` holds the sizes and ``config.json``, :mod:`.tokenizer` the tokenizer and
processor files, :mod:`.weights` the seeded random tensors, :mod:`.random_model` in-memory
models, and :mod:`.model` the directory writer. The subcommand itself is
:mod:`m2_tools.cli.make_tiny_model`.
"""

from m2_tools.engines.m2_native.tiny.model import (
    M2_ADDED_TOKENS,
    PRESETS,
    QWEN_SPECIAL_TOKENS,
    TinyModelSpec,
    build_config,
    build_random_model,
    build_spec,
    init_random_weights_,
    make_tiny_model,
    official_token_ids,
    synthetic_prompt,
    weight_shapes,
)
from m2_tools.engines.m2_native.tiny.weights import DTYPES

__all__ = [
    "DTYPES",
    "M2_ADDED_TOKENS",
    "PRESETS",
    "QWEN_SPECIAL_TOKENS",
    "TinyModelSpec",
    "build_config",
    "build_random_model",
    "build_spec",
    "init_random_weights_",
    "make_tiny_model",
    "official_token_ids",
    "synthetic_prompt",
    "weight_shapes",
]
