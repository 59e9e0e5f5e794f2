"""Frozen settings: keyword arguments (flags), then ``M2_*`` environment, then defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DEFAULT_MODEL", "ENV_VARS", "Settings"]

DEFAULT_MODEL = "inclusionAI/M2-Reasoning"

#: Settings field name → environment variable. The first seven are the contract's.
ENV_VARS: dict[str, str] = {
    "model": "M2_MODEL",
    "device": "M2_DEVICE",
    "dtype": "M2_DTYPE",
    "allowed_dirs": "M2_ALLOWED_DIRS",
    "allow_urls": "M2_ALLOW_URLS",
    "auth_token": "M2_AUTH_TOKEN",
    "log_level": "M2_LOG_LEVEL",
    "queue_size": "M2_QUEUE_SIZE",
    "max_batch_size": "M2_MAX_BATCH_SIZE",
    "batch_wait_ms": "M2_BATCH_WAIT_MS",
    "request_timeout_s": "M2_REQUEST_TIMEOUT_S",
    "load_wait_s": "M2_LOAD_WAIT_S",
    "max_pixels": "M2_MAX_PIXELS",
    "max_total_pixels": "M2_MAX_TOTAL_PIXELS",
    "cache_size": "M2_CACHE_SIZE",
    "quantization": "M2_QUANTIZATION",
    "attn_implementation": "M2_ATTN",
    "prompt_style": "M2_PROMPT_STYLE",
    "engine": "M2_ENGINE",
    "engine_url": "M2_ENGINE_URL",
    "engine_api_key": "M2_ENGINE_API_KEY",
    "scheduler": "M2_SCHEDULER",
    "compile": "M2_COMPILE",
    "prefill_chunk_tokens": "M2_PREFILL_CHUNK_TOKENS",
    "video_max_bytes": "M2_VIDEO_MAX_BYTES",
    "video_max_duration_s": "M2_VIDEO_MAX_DURATION_S",
    "video_max_frame_pixels": "M2_VIDEO_MAX_FRAME_PIXELS",
    "video_max_streams": "M2_VIDEO_MAX_STREAMS",
    "video_decode_timeout_s": "M2_VIDEO_DECODE_TIMEOUT_S",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _default_allowed_dirs() -> tuple[Path, ...]:
    cwd = Path.cwd().resolve()
    return () if cwd == Path(cwd.anchor) else (cwd,)


class Settings(BaseModel):
    """Configuration of the service and its adapters, frozen once built.

    ``Settings()`` reads the ``M2_*`` environment; keyword arguments override it.
    ``allowed_dirs=None`` (the default) means the working directory unless that is
    the filesystem root; the HTTP server passes an empty tuple instead.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(DEFAULT_MODEL, description="Local checkpoint directory or hub id.")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    allowed_dirs: tuple[Path, ...] | None = Field(
        None, description="Directories image paths may come from; None means the default rule."
    )
    allow_urls: bool = True
    auth_token: str | None = Field(None, repr=False)
    log_level: str = "WARNING"
    queue_size: int = Field(64, ge=1, description="Requests waiting or running at most.")
    max_batch_size: int = Field(8, ge=1, description="The most rows decoding together.")
    batch_wait_ms: float = Field(
        5.0, ge=0, description="How long the worker waits to fill a batch."
    )
    request_timeout_s: float = Field(600.0, gt=0, description="Limit for one call, queue included.")
    load_wait_s: float = Field(60.0, ge=0, description="How long a call waits for a loading model.")
    max_pixels: int | None = Field(None, ge=3136, description="Per-image pixel cap for the model.")
    max_total_pixels: int = Field(
        32 * 401_408, ge=3136, description="Pixel budget for all images of one prompt."
    )
    cache_size: int = Field(256, ge=0, description="Greedy results kept in memory (0 disables).")
    quantization: Literal["none", "8bit", "4bit"] = "none"
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    prompt_style: Literal["official", "chatml"] = "official"
    engine: Literal["native", "openai"] = Field(
        "native", description="native (the model in this process) or openai (a server's)."
    )
    engine_url: str | None = Field(
        None, description="OpenAI-compatible server for --engine openai, e.g. http://host:8000/v1."
    )
    engine_api_key: str | None = Field(None, repr=False)
    scheduler: Literal["iteration", "static"] = Field(
        "iteration",
        description="iteration: rows join and leave the running batch at every decode step; "
        "static: each batch runs to its longest row (kept for comparison).",
    )
    compile: bool = Field(
        False, description="Compiled decode (StaticCache + torch.compile) for a lone row."
    )
    prefill_chunk_tokens: int = Field(
        512, ge=16, description="Prompt tokens prefilled per step while other rows decode."
    )
    video_max_bytes: int = Field(
        200 * 2**20, ge=1, description="Largest video file accepted, in bytes (images: 20 MiB)."
    )
    video_max_duration_s: float = Field(1800.0, gt=0, description="Longest video, in seconds.")
    video_max_frame_pixels: int = Field(
        4096 * 4096, ge=1, description="Largest video frame, width times height."
    )
    video_max_streams: int = Field(16, ge=1, description="Most streams in a video container.")
    video_decode_timeout_s: float = Field(
        30.0, gt=0, description="Time allowed to decode one video's sampled frames."
    )

    def __init__(self, **overrides: Any) -> None:
        values = self.from_environment(os.environ)
        values.update({k: v for k, v in overrides.items() if v is not None})
        super().__init__(**values)

    @staticmethod
    def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
        """Return the settings values present in ``environ`` (raw, unvalidated)."""
        found: dict[str, Any] = {}
        for field, var in ENV_VARS.items():
            raw = environ.get(var)
            if raw is None:
                continue
            if field == "allowed_dirs":
                found[field] = tuple(p for p in raw.split(os.pathsep) if p)
            elif field in ("allow_urls", "compile"):
                lowered = raw.strip().lower()
                if lowered not in _TRUE | _FALSE:
                    raise ValueError(f"{var} must be true or false, not {raw!r}")
                found[field] = lowered in _TRUE
            else:
                found[field] = raw
        return found

    @field_validator("allowed_dirs", mode="after")
    @classmethod
    def _absolute_dirs(cls, value: tuple[Path, ...] | None) -> tuple[Path, ...] | None:
        if value is None:
            return None
        return tuple(Path(p).expanduser().resolve() for p in value)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        ok = value in {"auto", "cpu", "cuda", "mps"} or (
            value.startswith("cuda:") and value[5:].isdigit()
        )
        if not ok:
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, not {value!r}")
        return value

    def effective_allowed_dirs(self) -> tuple[Path, ...]:
        """The allowed directories after applying the working-directory default."""
        return _default_allowed_dirs() if self.allowed_dirs is None else self.allowed_dirs
