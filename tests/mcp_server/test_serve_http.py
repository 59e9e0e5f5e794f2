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


def test_healthz_answers_without_a_token_with_the_state_only(http_server: HttpServer) -> None:
    response = httpx.get(f"{http_server.base}/healthz", timeout=10)

    assert response.status_code == 200
    assert set(response.json()) == {"state"}
    assert response.json()["state"] in {"loading", "ready"}


@pytest.mark.parametrize("authorization", ["Bearer wrong", "Basic czNjcmV0"])
def test_healthz_gives_details_only_for_the_right_token(
    http_server: HttpServer, authorization: str
) -> None:
    wrong = httpx.get(
        f"{http_server.base}/healthz", headers={"Authorization": authorization}, timeout=10
    )
    right = httpx.get(
        f"{http_server.base}/healthz", headers={"Authorization": _bearer(http_server)}, timeout=10
    )

    assert set(wrong.json()) == {"state"}
    assert right.status_code == 200
    status = right.json()
    assert status["state"] in {"idle", "loading", "ready"}  # the load may not have begun yet
    assert status["model"] == "checkpoint"  # the directory's name, never its path
    assert str(REPO) not in right.text


@pytest.mark.parametrize(
    "headers", [{"Host": "evil.example:80"}, {"Origin": "http://evil.example"}], ids=str
)
def test_healthz_refuses_a_foreign_host_or_origin(
    http_server: HttpServer, headers: dict[str, str]
) -> None:
    response = httpx.get(
        f"{http_server.base}/healthz",
        headers={**headers, "Authorization": _bearer(http_server)},
        timeout=10,
    )

    assert response.status_code in {421, 403}
    assert "checkpoint" not in response.text


def test_results_name_the_local_model_by_its_directory_name(http_server: HttpServer) -> None:
    arguments = {"question": "What is 2 + 2?", "max_new_tokens": 16}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
    call["params"] = {"name": "visual_math_reason", "arguments": arguments}
    with httpx.Client(
        headers={**MCP_HEADERS, "Authorization": _bearer(http_server)}, timeout=300
    ) as http:
        opened = http.post(http_server.url, json=INITIALIZE)
        session = {"mcp-session-id": opened.headers["mcp-session-id"]}
        version = {"mcp-protocol-version": "2025-06-18"}
        http.post(
            http_server.url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers={**session, **version},
        )
        answered = http.post(http_server.url, json=call, headers={**session, **version})

    reply = _sse_reply(answered.text, 2)
    result = reply["result"]["structuredContent"]
    assert result["model"]["id"] == "checkpoint"
    assert str(REPO) not in answered.text


def _sse_reply(stream: str, request_id: int) -> dict[str, Any]:
    """The JSON-RPC reply to ``request_id`` in an SSE response body."""
    for line in stream.splitlines():
        if line.startswith("data:") and line[5:].strip():
            message: dict[str, Any] = json.loads(line[5:])
            if message.get("id") == request_id:
                return message
    raise AssertionError(f"no reply to request {request_id} in the stream")


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


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
@pytest.mark.parametrize("token", ["", "   ", "\t\n"], ids=["empty", "spaces", "tab-newline"])
def test_refuses_a_blank_bearer_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], host: str, token: str
) -> None:
    monkeypatch.setenv("M2_AUTH_TOKEN", token)

    code = cli.run(_serve_args("--transport", "http", "--host", host, *TINY_MODEL_ARGS))

    assert code == 2
    assert "M2_AUTH_TOKEN" in capsys.readouterr().err


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
