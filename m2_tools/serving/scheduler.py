r"""One worker thread owns the engine; concurrent calls share its batched forward passes.

A call first :meth:`Scheduler.reserve`\ s a slot — before its images are decoded,
so a full queue refuses with :class:`~m2_tools.errors.Busy` at once and bounds the
work in progress — then submits a *job* (one row per sample) through that slot and
waits on its future. The worker gathers rows from the head of the queue into a
batch of up to ``max_batch_size`` rows; while other reserved calls are still on
their way it waits for them, at most ``batch_wait_s``, so a lone call never waits.
It runs each batch in one ``engine.generate`` call. A row that fails or is
cancelled does not fail its batch-mates.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from m2_tools.engines.base import Engine, GenerationRequest, GenerationResult
from m2_tools.errors import Busy, InternalError

__all__ = ["Job", "Scheduler", "Slot"]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    """One submitted call: its rows, their results, and a future for all of them."""

    requests: tuple[GenerationRequest, ...]
    cancel: threading.Event
    submitted_at: float = field(default_factory=time.perf_counter)
    started_at: float | None = None
    future: Future[list[GenerationResult]] = field(default_factory=Future)
    _results: list[GenerationResult | None] = field(default_factory=list)
    _remaining: int = 0
    _on_cancel: Callable[[Job], None] | None = None

    def __post_init__(self) -> None:
        self._results = [None] * len(self.requests)
        self._remaining = len(self.requests)

    def request_cancel(self) -> None:
        """Ask the worker and the engine to stop this job's rows; queued rows leave at once."""
        self.cancel.set()
        if self._on_cancel is not None:
            self._on_cancel(self)

    @property
    def queue_seconds(self) -> float:
        """Time from submission until the first row reached the engine."""
        end = self.started_at if self.started_at is not None else time.perf_counter()
        return end - self.submitted_at

    def _settle(self, index: int, result: GenerationResult) -> bool:
        """Record one row's result; return True when this completed the job."""
        self._results[index] = result
        self._remaining -= 1
        if self._remaining:
            return False
        if not self.future.done():
            self.future.set_result([r for r in self._results if r is not None])
        return True


@dataclass(eq=False)
class _Row:
    job: Job
    index: int


class Scheduler:
    """A bounded request queue drained by one worker thread that owns the engine."""

    def __init__(self, *, capacity: int, max_batch_size: int, batch_wait_s: float) -> None:
        self._engine: Engine | None = None
        self._capacity = capacity
        self._max_batch = max(1, max_batch_size)
        self._batch_wait_s = batch_wait_s
        self._rows: collections.deque[_Row] = collections.deque()
        self._jobs_in_flight = 0
        self._reserved = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def depth(self) -> int:
        """Calls holding a slot: reserved, waiting or running."""
        return self._jobs_in_flight + self._reserved

    @property
    def capacity(self) -> int:
        """The most jobs that may wait or run at once."""
        return self._capacity

    def start(self, engine: Engine) -> None:
        """Hand the worker its engine and start it (idempotent)."""
        with self._cond:
            if self._thread is None:
                self._engine = engine
                self._max_batch = max(1, min(self._max_batch, engine.max_batch_size))
                self._thread = threading.Thread(target=self._work, name="m2-worker", daemon=True)
                self._thread.start()

    def reserve(self) -> Slot:
        """Take a slot for one call; raise :class:`Busy` when every slot is taken."""
        with self._cond:
            if self._closed:
                raise InternalError("the service is shutting down")
            if self._jobs_in_flight + self._reserved >= self._capacity:
                raise Busy(
                    f"the request queue is full ({self._capacity} calls in flight); retry shortly"
                )
            self._reserved += 1
        return Slot(self)

    def _submit(self, requests: Sequence[GenerationRequest], cancel: threading.Event) -> Job:
        job = Job(tuple(requests), cancel, _on_cancel=self._drop_queued)
        with self._cond:
            if self._closed:
                self._reserved -= 1
                raise InternalError("the service is shutting down")
            self._reserved -= 1
            self._jobs_in_flight += 1
            self._rows.extend(_Row(job, i) for i in range(len(job.requests)))
            self._cond.notify_all()
        return job

    def _release(self) -> None:
        with self._cond:
            self._reserved -= 1
            self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker; queued jobs end as cancelled."""
        with self._cond:
            self._closed = True
            pending = list(self._rows)
            self._rows.clear()
            self._cond.notify_all()
        for row in pending:
            row.job.request_cancel()
            self._settle(row, GenerationResult(finish_reason="cancelled"))
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _drop_queued(self, job: Job) -> None:
        """Settle a cancelled job's queued rows now, so its slot does not wait for the worker."""
        with self._cond:
            dropped = [row for row in self._rows if row.job is job]
            if not dropped:
                return
            self._rows = collections.deque(row for row in self._rows if row.job is not job)
            for row in dropped:
                self._settle(row, GenerationResult(finish_reason="cancelled"))

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Row] | None:
        with self._cond:
            while not self._rows and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            batch = self._take(self._max_batch)
            deadline = time.perf_counter() + self._batch_wait_s
            # Why: only calls already holding a slot can join; with none on its way, run now.
            while len(batch) < self._max_batch and self._reserved > 0:
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
                self._settle(row, GenerationResult(finish_reason="cancelled"))
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
        assert self._engine is not None, "the worker runs only after start(engine)"
        try:
            results = self._engine.generate([r.job.requests[r.index] for r in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"engine returned {len(results)} results for {len(batch)} rows")
        except Exception:
            logger.exception("engine failed on a batch of %d rows", len(batch))
            failure = InternalError("the model failed while generating; see the server log")
            results = [GenerationResult(error=failure) for _ in batch]
        for row, result in zip(batch, results, strict=True):
            self._settle(row, result)

    def _settle(self, row: _Row, result: GenerationResult) -> None:
        # Why: the worker and a cancelling caller may settle rows of the same job at once.
        with self._cond:
            if row.job._settle(row.index, result):
                self._jobs_in_flight -= 1


class Slot:
    """A call's place in the queue, taken before its images are decoded.

    Use it as a context manager: leaving it without :meth:`submit` (a cache hit, an
    error) gives the place back.
    """

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._open = True

    def submit(self, requests: Sequence[GenerationRequest], cancel: threading.Event) -> Job:
        """Queue the call's rows in this slot; the slot is then the job's until it ends."""
        if not self._open:
            raise RuntimeError("this slot was already used")
        self._open = False
        return self._scheduler._submit(requests, cancel)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._open:
            self._open = False
            self._scheduler._release()
