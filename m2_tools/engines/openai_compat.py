"""``OpenAICompatibleEngine``: each row to an OpenAI-compatible chat-completions server.

Made for vLLM with the ``m2-vllm`` plugin (``m2-vllm serve``), which batches rows itself, so
this is a self-batching per-row engine (``row_mode == "self"``): a row is streamed to the
server the moment it is submitted. Each row sends the official system prompt, the images as
PNG data URLs with their placeholders written into the text in place, stops at
``<|im_end|>``/``<|endoftext|>``, temperature/top_p/seed and the pixel budget. Token progress
comes from the stream; :meth:`RowHandle.cancel` closes the stream, and vLLM aborts the row.

Images are prepared here as the native engine prepares them (RGB, smart-resize, then the
per-image pixel cap), so the server sees them at model resolution, and ``image_sizes`` and
``image_tokens`` are known without asking it. The server's own limit is read from the
checkpoint's ``preprocessor_config.json`` when ``--model`` is a local directory.

Servers other than m2-vllm (found out at load: their tokenizer does not know ``<imagePatch>``)
get a plain request: no placeholders, no vLLM-only fields. They work, but prompt parity with
the native engine is not promised.

Errors: unreachable server, refused key, unknown model → ``model_unavailable``; 429/503 →
``busy``; 408/504 or no answer in time → ``timeout``; 400/413/422 → ``invalid_argument``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx

from m2_tools.engines._openai_wire import (
    IMAGE_PLACEHOLDER,
    STOP_STRINGS,
    chat_payload,
    image_url,
    pixel_limits,
    status_error,
)
from m2_tools.engines.base import (
    EngineInfo,
    GenerationRequest,
    GenerationResult,
    LoadProgress,
    RowHandle,
    RowMode,
    run_rows,
)
from m2_tools.engines.m2_native.resize import RESIZE_FACTOR
from m2_tools.errors import (
    InternalError,
    InvalidArgument,
    M2Error,
    ModelUnavailable,
    RequestTimeout,
)

if TYPE_CHECKING:
    from m2_tools.settings import Settings

__all__ = ["IMAGE_PLACEHOLDER", "STOP_STRINGS", "OpenAICompatibleEngine"]

logger = logging.getLogger(__name__)

_TOKEN_SIDE = RESIZE_FACTOR  # patch 14 × merge 2: one image token per 28×28 pixels
_CANCEL_POLL_S = 0.02

PromptMode = Literal["m2", "plain"]


@dataclass
class _Row:
    payload: dict[str, Any]
    image_sizes: tuple[tuple[int, int], ...] = ()
    image_tokens: int = 0
    preprocess_ms: float = 0.0
    tokens: int = 0
    text: list[str] = field(default_factory=list)


class OpenAICompatibleEngine:
    """Rows to an OpenAI-compatible server at ``settings.engine_url`` (for example ``/v1``).

    Args:
        settings: ``engine_url``, ``engine_api_key``, ``model`` (the served model, or the
            checkpoint directory it was served from), pixel budgets and timeouts.
        transport: An httpx transport to use instead of the network (tests).
    """

    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if not settings.engine_url:
            raise ModelUnavailable("--engine openai needs --engine-url (env M2_ENGINE_URL)")
        self._settings = settings
        self._base = settings.engine_url.rstrip("/")
        self._transport = transport
        self._headers = (
            {"Authorization": f"Bearer {settings.engine_api_key}"}
            if settings.engine_api_key
            else {}
        )
        self._info = EngineInfo(id=settings.model, backend="openai", device="remote")
        self._served = settings.model
        self.prompt_mode: PromptMode = "m2"
        self._send_mm_kwargs = True
        self._min_pixels, self._max_pixels = pixel_limits(settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def info(self) -> EngineInfo:
        """The model's identity; ``backend`` names the server's model once loaded."""
        return self._info

    @property
    def max_batch_size(self) -> int:
        """Rows per ``generate`` call; the server batches on its own."""
        return self._settings.max_batch_size

    @property
    def served_model(self) -> str:
        """The model name the server serves (known after :meth:`load`)."""
        return self._served

    @property
    def row_mode(self) -> RowMode:
        """``self``: the server runs each row as soon as it is submitted."""
        return "self"

    def load(self, progress: LoadProgress | None = None) -> None:
        """Start the client, find the served model and whether it is M2 on m2-vllm.

        Raises:
            ModelUnavailable: The server cannot be reached, refuses the key, or does not
                serve the model.
        """
        if progress is not None:
            progress(0, 0, f"connecting to {self._base}")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="m2-openai", daemon=True
        )
        self._thread.start()
        self._client = self._call(self._open_client()).result()
        try:
            self._served, self.prompt_mode = self._call(self._probe()).result()
        except BaseException:
            self.close()
            raise
        self._info = EngineInfo(
            id=self._settings.model, backend=f"openai/{self.prompt_mode}", device="remote"
        )
        logger.info("serving %s through %s (%s prompts)", self._served, self._base,
                    self.prompt_mode)  # fmt: skip

    def submit(self, requests: Sequence[GenerationRequest]) -> list[RowHandle]:
        """Prepare each row here (images to data URLs), then stream it at once."""
        handles = []
        for request in requests:
            handle = RowHandle(request)
            handles.append(handle)
            started = time.perf_counter()
            try:
                row = self._prepare(request)
            except M2Error as exc:
                handle.finish(GenerationResult(error=exc))
                continue
            except Exception:
                logger.exception("preparing a row failed")
                handle.finish(GenerationResult(error=InternalError("preparing the row failed")))
                continue
            row.preprocess_ms = (time.perf_counter() - started) * 1000
            if self._loop is None:
                handle.finish(GenerationResult(error=ModelUnavailable("the engine is not loaded")))
                continue
            self._call(self._run(handle, row))
        return handles

    def step(self) -> bool:
        """Nothing to step: the server moves rows on by itself."""
        return False

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Submit every row and wait for all of them."""
        return run_rows(self, requests)

    def close(self) -> None:
        """Close the connections and stop the client's event loop."""
        loop, client, thread = self._loop, self._client, self._thread
        self._loop = self._client = self._thread = None
        if loop is None or thread is None:
            return
        if client is not None:
            asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()

    # ---- preparation (caller's thread) -------------------------------------------------

    def _prepare(self, request: GenerationRequest) -> _Row:
        if request.max_new_tokens < 1:
            raise InvalidArgument("max_new_tokens must be at least 1")
        if request.do_sample and request.temperature <= 0:
            raise InvalidArgument("temperature must be positive when sampling")
        cap = self._image_cap(len(request.images), request.max_pixels)
        urls, sizes = [], []
        for image in request.images:
            url, size = image_url(image, self._min_pixels, cap)
            urls.append(url)
            sizes.append(size)
        m2 = self.prompt_mode == "m2"
        payload = chat_payload(request, self._served, urls, m2=m2)
        if m2 and urls and self._send_mm_kwargs:
            payload["mm_processor_kwargs"] = {"min_pixels": self._min_pixels, "max_pixels": cap}
        tokens = sum((w // _TOKEN_SIDE) * (h // _TOKEN_SIDE) for w, h in sizes) if m2 else 0
        return _Row(payload, tuple(sizes), tokens)

    def _image_cap(self, n_images: int, request_max: int | None) -> int:
        cap = min(self._max_pixels, self._settings.max_total_pixels // max(n_images, 1))
        if request_max is not None:
            cap = min(cap, request_max)
        return max(cap, self._min_pixels)

    # ---- the event loop's side ---------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Future[Any]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _open_client(self) -> httpx.AsyncClient:
        s = self._settings
        timeout = httpx.Timeout(s.request_timeout_s, connect=10.0)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=s.queue_size)
        return httpx.AsyncClient(
            headers=self._headers, timeout=timeout, limits=limits, transport=self._transport
        )

    async def _probe(self) -> tuple[str, PromptMode]:
        assert self._client is not None
        response = await self._request("GET", f"{self._base}/models")
        served = [m.get("id") for m in response.json().get("data", []) if isinstance(m, dict)]
        wanted = self._settings.model
        if wanted in served:
            name = wanted
        elif len(served) == 1:
            name = str(served[0])
        else:
            listed = ", ".join(map(str, served)) or "none"
            raise ModelUnavailable(f"the server does not serve {wanted!r} (it serves: {listed})")
        root = self._base.removesuffix("/v1")
        try:
            found = await self._client.post(
                f"{root}/tokenize",
                json={"model": name, "prompt": "<imagePatch>", "add_special_tokens": False},
            )
            m2 = found.status_code == 200 and len(found.json().get("tokens", ())) == 1
        except (httpx.HTTPError, ValueError):
            m2 = False
        return name, "m2" if m2 else "plain"

    async def _request(self, method: str, url: str) -> httpx.Response:
        assert self._client is not None
        try:
            response = await self._client.request(method, url)
        except httpx.TimeoutException:
            raise RequestTimeout(f"the server at {self._base} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"cannot reach the server at {self._base}: {exc}") from None
        if response.status_code >= 400:
            raise status_error(response.status_code, response.text)
        return response

    async def _run(self, handle: RowHandle, row: _Row) -> None:
        if not handle.claim():
            return
        started = time.perf_counter()
        task = asyncio.ensure_future(self._stream(handle, row))
        while not task.done():
            await asyncio.wait({task}, timeout=_CANCEL_POLL_S)
            if handle.cancel_requested and not task.done():
                # Closing the stream is what makes vLLM abort the row.
                task.cancel()
        result = _result_of(task, row)
        result.generate_ms = (time.perf_counter() - started) * 1000
        handle.finish(result)

    async def _stream(self, handle: RowHandle, row: _Row) -> GenerationResult:
        try:
            return await self._stream_once(handle, row)
        except InvalidArgument as exc:
            # A vLLM server started without --trust-request-mm-kwargs refuses the budget;
            # the images already have their budgeted size, so the row goes again without it.
            if "mm_processor_kwargs" not in exc.message or "mm_processor_kwargs" not in row.payload:
                raise
            logger.warning("the server refuses per-request pixel budgets; sending none")
            self._send_mm_kwargs = False
            row.payload.pop("mm_processor_kwargs")
            return await self._stream_once(handle, row)

    async def _stream_once(self, handle: RowHandle, row: _Row) -> GenerationResult:
        assert self._client is not None
        url = f"{self._base}/chat/completions"
        finish: str | None = None
        usage: dict[str, Any] = {}
        try:
            async with self._client.stream("POST", url, json=row.payload) as response:
                if response.status_code >= 400:
                    body = (await response.aread()).decode("utf-8", "replace")
                    raise status_error(response.status_code, body)
                async for line in response.aiter_lines():
                    if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                        continue
                    chunk = json.loads(line[5:])
                    if "error" in chunk:
                        code = str((chunk["error"] or {}).get("code") or "")
                        raise status_error(int(code) if code.isdigit() else 500, line[5:])
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or ():
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            row.text.append(piece)
                            row.tokens += 1
                        finish = choice.get("finish_reason") or finish
                    count = int(usage.get("completion_tokens") or row.tokens)
                    if count != handle.tokens:
                        handle.advance(count)
        except httpx.TimeoutException:
            raise RequestTimeout("the engine server did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"lost the engine server at {self._base}: {exc}") from None
        if finish not in ("stop", "length"):
            raise ModelUnavailable(f"the engine server ended the row without finishing ({finish})")
        return GenerationResult(
            text="".join(row.text),
            finish_reason="stop" if finish == "stop" else "length",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or row.tokens),
        )


def _result_of(task: asyncio.Future[GenerationResult], row: _Row) -> GenerationResult:
    if task.cancelled():
        result = GenerationResult(text="".join(row.text), finish_reason="cancelled")
        result.completion_tokens = row.tokens
    elif isinstance(task.exception(), M2Error):
        return GenerationResult(error=task.exception())  # type: ignore[arg-type]
    elif task.exception() is not None:
        logger.error("streaming a row failed", exc_info=task.exception())
        return GenerationResult(error=InternalError("the engine server's answer was unreadable"))
    else:
        result = task.result()
    result.image_tokens = row.image_tokens
    result.image_sizes = row.image_sizes
    result.preprocess_ms = row.preprocess_ms
    return result
