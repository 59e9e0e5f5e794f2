"""The public surface of ``mcp_server`` is pinned."""

from __future__ import annotations

import subprocess
import sys

import mcp_server
from mcp_server import cli, http


def test_all_is_pinned() -> None:
    assert mcp_server.__all__ == ["create_server"]
    assert callable(mcp_server.create_server)


def test_serve_module_has_the_subcommand_interface() -> None:
    assert isinstance(cli.HELP, str)
    assert callable(cli.add_arguments)
    assert callable(cli.run)


def test_http_module_exports() -> None:
    assert set(http.__all__) == {
        "MAX_REQUEST_BYTES",
        "create_http_app",
        "is_loopback",
        "rebinding_protection",
        "serve_http",
        "url_for",
    }


def test_importing_the_package_and_cli_loads_neither_the_sdk_nor_torch() -> None:
    code = (
        "import sys, mcp_server, mcp_server.cli; "
        "print(sorted(m for m in ('mcp', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "[]"


def test_python_dash_m_mcp_server_is_the_serve_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcp_server", "--help"], capture_output=True, text=True, check=True
    )

    assert "--transport" in done.stdout
    assert "--lazy-load" in done.stdout
