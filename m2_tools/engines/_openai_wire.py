"""The wire side of :mod:`m2_tools.engines.openai_compat`: images, limits and error mapping."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from m2_tools.engines.m2_native.resize import (
    MAX_PIXELS,
    MIN_PIXELS,
    RESIZE_FACTOR,
    fetch_resize,
    smart_resize,
)
from m2_tools.errors import Busy, InvalidArgument, M2Error, ModelUnavailable, RequestTimeout

if TYPE_CHECKING:
    from m2_tools.engines.base import GenerationRequest
    from m2_tools.settings import Settings

__all__ = [
    "IMAGE_PLACEHOLDER",
    "STOP_STRINGS",
    "chat_payload",
    "image_url",
    "pixel_limits",
    "status_error",
]

#: One image in the prompt text, as the m2-vllm plugin expands it.
IMAGE_PLACEHOLDER = "<image><imagePatch></image>"
STOP_STRINGS = ("<|im_end|>", "<|endoftext|>")
_SERVER_MESSAGE_CHARS = 300


def chat_payload(
    request: GenerationRequest, model: str, urls: Sequence[str], *, m2: bool
) -> dict[str, Any]:
    """The streaming chat-completions body for one row (``m2``: for m2-vllm, in place)."""
    text = (IMAGE_PLACEHOLDER * len(urls) if m2 else "") + request.user_text
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    content += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    payload: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": request.system_prompt},
            {"role": "user", "content": content},
        ],
        "max_tokens": request.max_new_tokens,
        "temperature": request.temperature if request.do_sample else 0.0,
        "top_p": request.top_p if request.do_sample else 1.0,
        "stop": list(STOP_STRINGS),
        "stream": True,
        "stream_options": {"include_usage": True, "continuous_usage_stats": m2},
    }
    if request.seed is not None:
        payload["seed"] = request.seed
    if m2:
        # vLLM's own fields: keep <think> and the other special tokens as text.
        payload["skip_special_tokens"] = False
        payload["spaces_between_special_tokens"] = False
    return payload


def status_error(status: int, body: str) -> M2Error:
    """The contract error for an HTTP error status from the engine server."""
    detail = _server_message(body)
    if status in (401, 403):
        return ModelUnavailable(f"the engine server refused the API key ({status})")
    if status in (429, 503):
        return Busy(f"the engine server is busy ({status}); retry shortly")
    if status in (408, 504):
        return RequestTimeout(f"the engine server timed out ({status})")
    if status in (400, 413, 422):
        return InvalidArgument(f"the engine server refused the request: {detail}")
    return ModelUnavailable(f"the engine server failed ({status}): {detail}")


def _server_message(body: str) -> str:
    try:
        error = json.loads(body).get("error")
        message = error.get("message") if isinstance(error, dict) else json.loads(body)["message"]
    except (ValueError, AttributeError, KeyError, TypeError):
        message = body
    return str(message).strip()[:_SERVER_MESSAGE_CHARS]


def pixel_limits(settings: Settings) -> tuple[int, int]:
    """(min, max) pixels per image: the checkpoint's, when ``model`` is a local directory."""
    low, high = MIN_PIXELS, MAX_PIXELS
    path = Path(settings.model).expanduser() / "preprocessor_config.json"
    try:
        pre = json.loads(path.read_text(encoding="utf-8"))
        size = pre.get("size") or {}
        low = int(pre.get("min_pixels") or size.get("shortest_edge") or low)
        high = int(pre.get("max_pixels") or size.get("longest_edge") or high)
    except (OSError, ValueError, AttributeError):
        pass
    if settings.max_pixels:
        high = min(high, settings.max_pixels)
    return low, high


def image_url(image: Image.Image, min_pixels: int, max_pixels: int) -> tuple[str, tuple[int, int]]:
    """The image at model resolution as a PNG data URL, and its (width, height)."""
    # Lazy: the shared resize rule lives with the native processor, which imports torch.
    resized = fetch_resize(image)
    height, width = smart_resize(
        resized.height, resized.width, RESIZE_FACTOR, min_pixels, max_pixels
    )
    if (width, height) != resized.size:
        # The image processor's own step (PIL bicubic on 8-bit RGB), done here so that the
        # server gets model-sized images and leaves them as they are.
        resized = resized.resize((width, height), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    resized.save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"data:image/png;base64,{encoded}", (width, height)
