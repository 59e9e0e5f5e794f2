"""The engine interface: the one boundary between the service and a model.

Two paths lead through it (engine protocol v2):

- **Batch path**, every engine: ``generate(requests)`` takes rows and returns one
  :class:`GenerationResult` per row once all of them are done. The static scheduler
  uses it; so do tests and benchmarks that drive an engine directly.
- **Per-row path**, a :class:`RowEngine`: ``submit(requests)`` hands over the rows of
  one call and returns one :class:`RowHandle` per row at once. A handle gives token
  progress (``tokens``), the final result (``result()``, ``add_done_callback``) and
  ``cancel()``. ``row_mode`` says who moves the rows on:

  - ``"self"``: the engine runs each row as soon as it is submitted and batches on its
    own (an OpenAI-compatible server such as vLLM). The scheduler only submits and
    waits on the handles; ``step`` is never called.
  - ``"stepped"``: rows advance only when the service's single worker thread calls
    ``step()``. The native engine keeps one running batch: at every step finished rows
    leave and waiting rows join (iteration-level batching).

Rules every engine keeps:

- ``submit`` may be called from any thread. It does the row's CPU-side preparation
  (tokenisation, image patches) in the calling thread, so that no prompt ever stalls
  the worker, and it never waits for generation. A row it cannot prepare is finished
  at once with that row's ``error``.
- The rows of one ``submit`` belong to one call. Rows with the same prompt (votes,
  ``samples > 1``) may share the image pass and the prompt prefill.
- A row that fails carries its own ``error``; its neighbours still succeed. A row whose
  handle is finished from outside (cancelled, or failed by the scheduler) leaves the
  engine's batch at the next step.
- ``step``, ``generate``, ``load`` and ``close`` are called from one thread at a time
  (the worker), so engines need no locks there; :class:`RowHandle` is thread-safe.

An engine implements the engine side of a handle with :meth:`RowHandle.claim` (the row
starts; False means it was cancelled while waiting and must be dropped),
:meth:`RowHandle.advance` (one more token; it calls the request's ``on_token``) and
:meth:`RowHandle.finish` (exactly once; later calls are ignored).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from m2_tools.errors import InternalError, M2Error

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "Engine",
    "EngineInfo",
    "GenerationRequest",
    "GenerationResult",
    "LoadProgress",
    "RowEngine",
    "RowHandle",
    "RowMode",
    "TokenCallback",
    "run_rows",
]

logger = logging.getLogger(__name__)

#: Called by an engine after each generated token with the number generated so far.
TokenCallback = Callable[[int], None]
#: Called while loading with (done, total, message); total may be 0 when unknown.
LoadProgress = Callable[[float, float, str], None]
#: Who moves submitted rows on: the engine itself, or the worker's ``step()`` calls.
RowMode = Literal["self", "stepped"]


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
        generate_ms: Time spent generating: from the row's start to its end.
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


class RowHandle:
    """One submitted row: its progress, its final result, and a way to cancel it.

    Thread-safe. The caller side reads :attr:`tokens`, waits on :meth:`result` or
    :meth:`add_done_callback`, and may :meth:`cancel`. The engine side calls
    :meth:`claim`, :meth:`advance` and :meth:`finish`.

    Args:
        request: The row.
    """

    def __init__(self, request: GenerationRequest) -> None:
        self.request = request
        self.submitted_at = time.perf_counter()
        self.started_at: float | None = None
        self._tokens = 0
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._future: Future[GenerationResult] = Future()

    # ---- caller side ---------------------------------------------------------------------

    @property
    def tokens(self) -> int:
        """Tokens generated so far."""
        return self._tokens

    @property
    def started(self) -> bool:
        """Whether the engine has started the row (claimed it)."""
        return self.started_at is not None

    @property
    def cancel_requested(self) -> bool:
        """Whether :meth:`cancel` was called or the request's own cancel event is set."""
        return self._cancel.is_set() or (
            self.request.cancel is not None and self.request.cancel.is_set()
        )

    def done(self) -> bool:
        """Whether the row has its final result."""
        return self._future.done()

    def result(self, timeout: float | None = None) -> GenerationResult:
        """The final result, waiting at most ``timeout`` seconds.

        Raises:
            TimeoutError: The row did not finish in time.
        """
        return self._future.result(timeout)

    def add_done_callback(self, callback: Callable[[RowHandle], None]) -> None:
        """Call ``callback(handle)`` once the row is done (at once when it already is)."""
        self._future.add_done_callback(lambda _future: callback(self))

    def cancel(self) -> None:
        """Stop the row: a waiting row ends at once, a running one before its next token."""
        with self._lock:
            self._cancel.set()
            waiting = self.started_at is None
        if waiting:
            self.finish(GenerationResult(finish_reason="cancelled"))

    # ---- engine side ---------------------------------------------------------------------

    def claim(self) -> bool:
        """Mark the row started; False when it is already done or cancelled (then drop it)."""
        with self._lock:
            if self._future.done():
                return False
            if not self.cancel_requested:
                self.started_at = time.perf_counter()
                return True
        self.finish(GenerationResult(finish_reason="cancelled"))
        return False

    def advance(self, tokens: int) -> None:
        """Record ``tokens`` generated so far and call the request's ``on_token``."""
        self._tokens = tokens
        if self.request.on_token is None:
            return
        try:
            self.request.on_token(tokens)
        except Exception:
            # A broken progress callback must not cost this row or its neighbours anything.
            logger.exception("on_token callback failed")

    def finish(self, result: GenerationResult) -> bool:
        """Settle the row with ``result``; False (and no effect) when it was already settled."""
        with self._lock:
            if self._future.done():
                return False
            self._future.set_result(result)
        return True


@runtime_checkable
class RowEngine(Engine, Protocol):
    """An engine with the per-row path (see the module docstring for the rules)."""

    @property
    def row_mode(self) -> RowMode:
        """``self``: rows run once submitted; ``stepped``: rows advance in :meth:`step`."""
        ...

    def submit(self, requests: Sequence[GenerationRequest]) -> list[RowHandle]:
        """Prepare one call's rows in the calling thread and queue them; never blocks on them."""
        ...

    def step(self) -> bool:
        """One iteration (stepped engines): rows leave, rows join, one token each.

        Returns:
            Whether rows are still running or waiting afterwards.
        """
        ...


def run_rows(engine: RowEngine, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
    """The batch path over the per-row path: submit all rows, drive them, collect the results.

    A stepped engine is stepped in the calling thread, which must then be the only one
    driving it; a self-batching engine is waited on.
    """
    handles = engine.submit(requests)
    if engine.row_mode == "stepped":
        while not all(handle.done() for handle in handles) and engine.step():
            pass
        for handle in handles:
            # Why: an engine that reports no work left must not leave a caller waiting forever.
            handle.finish(GenerationResult(error=InternalError("the engine dropped this row")))
    return [handle.result() for handle in handles]
