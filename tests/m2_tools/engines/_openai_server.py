"""A small OpenAI-compatible chat-completions server on 127.0.0.1, for the engine's tests.

It speaks the streaming protocol (server-sent ``data:`` chunks, usage in the last one), keeps
every request body, and notices when a client goes away mid-stream. What it answers is set
per test through :class:`Script`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

HOST = "127.0.0.1"


@dataclass
class Script:
    """What the server does with the next chat completions.

    Attributes:
        pieces: Text pieces streamed one chunk (one token) each.
        finish_reason: Sent with the last piece; None ends the stream without one.
        prompt_tokens: Reported in the usage chunk.
        delay_s: Pause before each piece.
        status: Answer with this HTTP status (and an OpenAI error body) instead.
        models: Served model ids.
        m2: Whether ``/tokenize`` exists and knows ``<imagePatch>`` (vLLM with m2-vllm).
        api_key: When set, requests must carry it as a bearer token.
    """

    pieces: list[str] = field(default_factory=lambda: ["<think>", "2+2", "</think>", "4"])
    finish_reason: str | None = "stop"
    prompt_tokens: int = 42
    delay_s: float = 0.0
    status: int | None = None
    models: list[str] = field(default_factory=lambda: ["m2"])
    m2: bool = True
    api_key: str | None = None


@dataclass
class FakeServer:
    """The running server: its URL, its script and what it saw."""

    url: str
    script: Script
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    streaming: threading.Event = field(default_factory=threading.Event)


def _app(state: FakeServer) -> Starlette:
    def refused(request: Request) -> Response | None:
        key = state.script.api_key
        if key and request.headers.get("authorization") != f"Bearer {key}":
            return JSONResponse({"error": {"message": "bad key", "code": 401}}, status_code=401)
        return None

    async def models(request: Request) -> Response:
        state.headers.append(dict(request.headers))
        return refused(request) or JSONResponse(
            {"object": "list", "data": [{"id": m, "object": "model"} for m in state.script.models]}
        )

    async def tokenize(request: Request) -> Response:
        if not state.script.m2:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        body = await request.json()
        return JSONResponse({"tokens": [630] if body["prompt"] == "<imagePatch>" else [1, 2]})

    async def chat(request: Request) -> Response:
        state.headers.append(dict(request.headers))
        if (answer := refused(request)) is not None:
            return answer
        body = await request.json()
        state.bodies.append(body)
        script = state.script
        if script.status is not None:
            error = {"message": f"scripted {script.status}", "code": script.status}
            return JSONResponse({"error": error}, status_code=script.status)
        return StreamingResponse(_stream(script, state), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/v1/models", models),
            Route("/tokenize", tokenize, methods=["POST"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )


async def _stream(script: Script, state: FakeServer) -> AsyncIterator[str]:
    state.streaming.set()
    try:
        for i, piece in enumerate(script.pieces):
            if script.delay_s:
                await asyncio.sleep(script.delay_s)
            last = i == len(script.pieces) - 1
            choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            if last:
                choice["finish_reason"] = script.finish_reason
            usage = {"prompt_tokens": script.prompt_tokens, "completion_tokens": i + 1}
            yield f"data: {json.dumps({'choices': [choice], 'usage': usage})}\n\n"
        usage = {"prompt_tokens": script.prompt_tokens, "completion_tokens": len(script.pieces)}
        yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"
    except asyncio.CancelledError:
        state.disconnected.set()
        raise


@contextmanager
def fake_openai_server(script: Script | None = None) -> Iterator[FakeServer]:
    """Serve :func:`_app` in a thread on a free port of 127.0.0.1 until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    state = FakeServer(url=f"http://{HOST}:{port}/v1", script=script or Script())
    config = uvicorn.Config(_app(state), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
