"""Shared by the serving-path benchmarks: options, the model, percentiles and the machine."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100), linearly interpolated."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def now_utc() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def machine(
    threads: int, load_before: Sequence[float], load_after: Sequence[float]
) -> dict[str, Any]:
    """What the figures were measured on, for the JSON record."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_threads": threads,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
    }


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads``: torch intra-op threads, 1 by default for steadier figures."""
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: steadier figures on a shared machine)",
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--hidden-size``, ``--intermediate-size``, ``--layers`` and ``--threads``."""
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--intermediate-size", type=int, default=1408)
    parser.add_argument("--layers", type=int, default=4)
    add_threads_option(parser)


def small_checkpoint(directory: Path, args: argparse.Namespace) -> Path:
    """A random-weight ``small``-preset checkpoint at the sizes of :func:`add_model_options`."""
    from m2_tools.engines.m2_native.tiny import make_tiny_model

    return make_tiny_model(
        directory / "model",
        preset="small",
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size,
        num_hidden_layers=args.layers,
    )
