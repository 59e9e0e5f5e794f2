"""The MCPB bundle's entry point: ``m2-tools serve`` over stdio, in the chosen Python.

The bundle carries no dependencies (PyTorch alone is gigabytes), so the host runs this
file with the Python of an environment where m2-tools is installed; the user picks that
interpreter in the bundle's settings. The host passes the allowed folders as arguments
(one per folder, which ``--allow-dir`` cannot take in one value) and the other settings
as ``M2_*`` variables.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

__all__ = ["cleaned_environment", "main", "serve_argv"]


def _is_set(value: str) -> bool:
    # Why: the host leaves an optional setting the user never filled in as the literal
    # "${user_config.NAME}" placeholder, or as an empty string.
    return bool(value.strip()) and not value.startswith("${")


def serve_argv(folders: Sequence[str]) -> list[str]:
    """The ``m2-tools`` arguments for the allowed ``folders`` the host passed."""
    argv = ["serve"]
    for folder in folders:
        if _is_set(folder):
            argv += ["--allow-dir", folder]
    return argv


def cleaned_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the ``M2_*`` settings the user left unset, so defaults apply."""
    return {
        name: value
        for name, value in environ.items()
        if not name.startswith("M2_") or _is_set(value)
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until the host closes stdin; 1 when this Python has no m2-tools."""
    folders = sys.argv[1:] if argv is None else argv
    kept = cleaned_environment(os.environ)
    for name in [name for name in os.environ if name not in kept]:
        del os.environ[name]
    try:
        from m2_tools.cli import main as m2_tools_main
    except ImportError:
        sys.stderr.write(
            f"m2-tools bundle: m2-tools is not installed for {sys.executable}; in the "
            "bundle's settings, choose the Python of the environment where you installed "
            "m2-tools (for example .venv/bin/python in your m2-tools checkout)\n"
        )
        return 1
    return m2_tools_main(serve_argv(folders))


if __name__ == "__main__":
    sys.exit(main())
