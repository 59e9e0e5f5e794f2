"""The static policy: whole batches through ``engine.generate``, each to its longest row.

Rows wait in a queue; the worker takes up to ``max_batch_size`` from its head and,
while other reserved calls are on their way, waits for them at most ``batch_wait_s``.
A call that arrives while a batch runs waits for all of it: this is the head-of-line
blocking the iteration policy removes, kept for engines with only the batch path and
for comparison.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from m2_tools.engines.base import Engine, GenerationResult
from m2_tools.errors import InternalError

if TYPE_CHECKING:
    from m2_tools.serving.scheduler import Job, Scheduler

__all__ = ["StaticWorker"]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Row:
    job: Job
    index: int


class StaticWorker:
    """One thread that owns the engine and runs the queued rows batch by batch.

    Args:
        engine: The engine (only its batch path is used).
        scheduler: Holds the lock, the counters and the settling of rows.
        max_batch: The most rows per ``generate`` call.
        batch_wait_s: The longest a batch waits for calls already on their way.
    """

    def __init__(
        self, engine: Engine, scheduler: Scheduler, max_batch: int, batch_wait_s: float
    ) -> None:
        self._engine = engine
        self._scheduler = scheduler
        self._cond = scheduler.condition
        self._max_batch = max_batch
        self._batch_wait_s = batch_wait_s
        self._rows: collections.deque[_Row] = collections.deque()
        self._thread = threading.Thread(target=self._work, name="m2-worker", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue the job's rows."""
        with self._cond:
            self._rows.extend(_Row(job, i) for i in range(len(job.requests)))
            self._cond.notify_all()

    def cancel(self, job: Job) -> None:
        """Settle a cancelled job's queued rows now, so its slot does not wait for the worker."""
        with self._cond:
            dropped = [row for row in self._rows if row.job is job]
            if not dropped:
                return
            self._rows = collections.deque(row for row in self._rows if row.job is not job)
        for row in dropped:
            self._scheduler.settle(job, row.index, GenerationResult(finish_reason="cancelled"))

    def close(self, timeout: float) -> None:
        """Cancel the queued rows and wait for the running batch to end."""
        with self._cond:
            pending = list(self._rows)
            self._rows.clear()
            self._cond.notify_all()
        for row in pending:
            row.job.cancel.set()
            self._scheduler.settle(row.job, row.index, GenerationResult(finish_reason="cancelled"))
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Row] | None:
        scheduler = self._scheduler
        with self._cond:
            while not self._rows and not scheduler.closed:
                self._cond.wait()
            if scheduler.closed:
                return None
            batch = self._take(self._max_batch)
            deadline = time.perf_counter() + self._batch_wait_s
            # Why: only calls already holding a slot can join; with none on its way, run now.
            while len(batch) < self._max_batch and scheduler.on_the_way() > 0:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
                batch.extend(self._take(self._max_batch - len(batch)))
        return batch

    def _take(self, limit: int) -> list[_Row]:
        """Pop up to ``limit`` live rows; rows of cancelled jobs settle as cancelled."""
        taken: list[_Row] = []
        while self._rows and len(taken) < limit:
            row = self._rows.popleft()
            if row.job.cancel.is_set():
                # The condition's lock is re-entrant, so settling here is safe.
                self._scheduler.settle(
                    row.job, row.index, GenerationResult(finish_reason="cancelled")
                )
            else:
                taken.append(row)
        return taken

    def _run(self, batch: list[_Row]) -> None:
        if not batch:
            return
        now = time.perf_counter()
        for row in batch:
            if row.job.started_at is None:
                row.job.started_at = now
        try:
            results = self._engine.generate([r.job.requests[r.index] for r in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"engine returned {len(results)} results for {len(batch)} rows")
        except Exception:
            logger.exception("engine failed on a batch of %d rows", len(batch))
            failure = InternalError("the model failed while generating; see the server log")
            results = [GenerationResult(error=failure) for _ in batch]
        for row, result in zip(batch, results, strict=True):
            self._scheduler.settle(row.job, row.index, result)
