"""The MCP adapter of m2-tools: ``visual_math_reason`` and ``spatial_reason`` as MCP tools.

A thin layer over :class:`m2_tools.M2Reasoner` built on the official MCP SDK
(``MCPServer``)::

    from m2_tools import M2Reasoner, Settings
    from mcp_server import create_server

    server = create_server(M2Reasoner(Settings()))
    server.run()  # stdio; `m2-tools serve --transport http` for streamable HTTP

Importing this package is cheap: the SDK loads with the first use of ``create_server``,
so ``m2-tools serve`` can guard stdout before any heavy import runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_server.server import create_server

__all__ = ["create_server"]


def __getattr__(name: str) -> Any:
    if name == "create_server":
        from mcp_server.server import create_server

        return create_server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
