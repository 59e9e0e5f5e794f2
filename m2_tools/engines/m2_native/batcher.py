"""Iteration-level batching: what one engine step does.

A step, in order:

1. rows cancelled from outside leave the running batch;
2. at most one prefill pass runs, and only while the batch has room: either the next
   chunk of a long prompt, or the waiting prompts that fit the step's token budget
   together (rows × padded width ≤ ``prefill_tokens``);
3. prefilled rows join while there is room: the rows of one prompt (its samples) copy
   its prefix cache instead of recomputing it, and a prompt whose rows do not all fit
   keeps its prefix until they do;
4. every running row gets one token.

So a newcomer never stalls the running rows for more than one prefill pass, and a row
that joins mid-flight decodes the same greedy tokens as alone. A prefill that raises
fails only the rows it was for; a decode step that raises fails the running rows.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import torch

from m2_tools.engines.m2_native.compiled import CompiledDecoder
from m2_tools.engines.m2_native.generation import DecodeRow, RunningBatch
from m2_tools.engines.m2_native.kv_cache import BatchCache
from m2_tools.engines.m2_native.modeling import M2Model
from m2_tools.engines.m2_native.prefill import ChunkedPrefill, prefill_together
from m2_tools.engines.m2_native.processor import PreparedPrompt

__all__ = ["IterationBatcher", "PromptGroup"]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class PromptGroup:
    """One prepared prompt and the rows that decode from it (several for samples)."""

    prompt: PreparedPrompt
    rows: list[DecodeRow]


@dataclass(eq=False)
class _Ready:
    """A prefilled prompt whose rows wait for room: its 1-row prefix cache and logits."""

    prefix: BatchCache
    next_pos: int
    logits: torch.Tensor
    rows: list[DecodeRow]


class IterationBatcher:
    """Waiting prompts, prefilled prefixes and the running batch of one model.

    Args:
        model: The loaded model.
        stop_ids: Tokens that end a row.
        pad_id: Token used for left padding.
        max_rows: The most rows decoding at once.
        prefill_tokens: Token budget of one step's prefill pass (also the chunk size).
        contain_failures: Fail the affected rows when the model raises (the engine);
            False re-raises (direct callers such as :func:`~.generation.generate_batch`).
        fast: The compiled decoder for a row decoding alone (``M2_COMPILE``), or None.
    """

    def __init__(
        self,
        model: M2Model,
        *,
        stop_ids: Collection[int],
        pad_id: int,
        max_rows: int,
        prefill_tokens: int,
        contain_failures: bool = True,
        fast: CompiledDecoder | None = None,
    ) -> None:
        self.model = model
        self.pad_id = pad_id
        self.max_rows = max(1, max_rows)
        self.prefill_tokens = max(1, prefill_tokens)
        self.contain_failures = contain_failures
        self.batch = RunningBatch(model, stop_ids, fast)
        self._inbox: collections.deque[PromptGroup] = collections.deque()
        self._inbox_lock = threading.Lock()
        self._waiting: collections.deque[PromptGroup] = collections.deque()
        self._chunking: tuple[ChunkedPrefill, list[DecodeRow]] | None = None
        self._ready: list[_Ready] = []

    def add(self, groups: Sequence[PromptGroup]) -> None:
        """Queue prompts from any thread; they start at a later :meth:`step`."""
        with self._inbox_lock:
            self._inbox.extend(groups)

    def busy(self) -> bool:
        """Whether any row is running, prefilled or waiting."""
        with self._inbox_lock:
            queued = bool(self._inbox)
        return bool(queued or self.batch.rows or self._waiting or self._chunking or self._ready)

    @torch.inference_mode()
    def step(self) -> bool:
        """One iteration (see the module docstring); True while work remains."""
        with self._inbox_lock:
            self._waiting.extend(self._inbox)
            self._inbox.clear()
        self.batch.drop_stopped()
        self._ready = [r for r in self._ready if _live(r.rows)]
        room = self.max_rows - len(self.batch) - sum(len(r.rows) for r in self._ready)
        if room > 0:
            self._prefill(room)
        self._admit()
        if self.batch.rows:
            alone = not (self._waiting or self._chunking or self._ready or self._inbox)
            try:
                self.batch.decode(alone)
            except Exception as exc:
                if not self.contain_failures:
                    raise
                logger.exception("decode step failed for %d rows", len(self.batch))
                self.batch.fail_all(exc)
        return self.busy()

    def _prefill(self, room: int) -> None:
        if self._chunking is not None:
            chunked, rows = self._chunking
            if not _live(rows):
                self._chunking = None
                return
            self._guarded(rows, lambda: self._advance_chunk(chunked, rows))
            return
        groups = self._take_groups(room)
        if not groups:
            return
        rows = [row for group in groups for row in group.rows]
        longest = max(len(group.prompt.input_ids) for group in groups)
        if len(groups) == 1 and longest > self.prefill_tokens:
            chunked = ChunkedPrefill(self.model, groups[0].prompt, self.prefill_tokens)
            self._chunking = (chunked, rows)
            self._guarded(rows, lambda: self._advance_chunk(chunked, rows))
            return
        self._guarded(rows, lambda: self._prefill_together(groups))

    def _take_groups(self, room: int) -> list[PromptGroup]:
        """Waiting prompts for one pass: the first always, more while the budget holds."""
        taken: list[PromptGroup] = []
        rows = width = 0
        while self._waiting and rows < room:
            group = self._waiting[0]
            wider = max(width, len(group.prompt.input_ids))
            if taken and (len(taken) + 1) * wider > self.prefill_tokens:
                break
            self._waiting.popleft()
            group.rows = [row for row in group.rows if row.start()]
            if group.rows:
                taken.append(group)
                rows, width = rows + len(group.rows), wider
        return taken

    def _prefill_together(self, groups: list[PromptGroup]) -> None:
        cache, next_pos, logits = prefill_together(
            self.model, [g.prompt for g in groups], self.pad_id
        )
        for i, group in enumerate(groups):
            prefix = cache.repeat([1 if j == i else 0 for j in range(len(groups))])
            prefix.trim()
            self._ready.append(_Ready(prefix, next_pos[i], logits[i : i + 1], group.rows))

    def _advance_chunk(self, chunked: ChunkedPrefill, rows: list[DecodeRow]) -> None:
        if chunked.advance():
            self._chunking = None
            assert chunked.logits is not None
            self._ready.append(_Ready(chunked.cache, chunked.next_pos, chunked.logits, rows))

    def _guarded(self, rows: list[DecodeRow], work: object) -> None:
        try:
            work()  # type: ignore[operator]
        except Exception as exc:
            if not self.contain_failures:
                raise
            logger.exception("prefill failed for %d rows", len(rows))
            if self._chunking is not None and self._chunking[1] is rows:
                self._chunking = None
            for row in rows:
                row.finish("cancelled", exc)

    def _admit(self) -> None:
        """Move prefilled rows into the batch while it has room, in arrival order."""
        room = self.max_rows - len(self.batch)
        rows: list[DecodeRow] = []
        parts: list[BatchCache] = []
        positions: list[int] = []
        logits: list[torch.Tensor] = []
        for ready in self._ready:
            take = min(room, len(ready.rows))
            if take == 0:
                continue
            rows += ready.rows[:take]
            ready.rows = ready.rows[take:]
            # Why: samples of one prompt share its prefill; each row copies the prefix.
            parts.append(ready.prefix.repeat([take]))
            positions += [ready.next_pos] * take
            logits.append(ready.logits.expand(take, -1))
            room -= take
        self._ready = [ready for ready in self._ready if ready.rows]
        if not rows:
            return
        joined = parts[0]
        for part in parts[1:]:
            joined.merge(part)
        self.batch.join(rows, joined, positions, torch.cat(logits))


def _live(rows: list[DecodeRow]) -> bool:
    """Whether any row still wants tokens; rows cancelled while waiting end here."""
    for row in rows:
        if not row.finished and row.stopped():
            row.finish("cancelled")
    rows[:] = [row for row in rows if not row.finished]
    return bool(rows)
