"""Tool input models and the one result model, shared by every adapter.

These are the single definition of what the tools take and return: the MCP
server publishes them as ``inputSchema``/``outputSchema`` and LangChain uses them
as ``args_schema``. Field descriptions are written for the calling agent.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ImageInfo",
    "M2Result",
    "ModelInfo",
    "ServiceStatus",
    "SpatialReasonInput",
    "Status",
    "Timings",
    "ToolName",
    "Usage",
    "VisualMathReasonInput",
]

#: Longest ``question``, and longest single option in ``choices``.
MAX_QUESTION_CHARS = 20_000
MAX_CHOICE_CHARS = 1_000
#: Longest prompt text: the question and every option together. Checked with the fields,
#: so an oversized call is refused before any work, never tokenised by the model's worker.
MAX_PROMPT_TEXT_CHARS = 30_000

ToolName = Literal["visual_math_reason", "spatial_reason"]
Status = Literal["ok", "no_answer", "truncated", "ambiguous"]

_IMAGE_REF_HELP = (
    "Each image is a string: a data URI (data:image/png;base64,...), bare base64 of an "
    "image file, an http(s) URL (public hosts only, when URL fetching is enabled), or a "
    "file path / file:// URI inside the server's allowed directories. PNG, JPEG, WebP, "
    "GIF (first frame), BMP and TIFF are accepted."
)


class _ToolInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    question: str = Field(
        ...,
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        description="The question to answer, in plain language; LaTeX is fine. Do not "
        "list the options here when you pass them in `choices`. The question and the "
        "choices together are at most 30000 characters.",
    )
    choices: list[Annotated[str, Field(min_length=1, max_length=MAX_CHOICE_CHARS)]] | None = Field(
        None,
        min_length=2,
        max_length=26,
        description="Answer options for a multiple-choice question, in order, without "
        "letters (they are labelled A, B, C, ...), each 1 to 1000 characters. When given, the "
        "result's `choice` holds the chosen letter(s) and `choice_text` the chosen option; an "
        "answer that matches no option has status `no_answer` and the flag `no_choice`.",
    )
    samples: int = Field(
        1,
        ge=1,
        le=8,
        description="How many answers to generate. Above 1, sampled answers vote and the "
        "result carries `votes` and `confidence` (share of votes for the winner). Costs "
        "that many generations.",
    )
    include_raw: bool = Field(
        False, description="Also return the model's full raw output in `raw_output`."
    )

    @model_validator(mode="after")
    def _prompt_text_fits(self) -> _ToolInput:
        total = len(self.question) + sum(len(option) for option in self.choices or ())
        if total > MAX_PROMPT_TEXT_CHARS:
            raise ValueError(
                f"question and choices together are {total} characters, more than "
                f"{MAX_PROMPT_TEXT_CHARS}; shorten the question or the choices"
            )
        return self


class VisualMathReasonInput(_ToolInput):
    """Arguments of ``visual_math_reason``."""

    images: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="0 to 8 images the question is about (figure, chart, diagram, table, "
        "photo of a problem). " + _IMAGE_REF_HELP,
    )
    max_new_tokens: int = Field(
        4096,
        ge=16,
        le=16384,
        description="Upper bound on generated tokens, reasoning included. Lower it for "
        "speed; too low a value ends in status `truncated`.",
    )


class SpatialReasonInput(_ToolInput):
    """Arguments of ``spatial_reason``."""

    images: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="0 to 32 images of the scene: several views, or video frames in time "
        "order; at least one image or a `video` is required. " + _IMAGE_REF_HELP,
    )
    video: str | None = Field(
        None,
        min_length=1,
        description="A video of the scene: a file path / file:// URI inside the server's "
        "allowed directories, an http(s) URL (public hosts, when URL fetching is enabled) or "
        "a data URI (data:video/mp4;base64,...). MP4, WebM, MOV, MKV and AVI are accepted. "
        "Frames are sampled evenly over the whole video and shown after any `images`, in "
        "time order; each appears in the result's `images` with its `timestamp_s`.",
    )
    max_frames: int = Field(
        16,
        ge=1,
        le=32,
        description="How many frames to sample from `video` (default 16). Images and frames "
        "together are at most 32, so fewer are taken when `images` leaves less room; a clip "
        "with fewer frames gives fewer. More frames see more of the scene but cost more "
        "time, and each frame gets fewer pixels.",
    )
    max_new_tokens: int = Field(
        2048,
        ge=16,
        le=16384,
        description="Upper bound on generated tokens, reasoning included. Lower it for "
        "speed; too low a value ends in status `truncated`.",
    )

    @model_validator(mode="after")
    def _needs_a_picture(self) -> SpatialReasonInput:
        if not self.images and self.video is None:
            raise ValueError("pass at least one image in `images`, or a `video`")
        if self.video is not None and len(self.images) >= 32:
            raise ValueError("32 images leave no room for video frames (32 in all)")
        return self


class ModelInfo(BaseModel):
    """Which model produced the answer."""

    id: str = Field(
        ...,
        description="The hub id, or for a local checkpoint its directory's final name (never "
        "a server path).",
    )
    revision: str | None = Field(None, description="Checkpoint revision, when known.")
    backend: str = Field(..., description="Engine that ran it, e.g. `m2-native/cuda/bfloat16`.")


class Usage(BaseModel):
    """Token counts of the call (all samples together for completion tokens)."""

    prompt_tokens: int = Field(..., ge=0, description="Prompt tokens, image tokens included.")
    completion_tokens: int = Field(..., ge=0, description="Generated tokens.")
    image_tokens: int = Field(..., ge=0, description="Prompt tokens that stand for images.")


class Timings(BaseModel):
    """Where the time went, in milliseconds."""

    queue: float = Field(..., ge=0, description="Waiting for the model (loading and queue).")
    preprocess: float = Field(..., ge=0, description="Image intake and model preprocessing.")
    generate: float = Field(..., ge=0, description="Model generation.")
    total: float = Field(..., ge=0, description="The whole call.")
    cache_hit: bool = Field(False, description="True when the result came from the cache.")


class ImageInfo(BaseModel):
    """One input image, as given and as the model saw it."""

    source: Literal["path", "url", "data", "video"] = Field(
        ..., description="Kind of reference; `video` for a frame sampled from `video`."
    )
    timestamp_s: float | None = Field(
        None, ge=0, description="For a video frame: its time in the video, in seconds; else null."
    )
    width: int = Field(..., ge=1, description="Width as given, in pixels.")
    height: int = Field(..., ge=1, description="Height as given, in pixels.")
    model_width: int = Field(..., ge=0, description="Width after resizing for the model.")
    model_height: int = Field(..., ge=0, description="Height after resizing for the model.")


class M2Result(BaseModel):
    """The structured answer of ``visual_math_reason`` or ``spatial_reason``."""

    model_config = ConfigDict(extra="forbid")

    tool: ToolName = Field(..., description="Which tool produced this result.")
    answer: str | None = Field(
        None, description="The final answer, cleaned from \\boxed{} / <answer>; null if none."
    )
    choice: str | None = Field(
        None,
        description="The chosen option letter (e.g. `C`), or letters joined by `,` for "
        "multi-select; null when no option was chosen.",
    )
    choice_text: str | None = Field(
        None, description="Text of the chosen option, when exactly one option was chosen."
    )
    value: float | None = Field(
        None, description="The answer as a number, when it is exactly one number."
    )
    rationale: str | None = Field(None, description="The model's reasoning from <think>.")
    rationale_truncated: bool = Field(
        False, description="True when the reasoning was cut off before it closed."
    )
    status: Status = Field(
        ...,
        description="ok: an answer an agent can act on (with `choices`, `choice` is set). "
        "truncated: output was cut off (raise max_new_tokens). no_answer: no answer could be "
        "extracted, or with `choices` the answer matches no option (its text stays in "
        "`answer`; `flags` holds `no_choice`). ambiguous: a long answer with no clear "
        "conclusion.",
    )
    flags: list[str] = Field(
        default_factory=list,
        description="The parser's notes on how it read the output, e.g. `no_choice`, "
        "`letter_value_conflict`, `think_unclosed`, `multiple_boxes`.",
    )
    confidence: float | None = Field(
        None, ge=0, le=1, description="Share of samples that voted for this answer (samples > 1)."
    )
    votes: dict[str, int] | None = Field(
        None, description="Answer → number of samples that gave it (samples > 1)."
    )
    finish_reason: Literal["stop", "length"] = Field(
        ..., description="stop: the model ended its answer. length: max_new_tokens was reached."
    )
    model: ModelInfo
    usage: Usage
    timings_ms: Timings
    images: list[ImageInfo] = Field(default_factory=list, description="One entry per image.")
    raw_output: str | None = Field(
        None, description="Raw completion with special tokens (only with include_raw)."
    )

    def to_payload(self) -> dict[str, object]:
        """The contract JSON object: ``raw_output`` is present only when it was asked for."""
        exclude = {"raw_output"} if self.raw_output is None else set()
        return self.model_dump(mode="json", exclude=exclude)


class ServiceStatus(BaseModel):
    """The service's health: model state, queue and cache."""

    model: str = Field(..., description="Configured model id or path.")
    state: Literal["idle", "loading", "ready", "failed"] = Field(
        ..., description="idle: not asked to load yet; loading; ready; failed (see reason)."
    )
    reason: str | None = Field(None, description="Why loading failed.")
    backend: str = Field(..., description="Engine backend.")
    device: str = Field(..., description="Device the model runs on.")
    load_progress: str | None = Field(None, description="Latest loading progress line.")
    load_seconds: float | None = Field(None, description="How long loading took.")
    queue_depth: int = Field(..., ge=0, description="Calls waiting or running.")
    queue_capacity: int = Field(..., ge=1, description="Calls accepted at once before `busy`.")
    cache_entries: int = Field(0, ge=0, description="Results held in the cache.")
    cache_hits: int = Field(0, ge=0, description="Calls answered from the cache.")
