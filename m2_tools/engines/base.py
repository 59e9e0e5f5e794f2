"""The engine interface: the one boundary between the service and a model.

The service (:class:`m2_tools.M2Reasoner`) hands an engine a *batch* of
:class:`GenerationRequest` rows and gets one :class:`GenerationResult` per row.
A row that fails carries its own ``error`` so that its batch-mates still
succeed. Engines are driven from a single worker thread; they need no locks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from m2_tools.errors import M2Error

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "Engine",
    "EngineInfo",
    "GenerationRequest",
    "GenerationResult",
    "LoadProgress",
    "TokenCallback",
]

#: Called by an engine after each generated token with the number generated so far.
TokenCallback = Callable[[int], None]
#: Called while loading with (done, total, message); total may be 0 when unknown.
LoadProgress = Callable[[float, float, str], None]


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt for the model: a system text, then images, then a user text.

    Attributes:
        system_prompt: The system message, verbatim.
        user_text: The user turn's text item (question and options), placed after
            the image items.
        images: RGB images in the order they appear in the user turn.
        max_new_tokens: Generation limit for this row.
        do_sample: Sample instead of greedy decoding.
        temperature: Sampling temperature (ignored when greedy).
        top_p: Nucleus sampling mass (ignored when greedy).
        seed: Seed for this row's sampling, for reproducible votes.
        max_pixels: A per-image pixel budget that may only lower the engine's limit.
        on_token: Progress callback, see :data:`TokenCallback`.
        cancel: When set, the engine stops this row early and reports ``cancelled``.
    """

    system_prompt: str
    user_text: str
    images: tuple[Image.Image, ...] = ()
    max_new_tokens: int = 1024
    do_sample: bool = False
    temperature: float = 0.9
    top_p: float = 1.0
    seed: int | None = None
    max_pixels: int | None = None
    on_token: TokenCallback | None = field(default=None, compare=False)
    cancel: threading.Event | None = field(default=None, compare=False)


@dataclass
class GenerationResult:
    """What the engine produced for one row.

    Attributes:
        text: The decoded completion, special tokens kept, stop token removed.
        finish_reason: ``stop`` (a stop token), ``length`` (max_new_tokens) or
            ``cancelled`` (the row's cancel event was set).
        prompt_tokens: Prompt length after image-token expansion.
        completion_tokens: Tokens generated (the stop token included).
        image_tokens: Prompt tokens standing for images.
        image_sizes: Per image, the (width, height) the model saw.
        preprocess_ms: Time spent preparing this row (processor, tokenizer).
        generate_ms: Time spent generating (shared by the whole batch).
        error: Set when this row failed; the other fields are then meaningless.
    """

    text: str = ""
    finish_reason: Literal["stop", "length", "cancelled"] = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    image_tokens: int = 0
    image_sizes: tuple[tuple[int, int], ...] = ()
    preprocess_ms: float = 0.0
    generate_ms: float = 0.0
    error: M2Error | None = None


@dataclass(frozen=True)
class EngineInfo:
    """Identity of a loaded engine, reported in every result."""

    id: str
    backend: str
    revision: str | None = None
    device: str = "cpu"


@runtime_checkable
class Engine(Protocol):
    """A model that answers batches of prompts.

    ``load`` is called once, from a background thread, before the first
    ``generate``; it raises :class:`m2_tools.errors.ModelUnavailable` with a
    reason when the model cannot be loaded. ``generate`` is only ever called from
    the service's single worker thread.
    """

    @property
    def info(self) -> EngineInfo:
        """Identity of the model; valid before and after ``load``."""
        ...

    @property
    def max_batch_size(self) -> int:
        """The most rows one ``generate`` call accepts."""
        ...

    def load(self, progress: LoadProgress | None = None) -> None:
        """Load the model, reporting progress; raise ``ModelUnavailable`` on failure."""
        ...

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Generate one result per request, in order."""
        ...

    def close(self) -> None:
        """Release the model's memory."""
        ...
