"""A scripted engine that replays canned completions: the one fake of the project.

It implements the real :class:`~m2_tools.engines.base.Engine` interface, so
everything above the model (service, queue, parser, adapters) runs for real in
tests and demos. It emits "tokens" (whitespace-delimited pieces) one by one,
calling ``on_token`` and honouring ``cancel``, and can simulate slow loading,
slow or hanging generation, and failures.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from m2_tools.engines.base import (
    EngineInfo,
    GenerationRequest,
    GenerationResult,
    LoadProgress,
)
from m2_tools.errors import M2Error, ModelUnavailable

__all__ = ["ScriptedEngine", "ScriptedReply"]

_TOKEN = re.compile(r"\s*\S+|\s+")
_STOP = "<|im_end|>"


@dataclass(frozen=True)
class ScriptedReply:
    """One canned completion.

    Attributes:
        text: What the model "says" (the stop token is added by the engine).
        error: Fail this row with this error instead (batch-mates still succeed).
        raise_in_batch: Raise this exception out of ``generate``, failing the whole batch.
    """

    text: str = ""
    error: M2Error | None = None
    raise_in_batch: Exception | None = None


Reply = str | ScriptedReply
Chooser = Callable[[GenerationRequest], Reply | None]


def _as_reply(reply: Reply) -> ScriptedReply:
    return reply if isinstance(reply, ScriptedReply) else ScriptedReply(text=reply)


@dataclass
class ScriptedEngine:
    """Replays completions: by question substring first, then in order, then ``default``.

    Attributes:
        replies: Completions handed out in order, one per row.
        by_question: Substring of the user text → completion (or a list used in turn).
        default: The completion when nothing else matches.
        token_delay_s: Sleep per emitted token (simulated slowness).
        load_delay_s: Sleep in ``load`` (simulated slow loading).
        load_gate: When given, ``load`` blocks until it is set.
        generate_gate: When given, ``generate`` blocks until it is set or every row is
            cancelled (simulated hang).
        load_error: ``load`` raises this (a non-M2 error is wrapped as model_unavailable).
        max_batch: Reported ``max_batch_size``.
        generate_started: Set whenever ``generate`` is entered (lets tests synchronise).
        calls: Every batch ``generate`` received, in order (recorded).
    """

    replies: Sequence[Reply] = ()
    by_question: Mapping[str, Reply | Sequence[Reply]] = field(default_factory=dict)
    default: Reply = "<think>\nI looked at it.\n</think>\n<answer>\n\\boxed{42}\n</answer>"
    token_delay_s: float = 0.0
    load_delay_s: float = 0.0
    load_gate: threading.Event | None = None
    generate_gate: threading.Event | None = None
    load_error: Exception | None = None
    max_batch: int = 8
    model_id: str = "scripted"
    generate_started: threading.Event = field(default_factory=threading.Event)
    calls: list[list[GenerationRequest]] = field(default_factory=list)
    loaded: bool = False
    closed: bool = False
    _next: int = 0
    _per_question: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def info(self) -> EngineInfo:
        """Identity reported in results."""
        return EngineInfo(id=self.model_id, backend="scripted", device="cpu")

    @property
    def max_batch_size(self) -> int:
        """The most rows one ``generate`` call accepts."""
        return self.max_batch

    @property
    def requests(self) -> list[GenerationRequest]:
        """Every row received, flattened in order."""
        return [request for batch in self.calls for request in batch]

    def load(self, progress: LoadProgress | None = None) -> None:
        """Pretend to load in four steps, honouring the gate, delay and error."""
        for step in range(4):
            if progress is not None:
                progress(step, 4, f"loading scripted shard {step + 1}/4")
            if step == 1:
                if self.load_gate is not None:
                    self.load_gate.wait()
                if self.load_delay_s:
                    time.sleep(self.load_delay_s)
        if self.load_error is not None:
            if isinstance(self.load_error, M2Error):
                raise self.load_error
            raise ModelUnavailable(f"scripted load failure: {self.load_error}")
        self.loaded = True

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Answer every row from the script, token by token."""
        self.calls.append(list(requests))
        self.generate_started.set()
        replies = [_as_reply(self._choose(request)) for request in requests]
        for reply in replies:
            if reply.raise_in_batch is not None:
                raise reply.raise_in_batch
        if self.generate_gate is not None:
            self._wait_gate(self.generate_gate, requests)
        return [
            self._emit(request, reply) for request, reply in zip(requests, replies, strict=True)
        ]

    def close(self) -> None:
        """Mark the engine closed."""
        self.closed = True

    def _choose(self, request: GenerationRequest) -> Reply:
        with self._lock:
            for needle, reply in self.by_question.items():
                if needle in request.user_text:
                    if isinstance(reply, (str, ScriptedReply)):
                        return reply
                    turn = self._per_question.get(needle, 0)
                    self._per_question[needle] = turn + 1
                    return list(reply)[turn % len(reply)]
            if self._next < len(self.replies):
                self._next += 1
                return self.replies[self._next - 1]
            return self.default

    @staticmethod
    def _wait_gate(gate: threading.Event, requests: Iterable[GenerationRequest]) -> None:
        cancels = [r.cancel for r in requests if r.cancel is not None]
        while not gate.wait(0.01):
            if cancels and all(cancel.is_set() for cancel in cancels):
                return

    def _emit(self, request: GenerationRequest, reply: ScriptedReply) -> GenerationResult:
        started = time.perf_counter()
        if reply.error is not None:
            return GenerationResult(error=reply.error)
        pieces = _TOKEN.findall(reply.text)
        produced: list[str] = []
        finish = "stop"
        for piece in pieces:
            if request.cancel is not None and request.cancel.is_set():
                finish = "cancelled"
                break
            if len(produced) >= request.max_new_tokens:
                finish = "length"
                break
            produced.append(piece)
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
            if request.on_token is not None:
                request.on_token(len(produced))
        image_tokens = 64 * len(request.images)
        prompt_chars = len(request.system_prompt) + len(request.user_text)
        return GenerationResult(
            text="".join(produced),
            finish_reason=finish,  # type: ignore[arg-type]
            prompt_tokens=prompt_chars // 4 + image_tokens + 8,
            completion_tokens=len(produced) + (1 if finish == "stop" else 0),
            image_tokens=image_tokens,
            image_sizes=tuple(image.size for image in request.images),
            generate_ms=(time.perf_counter() - started) * 1000,
        )
