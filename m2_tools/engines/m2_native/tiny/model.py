"""Random-weight M2 checkpoints in the official ``bailing_qwen2_5`` layout, at any size.

``m2-tools make-tiny-model DIR`` (or :func:`make_tiny_model`) writes what a model
directory on the hub holds: ``config.json`` in the official nested shape,
sharded safetensors with ``model.safetensors.index.json``, a small byte-level BPE
tokenizer with the Qwen2 pre-tokenizer split and the M2 special tokens in their
official order, and the processor files. The weights are seeded random tensors
written tensor by tensor, so even the ``7b-shapes`` preset (about 16.6 GB in
bfloat16) never needs the whole model in memory.

This module holds the directory writer; the subcommand is
:mod:`m2_tools.cli.make_tiny_model`. The sizes and ``config.json`` come from
:mod:`.spec`, the tokenizer and processor files from :mod:`.tokenizer`, the weights
from :mod:`.weights`, and in-memory models from :mod:`.random_model`; their public
names are re-exported here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from m2_tools.engines.m2_native.tiny.random_model import build_random_model, synthetic_prompt
from m2_tools.engines.m2_native.tiny.spec import (
    PRESETS,
    TinyModelSpec,
    build_config,
    build_spec,
)
from m2_tools.engines.m2_native.tiny.tokenizer import (
    M2_ADDED_TOKENS,
    QWEN_SPECIAL_TOKENS,
    build_tokenizer,
    official_token_ids,
    write_json,
    write_processor_files,
    write_tokenizer_files,
)
from m2_tools.engines.m2_native.tiny.weights import (
    DTYPES,
    init_random_weights_,
    weight_shapes,
    write_weights,
)

__all__ = [
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

logger = logging.getLogger(__name__)

_OWNED_FILES = (
    "config.json", "generation_config.json", "model.safetensors.index.json", "tokenizer.json",
    "tokenizer_config.json", "added_tokens.json", "special_tokens_map.json", "vocab.json",
    "merges.txt", "preprocessor_config.json", "processor_config.json", "chat_template.json",
)  # fmt: skip


def _prepare_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; pass overwrite=True (--overwrite)")
        # Only files a checkpoint consists of are replaced; anything else the user keeps.
        for path in [*out.glob("model-*-of-*.safetensors"), *(out / n for n in _OWNED_FILES)]:
            path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def make_tiny_model(
    out_dir: str | Path,
    *,
    preset: str = "tiny",
    dtype: str = "float32",
    seed: int = 0,
    init_std: float = 0.02,
    overwrite: bool = False,
    **overrides: Any,
) -> Path:
    """Write a random-weight M2 checkpoint in the official layout and return its directory.

    Args:
        out_dir: Target directory; created if missing, refused if not empty.
        preset: ``tiny`` (the golden fixture's sizes), ``small`` or ``7b-shapes``.
        dtype: ``float32`` or ``bfloat16`` for the stored weights.
        seed: Seed of the weights (each tensor has its own generator derived from it).
        init_std: Standard deviation of the random weights.
        overwrite: Replace the checkpoint files of a non-empty directory.
        **overrides: :class:`TinyModelSpec` fields, e.g. ``hidden_size=128`` or
            ``shard_size_mb=2``.

    Returns:
        The checkpoint directory, resolved to an absolute path.

    Raises:
        FileExistsError: ``out_dir`` is not empty and ``overwrite`` is false.
        ValueError: An unknown preset, dtype or size, or sizes the model cannot have.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    spec = build_spec(preset, **overrides)
    tokenizer = build_tokenizer(spec.bpe_vocab_size)
    n_tokens = tokenizer.get_vocab_size(with_added_tokens=True)
    vocab_size = spec.vocab_size or -(-n_tokens // 64) * 64  # padded like Qwen's 152064
    if vocab_size < n_tokens:
        raise ValueError(f"vocab_size {vocab_size} is below the tokenizer's {n_tokens} tokens")
    out = Path(out_dir).expanduser().resolve()
    _prepare_dir(out, overwrite)
    token_ids = write_tokenizer_files(out, tokenizer)
    config = build_config(spec, token_ids, vocab_size, dtype)
    write_json(out / "config.json", config, indent=2, newline=False)
    write_json(
        out / "generation_config.json",
        {"_from_model_config": True, "transformers_version": "4.49.0"},
        indent=2,
        newline=False,
    )
    write_processor_files(out, spec.max_pixels)
    total = write_weights(
        out, weight_shapes(spec, vocab_size), dtype, spec.shard_size_mb, init_std, seed
    )
    logger.info("wrote a %s checkpoint of %.1f MB to %s", preset, total / 1e6, out)
    return out
