"""Hostile tool arguments: refused as ``invalid_argument``, never ``internal``, never a crash.

Three doors are tried: ``M2Reasoner.run_tool``, the in-memory MCP client, and raw
bytes posted to the streamable HTTP endpoint. Image bytes themselves are fuzzed by
``tests/m2_tools/test_image_intake_hostile.py``; here images arrive through the tools.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from PIL import Image

from m2_tools import M2Reasoner, Settings
from m2_tools.catalog import TOOLS
from m2_tools.errors import M2Error
from m2_tools.testing import ScriptedEngine
from mcp_server import create_server

from ._http_server import serve_in_thread
from ._support import WAIT_S, ReasonerFactory, error_code, png_data_uri

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FUZZ_MCP = settings(FUZZ, max_examples=40)
FUZZ_HTTP = settings(FUZZ, max_examples=80)

TOOL_NAMES = sorted(TOOLS)
IMAGE = png_data_uri(8, 8)
MAX_IMAGES = {"visual_math_reason": 8, "spatial_reason": 32}
IMAGE_CODES = {
    "image_not_found",
    "image_not_allowed",
    "image_unsupported",
    "image_too_large",
    "url_not_allowed",
}
# Strings lax validation reads as booleans; no other string is one.
BOOL_WORDS = {"0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes"}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
containers = st.lists(json_scalars, max_size=2) | st.dictionaries(
    st.text(max_size=4), json_scalars, max_size=2
)
not_a_string = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | containers
)
# Lax validation reads true/false, "64" and 64.0 as integers; none of those are drawn here.
not_an_integer = (
    st.none()
    | containers
    | st.text(max_size=10).filter(lambda s: not any(c.isdigit() for c in s))
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x))
)
not_a_boolean = (
    st.none()
    | containers
    | st.integers().filter(lambda n: n not in (0, 1))
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x not in (0.0, 1.0))
    | st.text(max_size=8).filter(lambda s: s.strip().lower() not in BOOL_WORDS)
)
not_a_list = (
    st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.dictionaries(st.text(max_size=4), json_scalars, max_size=2)
)


@st.composite
def valid_arguments(draw: st.DrawFn, tool: str) -> dict[str, Any]:
    """Arguments the published schema allows (a few small real images)."""
    least = 1 if tool == "spatial_reason" else 0
    arguments: dict[str, Any] = {"question": draw(st.text(min_size=1, max_size=40))}
    images = draw(st.lists(st.just(IMAGE), min_size=least, max_size=3))
    if images or tool == "spatial_reason" or draw(st.booleans()):
        arguments["images"] = images
    if draw(st.booleans()):
        arguments["choices"] = draw(
            st.lists(st.text(min_size=1, max_size=8), min_size=2, max_size=5)
        )
    if draw(st.booleans()):
        arguments["max_new_tokens"] = draw(st.integers(16, 16384))
    if draw(st.booleans()):
        arguments["samples"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        arguments["include_raw"] = draw(st.booleans())
    return arguments


def invalid_values(tool: str) -> dict[str, st.SearchStrategy[Any]]:
    """Per field, values no reading of the schema accepts (``...`` removes the field)."""
    most = MAX_IMAGES[tool]
    return {
        "question": not_a_string
        | st.just("")
        | st.just(...)
        | st.integers(20001, 30000).map(lambda n: "q" * n),
        "images": st.none()
        | not_a_list
        | st.lists(not_a_string, min_size=1, max_size=3)
        | st.lists(st.just(IMAGE), min_size=most + 1, max_size=most + 3)
        | (st.just([]) | st.just(...) if tool == "spatial_reason" else st.nothing()),
        "choices": not_a_list
        | st.lists(st.text(max_size=4), max_size=1)
        | st.lists(st.text(max_size=2), min_size=27, max_size=30)
        | st.lists(not_a_string, min_size=2, max_size=4)
        | st.lists(st.just(""), min_size=2, max_size=4)
        | st.lists(st.integers(1001, 3000).map(lambda n: "c" * n), min_size=2, max_size=4),
        "max_new_tokens": not_an_integer | st.integers(max_value=15) | st.integers(min_value=16385),
        "samples": not_an_integer | st.integers(max_value=0) | st.integers(min_value=9),
        "include_raw": not_a_boolean,
    }


@st.composite
def invalid_arguments(draw: st.DrawFn, tool: str) -> dict[str, Any]:
    """Valid arguments with one field made invalid, or an unknown field added."""
    arguments = draw(valid_arguments(tool))
    fields = invalid_values(tool)
    name = draw(st.sampled_from([*fields, "unknown"]))
    if name == "unknown":
        key = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in fields))
        arguments[key] = draw(json_values)
        return arguments
    value = draw(fields[name])
    if value is ...:
        arguments.pop(name, None)
    else:
        arguments[name] = value
    return arguments


@pytest.fixture(scope="module")
def reasoner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[M2Reasoner]:
    settings = Settings(
        model="scripted",
        allowed_dirs=(tmp_path_factory.mktemp("empty"),),
        allow_urls=False,
        cache_size=0,
        queue_size=64,
    )
    service = M2Reasoner(settings, engine=ScriptedEngine())
    yield service
    service.close()


def code_of_run(reasoner: M2Reasoner, tool: str, arguments: Any) -> str | None:
    """Run a call; return its error code, or None when it succeeded."""
    try:
        reasoner.run_tool(tool, arguments)
    except M2Error as exc:
        return exc.code
    return None


@FUZZ
@given(data=st.data(), tool=st.sampled_from(TOOL_NAMES))
def test_schema_invalid_arguments_are_invalid_argument(
    reasoner: M2Reasoner, data: st.DataObject, tool: str
) -> None:
    arguments = data.draw(invalid_arguments(tool))
    assert code_of_run(reasoner, tool, arguments) == "invalid_argument"


@FUZZ
@given(data=st.data(), tool=st.sampled_from(TOOL_NAMES))
def test_arguments_the_published_schema_allows_are_accepted(
    reasoner: M2Reasoner, data: st.DataObject, tool: str
) -> None:
    arguments = data.draw(valid_arguments(tool))
    jsonschema.validate(arguments, TOOLS[tool].input_model.model_json_schema())  # type: ignore[attr-defined]
    assert code_of_run(reasoner, tool, arguments) is None


@FUZZ
@given(
    tool=st.sampled_from(TOOL_NAMES),
    arguments=st.dictionaries(
        st.sampled_from(["question", "images", "choices", "max_new_tokens", "samples"])
        | st.text(max_size=8),
        json_values | st.lists(st.text(max_size=40), max_size=3),
        max_size=6,
    ),
)
def test_any_json_arguments_end_in_a_result_or_a_caller_error(
    reasoner: M2Reasoner, tool: str, arguments: dict[str, Any]
) -> None:
    code = code_of_run(reasoner, tool, arguments)
    assert code is None or code in {"invalid_argument"} | IMAGE_CODES


@FUZZ
@given(
    name=(json_values | st.text(min_size=100, max_size=5000)).filter(
        lambda n: not isinstance(n, str) or n not in TOOLS
    )
)
def test_unknown_tool_names_are_invalid_argument(reasoner: M2Reasoner, name: Any) -> None:
    with pytest.raises(M2Error) as refused:
        reasoner.run_tool(name, {"question": "q"})
    assert refused.value.code == "invalid_argument" and len(refused.value.message) < 1000


@FUZZ
@given(
    tool=st.sampled_from(TOOL_NAMES),
    arguments=json_values.filter(lambda v: not isinstance(v, dict)),
)
def test_arguments_that_are_not_an_object_are_invalid_argument(
    reasoner: M2Reasoner, tool: str, arguments: Any
) -> None:
    assert code_of_run(reasoner, tool, arguments) == "invalid_argument"


def test_a_huge_question_is_refused_without_being_echoed(reasoner: M2Reasoner) -> None:
    secret = "SECRET-" * 1_000_000  # 7 MB
    with pytest.raises(M2Error) as refused:
        reasoner.run_tool("visual_math_reason", {"question": secret})

    assert refused.value.code == "invalid_argument"
    assert "SECRET" not in refused.value.message and len(refused.value.message) < 500


def test_huge_choices_are_refused_before_the_model_worker_sees_them(
    make_reasoner: ReasonerFactory,
) -> None:
    # The audit's 5 MB call: 26 options of 200 000 characters each.
    engine = ScriptedEngine()
    service = make_reasoner(engine=engine)
    secret = "SECRET-" * 28_572
    with pytest.raises(M2Error) as refused:
        service.run_tool("visual_math_reason", {"question": "q", "choices": [secret] * 26})

    assert refused.value.code == "invalid_argument"
    assert "SECRET" not in refused.value.message and len(refused.value.message) < 1000
    assert engine.requests == []


# ---- through the MCP adapter ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mcp_call(reasoner: M2Reasoner) -> Iterator[Any]:
    """Call a tool through an in-memory MCP client; the server is built once."""
    server = create_server(reasoner)

    def call(tool: str, arguments: dict[str, Any]) -> Any:
        async def go() -> Any:
            async with Client(server) as client:
                with anyio.fail_after(WAIT_S):
                    return await client.call_tool(tool, arguments)

        return anyio.run(go)

    yield call


@FUZZ_MCP
@given(data=st.data(), tool=st.sampled_from(TOOL_NAMES))
def test_mcp_schema_invalid_arguments_are_invalid_argument_results(
    mcp_call: Any, data: st.DataObject, tool: str
) -> None:
    arguments = data.draw(invalid_arguments(tool))
    assert error_code(mcp_call(tool, arguments)) == "invalid_argument"


@FUZZ_MCP
@given(
    tool=st.sampled_from(TOOL_NAMES),
    arguments=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
)
def test_mcp_any_json_arguments_end_in_a_result_or_a_caller_error(
    mcp_call: Any, tool: str, arguments: dict[str, Any]
) -> None:
    result = mcp_call(tool, arguments)
    assert not result.is_error or error_code(result) in {"invalid_argument"} | IMAGE_CODES


def test_mcp_huge_base64_image_is_refused_as_too_large(mcp_call: Any) -> None:
    # 30 MB of base64 behind a PNG signature: refused by its length, before decoding.
    huge = "data:image/png;base64,iVBORw0KGgo" + "A" * (30 * 2**20)
    result = mcp_call("visual_math_reason", {"question": "q", "images": [huge]})
    assert error_code(result) == "image_too_large"


def _png_of_zeros(width: int, height: int) -> bytes:
    """A real, complete PNG that is tiny compressed and huge decoded (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("size", "code"),
    [((8000, 8000), "image_too_large"), ((4000, 1), "image_unsupported"), ((1, 1), None)],
    ids=["bomb-64mp", "aspect-4000x1", "one-pixel"],
)
def test_mcp_crafted_images_through_the_tool(
    mcp_call: Any, size: tuple[int, int], code: str | None
) -> None:
    if size == (1, 1):
        buffer = io.BytesIO()
        Image.new("RGB", size).save(buffer, format="PNG")
        data = buffer.getvalue()
    else:
        data = _png_of_zeros(*size)
    uri = "data:image/png;base64," + base64.b64encode(data).decode()

    result = mcp_call("spatial_reason", {"question": "q", "images": [uri]})

    if code is None:
        assert not result.is_error
        assert result.structured_content["images"][0]["width"] == 1
    else:
        assert error_code(result) == code


