"""Every contract error reaches the client as an error result carrying the contract JSON."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from m2_tools.errors import ImageNotFound, ModelUnavailable
from m2_tools.testing import ScriptedEngine, ScriptedReply

from ._support import ReasonerFactory, connect, error_of, eventually, png_data_uri

RETRYABLE = {"model_loading", "busy", "timeout", "url_fetch_failed"}


def _check(error: dict[str, Any], code: str) -> None:
    assert error["code"] == code
    assert error["retryable"] is (code in RETRYABLE)
    assert error["message"]
    assert "Traceback" not in error["message"]


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("visual_math_reason", {}),
        ("visual_math_reason", {"question": ""}),
        ("visual_math_reason", {"question": "q", "samples": 0}),
        ("visual_math_reason", {"question": "q", "max_new_tokens": "many"}),
        ("visual_math_reason", {"question": "q", "choices": ["only one"]}),
        ("visual_math_reason", {"question": "q", "unknown_field": 1}),
        ("visual_math_reason", {"question": "q", "images": ["x"] * 9}),
        ("spatial_reason", {"question": "q"}),
        ("spatial_reason", {"question": "q", "images": []}),
    ],
)
async def test_schema_invalid_arguments_are_invalid_argument(
    make_reasoner: ReasonerFactory, tool: str, arguments: dict[str, Any]
) -> None:
    async with connect(make_reasoner()) as client:
        result = await client.call_tool(tool, arguments)

    _check(error_of(result), "invalid_argument")


async def test_refuses_path_outside_allowed_dirs(
    make_reasoner: ReasonerFactory, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not even an image")
    async with connect(make_reasoner()) as client:
        result = await client.call_tool(
            "visual_math_reason", {"question": "q", "images": [str(outside)]}
        )

    error = error_of(result)
    _check(error, "image_not_allowed")
    assert "not even an image" not in error["message"]


async def test_refuses_local_files_when_none_are_allowed(
    make_reasoner: ReasonerFactory, tmp_path: Path
) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG")
    async with connect(make_reasoner(allowed_dirs=())) as client:
        result = await client.call_tool("spatial_reason", {"question": "q", "images": [str(image)]})

    _check(error_of(result), "image_not_allowed")


@pytest.mark.parametrize(
    ("reference", "code"),
    [
        ("data:image/png;base64,aGVsbG8gd29ybGQ=", "image_unsupported"),
        ("ftp://example.com/a.png", "url_not_allowed"),
        ("{allowed}/missing.png", "image_not_found"),
    ],
)
async def test_image_errors_keep_their_codes(
    make_reasoner: ReasonerFactory, tmp_path: Path, reference: str, code: str
) -> None:
    image = reference.format(allowed=tmp_path)
    async with connect(make_reasoner(allowed_dirs=(tmp_path,))) as client:
        result = await client.call_tool("visual_math_reason", {"question": "q", "images": [image]})

    _check(error_of(result), code)


async def test_urls_are_refused_when_url_fetching_is_off(make_reasoner: ReasonerFactory) -> None:
    async with connect(make_reasoner(allow_urls=False)) as client:
        result = await client.call_tool(
            "visual_math_reason", {"question": "q", "images": ["https://example.com/a.png"]}
        )

    _check(error_of(result), "url_not_allowed")


async def test_full_queue_is_busy(make_reasoner: ReasonerFactory) -> None:
    gate = threading.Event()
    reasoner = make_reasoner(engine=ScriptedEngine(generate_gate=gate), queue_size=1)
    results: list[Any] = []
    async with connect(reasoner) as client:

        async def first() -> None:
            results.append(await client.call_tool("visual_math_reason", {"question": "first"}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await eventually(lambda: reasoner.status().queue_depth == 1)
            second = await client.call_tool("visual_math_reason", {"question": "second"})
            gate.set()

    _check(error_of(second), "busy")
    assert not results[0].is_error


async def test_call_past_its_time_limit_is_timeout(make_reasoner: ReasonerFactory) -> None:
    gate = threading.Event()
    reasoner = make_reasoner(engine=ScriptedEngine(generate_gate=gate), request_timeout_s=0.2)
    try:
        async with connect(reasoner) as client:
            result = await client.call_tool("visual_math_reason", {"question": "slow"})
    finally:
        gate.set()

    _check(error_of(result), "timeout")
    await eventually(lambda: reasoner.status().queue_depth == 0)


async def test_model_that_cannot_load_is_model_unavailable_with_the_reason(
    make_reasoner: ReasonerFactory,
) -> None:
    engine = ScriptedEngine(load_error=ImageNotFound("weights missing from /models/m2"))
    async with connect(make_reasoner(engine=engine)) as client:
        result = await client.call_tool("visual_math_reason", {"question": "q"})
        again = await client.call_tool(
            "spatial_reason", {"question": "q", "images": [png_data_uri()]}
        )

    error = error_of(result)
    _check(error, "model_unavailable")
    assert "weights missing from" in error["message"]  # the reason, without its server path
    assert "/models/m2" not in error["message"]
    _check(error_of(again), "model_unavailable")


async def test_call_while_loading_past_the_wait_bound_is_model_loading(
    make_reasoner: ReasonerFactory,
) -> None:
    gate = threading.Event()
    reasoner = make_reasoner(engine=ScriptedEngine(load_gate=gate), load_wait_s=0.1)
    try:
        async with connect(reasoner) as client:
            result = await client.call_tool("visual_math_reason", {"question": "q"})
    finally:
        gate.set()

    _check(error_of(result), "model_loading")


async def test_engine_failure_is_internal_and_the_server_keeps_answering(
    make_reasoner: ReasonerFactory,
) -> None:
    engine = ScriptedEngine(
        by_question={"explode": ScriptedReply(raise_in_batch=RuntimeError("secret detail"))}
    )
    async with connect(make_reasoner(engine=engine)) as client:
        failed = await client.call_tool("visual_math_reason", {"question": "explode"})
        fine = await client.call_tool("visual_math_reason", {"question": "calm"})

    error = error_of(failed)
    _check(error, "internal")
    assert "secret detail" not in error["message"]
    assert not fine.is_error


async def test_unexpected_exception_is_internal_without_details(
    make_reasoner: ReasonerFactory,
) -> None:
    # Why: a non-contract exception escaping the core (here the scripted row's error is a
    # plain RuntimeError) must be masked by the adapter, not echoed to the caller.
    engine = ScriptedEngine(
        by_question={"odd": ScriptedReply(error=RuntimeError("secret detail"))}  # type: ignore[arg-type]
    )
    async with connect(make_reasoner(engine=engine)) as client:
        failed = await client.call_tool("visual_math_reason", {"question": "odd"})
        fine = await client.call_tool("visual_math_reason", {"question": "calm"})

    error = error_of(failed)
    _check(error, "internal")
    assert "secret detail" not in error["message"]
    assert not fine.is_error


async def test_queued_call_ended_by_shutdown_is_cancelled(make_reasoner: ReasonerFactory) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate)
    reasoner = make_reasoner(engine=engine, max_batch_size=1)
    results: dict[str, Any] = {}
    async with connect(reasoner) as client:

        async def call(question: str) -> None:
            results[question] = await client.call_tool("visual_math_reason", {"question": question})

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "running")
            await eventually(engine.generate_started.is_set)
            tg.start_soon(call, "queued")
            await eventually(lambda: reasoner.status().queue_depth == 2)
            closing = threading.Thread(target=reasoner.close)
            closing.start()
            await eventually(lambda: "queued" in results)
            gate.set()
    closing.join(timeout=10)

    _check(error_of(results["queued"]), "cancelled")
    assert not results["running"].is_error


@pytest.mark.parametrize("name", ["rm_rf", "visual_math", "Spatial_Reason", "x" * 5000])
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_unknown_tool_name_is_invalid_argument(
    make_reasoner: ReasonerFactory, name: str, mode: str
) -> None:
    engine = ScriptedEngine()
    async with connect(make_reasoner(engine=engine), mode=mode) as client:
        result = await client.call_tool(name, {"question": "q"})

    error = error_of(result)
    _check(error, "invalid_argument")
    assert len(error["message"]) < 300
    assert engine.requests == []


async def test_model_unavailable_messages_carry_no_server_path(
    make_reasoner: ReasonerFactory, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "srv" / "models" / "M2"
    failure = ModelUnavailable(f"{checkpoint}/config.json is missing: not a model directory")
    reasoner = make_reasoner(engine=ScriptedEngine(load_error=failure), model=str(checkpoint))
    async with connect(reasoner) as client:
        result = await client.call_tool("visual_math_reason", {"question": "q"})

    error = error_of(result)
    _check(error, "model_unavailable")
    assert str(tmp_path) not in error["message"]
    assert "config.json" in error["message"]  # what is missing still shows
    assert str(tmp_path) not in reasoner.status().model_dump_json()
