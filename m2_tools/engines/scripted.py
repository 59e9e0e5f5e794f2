"""A scripted engine that replays canned completions: the one fake of the project.

It implements the real engine interface, both paths (see :mod:`m2_tools.engines.base`),
so everything above the model (service, scheduler, parser, adapters) runs for real in
tests and demos. It emits "tokens" (whitespace-delimited pieces), calling ``on_token``
and honouring ``cancel``, and can simulate slow loading, slow or hanging generation,
and failures.

Timing is per row, as in a real batch: each step (of ``step()``, or of one
``generate`` call) takes ``token_delay_s`` and gives every running row one token, so a
short row finishes after its own tokens, not after its longest neighbour's.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from m2_tools.engines._scripted_steps import Batch, Row
from m2_tools.engines.base import (
    EngineInfo,
    GenerationRequest,
    GenerationResult,
    LoadProgress,
    RowHandle,
    RowMode,
)
from m2_tools.errors import InternalError, M2Error, ModelUnavailable

__all__ = ["ScriptedEngine", "ScriptedReply"]

_TOKEN = re.compile(r"\s*\S+|\s+")


@dataclass(frozen=True)
class ScriptedReply:
    """One canned completion.

    Attributes:
        text: What the model "says" (the stop token is added by the engine).
        error: Fail this row with this error instead (its neighbours still succeed).
        raise_in_batch: Raise this out of ``generate``, failing the whole batch. On the
            per-row path the rows that join the running batch with this one fail, as
            when the native engine's prefill of newcomers fails; running rows go on.
        raise_in_step: Per-row path only: raise this out of ``step()`` when the row
            joins, as an engine bug would (the scheduler then fails the running rows).
        prepare_gate: Per-row path only: ``submit`` blocks until this is set, as the
            tokenisation and image preprocessing of a huge prompt would.
    """

    text: str = ""
    error: M2Error | None = None
    raise_in_batch: Exception | None = None
    raise_in_step: Exception | None = None
    prepare_gate: threading.Event | None = None


Reply = str | ScriptedReply


def _as_reply(reply: Reply) -> ScriptedReply:
    return reply if isinstance(reply, ScriptedReply) else ScriptedReply(text=reply)


@dataclass
class ScriptedEngine:
    """Replays completions: by question substring first, then in order, then ``default``.

    Attributes:
        replies: Completions handed out in order, one per row.
        by_question: Substring of the user text → completion (or a list used in turn).
        default: The completion when nothing else matches.
        token_delay_s: Duration of one step: every running row gets one token per step.
        load_delay_s: Sleep in ``load`` (simulated slow loading).
        load_gate: When given, ``load`` blocks until it is set.
        generate_gate: When given, each step blocks until it is set or every running
            row is cancelled (simulated hang).
        load_error: ``load`` raises this (a non-M2 error is wrapped as model_unavailable).
        max_batch: Reported ``max_batch_size``: the most rows running at once.
        row_mode: ``stepped`` (rows advance in ``step()``, like the native engine) or
            ``self`` (each submitted row runs on its own thread, like a server that
            batches by itself).
        generate_started: Set whenever a step runs rows (lets tests synchronise).
        preparing: Rows whose ``submit`` waits on their reply's ``prepare_gate`` now.
        calls: Rows that started together, in order: one entry per ``generate`` call,
            per group of rows joining the running batch at one step, or per ``submit``
            in ``self`` mode (recorded).
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
    row_mode: RowMode = "stepped"
    generate_started: threading.Event = field(default_factory=threading.Event)
    calls: list[list[GenerationRequest]] = field(default_factory=list)
    preparing: int = 0
    loaded: bool = False
    closed: bool = False
    _next: int = 0
    _per_question: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _batch: Batch | None = None

    @property
    def info(self) -> EngineInfo:
        """Identity reported in results."""
        return EngineInfo(id=self.model_id, backend="scripted", device="cpu")

    @property
    def max_batch_size(self) -> int:
        """The most rows running at once."""
        return self.max_batch

    @property
    def requests(self) -> list[GenerationRequest]:
        """Every row that started, flattened in order."""
        return [request for batch in self.calls for request in batch]

    @property
    def waiting(self) -> int:
        """Rows submitted on the per-row path that have not joined the running batch yet."""
        batch = self._batch
        return 0 if batch is None else len(batch.waiting)

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
        """Answer every row from the script as one batch that starts together."""
        batch = Batch(self, capacity=max(1, len(requests)))
        rows = [self._row(request) for request in requests]
        batch.add(rows)
        while batch.step(contain_join_failures=False):
            pass
        return [row.handle.result() for row in rows]

    def submit(self, requests: Sequence[GenerationRequest]) -> list[RowHandle]:
        """Queue one call's rows; in ``self`` mode each starts at once on its own thread."""
        rows = [self._row(request) for request in requests]
        for row in rows:
            if row.reply.prepare_gate is not None:
                with self._lock:
                    self.preparing += 1
                row.reply.prepare_gate.wait()
                with self._lock:
                    self.preparing -= 1
        if self.row_mode == "self":
            self.calls.append(list(requests))
            for row in rows:
                threading.Thread(target=self._run_alone, args=(row,), daemon=True).start()
        else:
            self._stepper().add(rows)
        return [row.handle for row in rows]

    def step(self) -> bool:
        """Rows leave, waiting rows join, every running row gets one token."""
        if self.row_mode == "self":
            return False
        return self._stepper().step(contain_join_failures=True)

    def close(self) -> None:
        """Mark the engine closed."""
        self.closed = True

    def _stepper(self) -> Batch:
        with self._lock:
            if self._batch is None:
                self._batch = Batch(self, capacity=self.max_batch)
            return self._batch

    def _row(self, request: GenerationRequest) -> Row:
        reply = _as_reply(self._choose(request))
        return Row(RowHandle(request), reply, _TOKEN.findall(reply.text))

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

    def _run_alone(self, row: Row) -> None:
        if not row.handle.claim():
            return
        if row.reply.error is not None or row.reply.raise_in_batch is not None:
            failure = row.reply.error or InternalError("the model failed; see the server log")
            row.handle.finish(GenerationResult(error=failure))
            return
        self.generate_started.set()
        while True:
            if self.generate_gate is not None:
                while not self.generate_gate.wait(0.01) and not row.handle.cancel_requested:
                    pass
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
            if not self._advance(row):
                return

    def _advance(self, row: Row) -> bool:
        """Give ``row`` its next token or finish it; return whether it goes on."""
        handle, request = row.handle, row.handle.request
        if handle.done():
            return False
        finish = None
        if handle.cancel_requested:
            finish = "cancelled"
        elif row.produced < len(row.pieces):
            row.produced += 1
            handle.advance(row.produced)
        if finish is None and row.produced >= len(row.pieces):
            finish = "stop"
        elif finish is None and row.produced >= request.max_new_tokens:
            finish = "length"
        if finish is None:
            return True
        self._finish(row, finish)
        return False

    def _finish(self, row: Row, finish: str) -> None:
        request = row.handle.request
        image_tokens = 64 * len(request.images)
        prompt_chars = len(request.system_prompt) + len(request.user_text)
        started = row.handle.started_at or time.perf_counter()
        row.handle.finish(
            GenerationResult(
                text="".join(row.pieces[: row.produced]),
                finish_reason=finish,  # type: ignore[arg-type]
                prompt_tokens=prompt_chars // 4 + image_tokens + 8,
                completion_tokens=row.produced + (1 if finish == "stop" else 0),
                image_tokens=image_tokens,
                image_sizes=tuple(image.size for image in request.images),
                generate_ms=(time.perf_counter() - started) * 1000,
            )
        )
