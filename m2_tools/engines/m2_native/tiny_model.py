"""Random-weight M2 checkpoints in the official ``bailing_qwen2_5`` layout, at any size.

``m2-tools make-tiny-model DIR`` (or :func:`make_tiny_model`) writes what a model
directory on the hub holds: ``config.json`` in the official nested shape,
sharded safetensors with ``model.safetensors.index.json``, a small byte-level BPE
tokenizer with the Qwen2 pre-tokenizer split and the M2 special tokens in their
official order, and the processor files. The weights are seeded random tensors
written tensor by tensor, so even the ``7b-shapes`` preset (about 16.6 GB in
bfloat16) never needs the whole model in memory.

This module holds the directory writer and the subcommand. The sizes and
``config.json`` come from :mod:`.tiny_spec`, the tokenizer and processor files from
:mod:`.tiny_tokenizer`, the weights from :mod:`.tiny_weights`, and in-memory models
from :mod:`.tiny_random_model`; their public names are re-exported here.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from m2_tools.engines.m2_native.tiny_random_model import build_random_model, synthetic_prompt
from m2_tools.engines.m2_native.tiny_spec import (
    PRESETS,
    TinyModelSpec,
    build_config,
    build_spec,
)
from m2_tools.engines.m2_native.tiny_tokenizer import (
    M2_ADDED_TOKENS,
    QWEN_SPECIAL_TOKENS,
    build_tokenizer,
    official_token_ids,
    write_json,
    write_processor_files,
    write_tokenizer_files,
)
from m2_tools.engines.m2_native.tiny_weights import (
    DTYPES,
    init_random_weights_,
    weight_shapes,
    write_weights,
)

__all__ = [
    "HELP",
    "M2_ADDED_TOKENS",
    "PRESETS",
    "QWEN_SPECIAL_TOKENS",
    "TinyModelSpec",
    "add_arguments",
    "build_config",
    "build_random_model",
    "build_spec",
    "init_random_weights_",
    "make_tiny_model",
    "official_token_ids",
    "run",
    "synthetic_prompt",
    "weight_shapes",
]

logger = logging.getLogger(__name__)

HELP = "Write a tiny random-weight checkpoint in the official layout."

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


_SIZE_FLAGS: dict[str, str] = {
    "--hidden-size": "hidden_size",
    "--layers": "num_hidden_layers",
    "--heads": "num_attention_heads",
    "--kv-heads": "num_key_value_heads",
    "--intermediate": "intermediate_size",
    "--vocab-size": "vocab_size",
    "--vision-hidden": "vision_hidden_size",
    "--vision-depth": "vision_depth",
    "--vision-heads": "vision_num_heads",
    "--vision-intermediate": "vision_intermediate_size",
    "--out-hidden": "out_hidden_size",
    "--max-pixels": "max_pixels",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``make-tiny-model`` options to ``parser``.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument("dir", type=Path, help="Directory to write; must be empty or missing.")
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="tiny",
        help="Base sizes: tiny (the fixture's), small, 7b-shapes (the real 7B).",
    )
    sizes = parser.add_argument_group("sizes (override the preset)")
    for flag, field in _SIZE_FLAGS.items():
        sizes.add_argument(flag, dest=field, type=int, metavar="N")
    parser.add_argument("--dtype", choices=list(DTYPES), default="float32")
    parser.add_argument(
        "--shard-size-mb",
        type=float,
        metavar="MB",
        help="Largest shard in MB (10**6 bytes); default per preset.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init-std", type=float, default=0.02, help="Std of the random weights.")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace the checkpoint files of a non-empty directory.",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``make-tiny-model``; print the checkpoint directory on stdout.

    Args:
        args: The parsed options of :func:`add_arguments`.

    Returns:
        The exit status: 0, or 1 on a refused directory or impossible sizes.
    """
    from m2_tools.cli.options import configure_logging

    configure_logging(os.environ.get("M2_LOG_LEVEL", "INFO"))
    overrides = {field: getattr(args, field) for field in _SIZE_FLAGS.values()}
    try:
        out = make_tiny_model(
            args.dir,
            preset=args.preset,
            dtype=args.dtype,
            seed=args.seed,
            init_std=args.init_std,
            overwrite=args.overwrite,
            shard_size_mb=args.shard_size_mb,
            **overrides,
        )
    except (FileExistsError, ValueError) as exc:
        print(f"make-tiny-model: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0
