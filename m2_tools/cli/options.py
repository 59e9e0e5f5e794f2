"""Options shared by ``serve`` and ``ask``, and their resolution into :class:`Settings`."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from m2_tools.settings import Settings

__all__ = ["add_model_options", "configure_logging", "settings_from_args"]


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Add the contract's model and security options; defaults come from the environment."""
    group = parser.add_argument_group("model and security")
    group.add_argument("--model", help="Local checkpoint directory or hub id (env M2_MODEL).")
    group.add_argument(
        "--device", help="auto, cpu, cuda, cuda:N or mps (env M2_DEVICE; default auto)."
    )
    group.add_argument(
        "--dtype",
        choices=["auto", "bfloat16", "float16", "float32"],
        help="Weights dtype (env M2_DTYPE; default auto: bfloat16 on CUDA, float32 on CPU).",
    )
    group.add_argument(
        "--allow-dir",
        action="append",
        dest="allow_dir",
        metavar="DIR",
        help="Directory image paths may come from; repeatable (env M2_ALLOWED_DIRS).",
    )
    group.add_argument(
        "--no-urls",
        action="store_true",
        help="Refuse http(s) image references (env M2_ALLOW_URLS=false).",
    )
    group.add_argument("--log-level", help="Log level on stderr (env M2_LOG_LEVEL).")
    group.add_argument(
        "--engine",
        choices=["native", "openai"],
        help="native: the model in this process (default); openai: every row goes to an "
        "OpenAI-compatible server, e.g. m2-vllm serve (env M2_ENGINE).",
    )
    group.add_argument(
        "--engine-url", metavar="URL", help="That server's base URL, e.g. "
        "http://127.0.0.1:8000/v1 (env M2_ENGINE_URL)."
    )  # fmt: skip
    group.add_argument(
        "--engine-api-key",
        metavar="KEY",
        help="Its API key, if it needs one (env M2_ENGINE_API_KEY).",
    )


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:
    """Resolve flags over the environment over defaults. ``extra`` holds entry-point values."""
    overrides: dict[str, Any] = dict(extra)
    for field in (
        "model",
        "device",
        "dtype",
        "log_level",
        "engine",
        "engine_url",
        "engine_api_key",
    ):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    if getattr(args, "allow_dir", None):
        overrides["allowed_dirs"] = tuple(args.allow_dir)
    if getattr(args, "no_urls", False):
        overrides["allow_urls"] = False
    return Settings(**overrides)


def configure_logging(level: str) -> None:
    """Send logs to stderr at ``level``; stdout is reserved for results and the MCP wire."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
