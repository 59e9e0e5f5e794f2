"""The ``m2-tools`` console script: a dispatcher over subcommand modules.

Each subcommand lives in its own module exposing ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only
when their subcommand runs, so ``m2-tools --help`` stays fast and the core never
imports an adapter it does not need.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib import metadata

__all__ = ["SUBCOMMANDS", "build_parser", "main", "version"]

#: subcommand → (module, one-line help). Help lives here so building the parser imports nothing.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("mcp_server.cli", "Run the MCP server (stdio by default, or streamable HTTP)."),
    "ask": ("m2_tools.cli.ask", "Make one tool call and print the result JSON."),
    "make-tiny-model": (
        "m2_tools.cli.make_tiny_model",
        "Write a tiny random-weight checkpoint in the official layout.",
    ),
    "doctor": ("m2_tools.cli.doctor", "Check the environment and model files."),
    "eval": ("m2_tools.evaluation.cli", "Score the tools on benchmark-style items."),
}


_DESCRIPTION = (
    "M2-Reasoning-7B visual math and spatial reasoning as tools: an MCP server,\n"
    "one-off calls from the shell, and checks of your setup."
)
_EPILOG = """examples:
  m2-tools doctor                       is this machine ready, and are the model files whole?
  m2-tools ask --image fig.png --question "Find x." --choice 3 --choice 4
  m2-tools serve --allow-dir ~/figures  the MCP server on stdio, for Claude and other clients

Run 'm2-tools COMMAND --help' for the options of one command."""


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Build the parser, loading only the module of the subcommand named in ``argv``."""
    parser = argparse.ArgumentParser(
        prog="m2-tools",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"m2-tools {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(child)
            child.set_defaults(_run=module.run)
    return parser


def version() -> str:
    """The installed distribution's version; the package's own when run from a bare checkout."""
    try:
        return metadata.version("m2-tools")
    except metadata.PackageNotFoundError:
        from m2_tools import __version__

        return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``m2-tools`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    code: int = args._run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