# ---- raw bytes on the HTTP endpoint ---------------------------------------------------------


MODERN = "2026-07-28"
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": MODERN,
    "mcp-method": "tools/call",
    "mcp-name": "visual_math_reason",
}


@pytest.fixture(scope="module")
def http_url(reasoner: M2Reasoner) -> Iterator[str]:
    with serve_in_thread(reasoner) as url:
        yield url


def tool_call_body(params: Any) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}
    ).encode()


hostile_bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda value: json.dumps(value).encode())
    | json_values.map(tool_call_body)
    | json_values.map(
        lambda arguments: tool_call_body(
            {"name": "visual_math_reason", "arguments": arguments, "_meta": MODERN_META}
        )
    )
)


@FUZZ_HTTP
@given(body=hostile_bodies)
def test_http_endpoint_answers_any_body_without_a_server_error(http_url: str, body: bytes) -> None:
    response = httpx.post(http_url, content=body, headers=HEADERS, timeout=WAIT_S)
    assert response.status_code < 500, response.text[:300]
    if response.status_code == 200:
        result = response.json()["result"]
        assert result["isError"] is True or "structuredContent" in result
        if result["isError"]:
            error = json.loads(result["content"][0]["text"])["error"]
            assert error["code"] in {"invalid_argument"} | IMAGE_CODES


def test_http_huge_choices_are_refused_without_stalling_the_server(
    http_url: str, reasoner: M2Reasoner
) -> None:
    arguments = {"question": "q", "choices": ["c" * 200_000] * 26}
    body = tool_call_body(
        {"name": "visual_math_reason", "arguments": arguments, "_meta": MODERN_META}
    )

    response = httpx.post(http_url, content=body, headers=HEADERS, timeout=WAIT_S)

    assert response.status_code == 200
    error = json.loads(response.json()["result"]["content"][0]["text"])["error"]
    assert error["code"] == "invalid_argument"
    assert reasoner.status().queue_depth == 0
    health = httpx.get(http_url.removesuffix("/mcp") + "/healthz", timeout=WAIT_S)
    assert health.status_code == 200


def test_http_server_still_answers_after_the_fuzzing(http_url: str, reasoner: M2Reasoner) -> None:
    body = tool_call_body(
        {"name": "visual_math_reason", "arguments": {"question": "ok?"}, "_meta": MODERN_META}
    )
    response = httpx.post(http_url, content=body, headers=HEADERS, timeout=WAIT_S)
    assert response.status_code == 200
    assert response.json()["result"]["structuredContent"]["status"] == "ok"
    assert reasoner.status().queue_depth == 0
