"""``m2-tools serve --transport http`` as a real process: auth, rebinding, limits, health, tools."""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import jsonschema
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_server import cli
from mcp_server.http import MAX_REQUEST_BYTES
from mcp_server.server import STATUS_URI

from ._support import IMAGES, REPO, TINY_MODEL_ARGS, HttpServer, serve_command, server_env

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _post(server: HttpServer, body: Any = INITIALIZE, **headers: str) -> httpx.Response:
    return httpx.post(
        server.url,
        content=body if isinstance(body, bytes) else json.dumps(body).encode(),
        headers={**MCP_HEADERS, **headers},
        timeout=30,
    )


def _bearer(server: HttpServer) -> str:
    return f"Bearer {server.token}"


def test_healthz_answers_without_a_token(http_server: HttpServer) -> None:
    response = httpx.get(f"{http_server.base}/healthz", timeout=10)

    assert response.status_code == 200
    status = response.json()
    assert status["state"] in {"loading", "ready"}
    assert status["model"].endswith("checkpoint")


def test_mcp_endpoint_requires_the_bearer_token(http_server: HttpServer) -> None:
    response = _post(http_server)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_wrong_bearer_token_is_refused(http_server: HttpServer) -> None:
    response = _post(http_server, Authorization=f"Bearer {http_server.token}x")

    assert response.status_code == 401


def test_right_bearer_token_is_accepted(http_server: HttpServer) -> None:
    response = _post(http_server, Authorization=_bearer(http_server))

    assert response.status_code == 200


def test_foreign_host_header_is_refused(http_server: HttpServer) -> None:
    response = _post(http_server, Authorization=_bearer(http_server), Host="evil.example:80")

    assert response.status_code == 421


def test_foreign_origin_is_refused(http_server: HttpServer) -> None:
    response = _post(http_server, Authorization=_bearer(http_server), Origin="http://evil.example")

    assert response.status_code == 403


def test_localhost_forms_are_accepted(http_server: HttpServer) -> None:
    response = _post(
        http_server,
        Authorization=_bearer(http_server),
        Host=f"localhost:{http_server.port}",
        Origin=f"http://localhost:{http_server.port}",
    )

    assert response.status_code == 200


def test_oversized_body_is_refused(http_server: HttpServer) -> None:
    chunk = b" " * (1024 * 1024)

    def body() -> Iterator[bytes]:
        for _ in range(MAX_REQUEST_BYTES // len(chunk) + 1):
            yield chunk

    response = httpx.post(
        http_server.url,
        content=body(),
        headers={**MCP_HEADERS, "Authorization": _bearer(http_server)},
        timeout=60,
    )

    assert response.status_code == 413


async def test_calls_both_tools_over_http_with_the_native_engine(http_server: HttpServer) -> None:
    headers = {"Authorization": _bearer(http_server)}
    timeout = httpx2.Timeout(30, read=300)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        Client(streamable_http_client(http_server.url, http_client=http)) as client,
    ):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        math = await client.call_tool(
            "visual_math_reason",
            {"question": "What is 2 + 2?", "choices": ["3", "4"], "max_new_tokens": 16},
        )
        spatial = await client.call_tool(
            "spatial_reason",
            {
                "question": "How many chairs are there?",
                "images": [str(IMAGES / "scene.jpg")],
                "max_new_tokens": 16,
            },
        )
        status = json.loads((await client.read_resource(STATUS_URI)).contents[0].text)  # type: ignore[union-attr]

    for name, result in (("visual_math_reason", math), ("spatial_reason", spatial)):
        assert not result.is_error, result.content
        assert result.structured_content is not None
        jsonschema.validate(result.structured_content, tools[name].output_schema)
        assert result.structured_content["model"]["backend"].startswith("m2-native")
    assert status["state"] == "ready"


def test_refuses_a_non_loopback_bind_without_a_token() -> None:
    command = serve_command("--transport", "http", "--host", "0.0.0.0", *TINY_MODEL_ARGS)
    done = subprocess.run(
        command, cwd=REPO, env=server_env(), capture_output=True, timeout=60, check=False
    )

    assert done.returncode == 2
    assert b"M2_AUTH_TOKEN" in done.stderr
    assert done.stdout == b""


def _serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--transport", "http"], ()),
        (["--transport", "http", "--allow-dir", "/srv/images"], (Path("/srv/images"),)),
        (["--transport", "stdio"], None),
    ],
)
def test_local_files_are_off_over_http_unless_a_directory_is_allowed(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: tuple[Path, ...] | None
) -> None:
    monkeypatch.delenv("M2_ALLOWED_DIRS", raising=False)

    settings = cli._settings(_serve_args(*argv))

    assert settings.allowed_dirs == expected
