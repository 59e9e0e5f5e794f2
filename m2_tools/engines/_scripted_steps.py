"""The scripted engine's rows and running batch (see :mod:`m2_tools.engines.scripted`)."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from m2_tools.engines.base import GenerationResult, RowHandle
from m2_tools.errors import InternalError

if TYPE_CHECKING:
    from m2_tools.engines.scripted import ScriptedEngine, ScriptedReply

__all__ = ["Batch", "Row"]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Row:
    """A scripted row: its handle, its reply and how far it got."""

    handle: RowHandle
    reply: ScriptedReply
    pieces: list[str]
    produced: int = 0


class Batch:
    """Waiting rows and the running batch; ``step`` moves them on by one token.

    ``capacity`` bounds the running rows; ``contain_join_failures`` fails the rows that
    join with a ``raise_in_batch`` reply instead of raising (the per-row path).
    """

    def __init__(self, engine: ScriptedEngine, capacity: int) -> None:
        self.engine = engine
        self.capacity = capacity
        self.waiting: collections.deque[Row] = collections.deque()
        self.running: list[Row] = []
        self.lock = threading.Lock()

    def add(self, rows: Sequence[Row]) -> None:
        with self.lock:
            self.waiting.extend(rows)

    def busy(self) -> bool:
        with self.lock:
            return bool(self.running or self.waiting)

    def step(self, *, contain_join_failures: bool) -> bool:
        engine = self.engine
        self._join(contain_join_failures)
        if self.running:
            engine.generate_started.set()
            if engine.generate_gate is not None:
                self._wait_gate(engine.generate_gate)
            if engine.token_delay_s:
                time.sleep(engine.token_delay_s)
            self.running = [row for row in self.running if engine._advance(row)]
        return self.busy()

    def _join(self, contain_failures: bool) -> None:
        with self.lock:
            room = max(0, self.capacity - len(self.running))
            joining: list[Row] = []
            while self.waiting and len(joining) < room:
                row = self.waiting.popleft()
                if row.handle.claim():
                    joining.append(row)
        if not joining:
            return
        self.engine.calls.append([row.handle.request for row in joining])
        for row in joining:
            if row.reply.raise_in_step is not None:
                self.running.extend(joining)
                raise row.reply.raise_in_step
        for row in joining:
            if row.reply.raise_in_batch is None:
                continue
            if not contain_failures:
                raise row.reply.raise_in_batch
            logger.error("scripted prefill failure: %r", row.reply.raise_in_batch)
            failure = InternalError("the model failed while generating; see the server log")
            for mate in joining:
                mate.handle.finish(GenerationResult(error=failure))
            return
        for row in joining:
            if row.reply.error is not None:
                row.handle.finish(GenerationResult(error=row.reply.error))
            else:
                self.running.append(row)

    def _wait_gate(self, gate: threading.Event) -> None:
        while not gate.wait(0.01):
            if all(row.handle.cancel_requested or row.handle.done() for row in self.running):
                return
