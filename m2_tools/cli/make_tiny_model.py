"""``m2-tools make-tiny-model DIR``: write a random-weight checkpoint in the official layout."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from m2_tools.cli.options import configure_logging
from m2_tools.engines.m2_native.tiny import DTYPES, PRESETS, make_tiny_model

__all__ = ["HELP", "add_arguments", "run"]

HELP = "Write a tiny random-weight checkpoint in the official layout."

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
