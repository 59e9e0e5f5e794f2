r"""The bounded request queue in front of the one engine, and the worker that feeds it.

A call first :meth:`Scheduler.reserve`\ s a slot — before its images are decoded, so a
full queue refuses with :class:`~m2_tools.errors.Busy` at once and bounds the work in
progress — then submits a *job* (one row per sample) through that slot and waits on
its future. Two policies feed the engine (``Settings.scheduler``):

- ``iteration`` (default, for engines with the per-row path): each row goes to the
  engine as soon as it is submitted, and no call waits for another. A stepped engine
  (the native one) joins it to the running batch at the next decode step; a
  self-batching engine gets it at once. See :mod:`.row_worker`.
- ``static`` (and any engine with only the batch path): rows wait in a queue and
  the worker hands the engine whole batches, each running to its longest row. See
  :mod:`.static_worker`.

Either way, while reserved calls are on their way to an idle engine the worker waits
for them, at most ``batch_wait_s``, so that they start together; a lone call never
waits. A row that fails or is cancelled does not fail its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Literal, Protocol

from m2_tools.engines.base import (
    Engine,
    GenerationRequest,
    GenerationResult,
    RowEngine,
    RowHandle,
)
from m2_tools.errors import Busy, Cancelled, InternalError

__all__ = ["Job", "Policy", "Scheduler", "Slot"]

logger = logging.getLogger(__name__)

#: How rows reach the engine; see the module docstring.
Policy = Literal["iteration", "static"]


@dataclass(eq=False)
class Job:
    """One submitted call: its rows, their results, and a future for all of them."""

    requests: tuple[GenerationRequest, ...]
    cancel: threading.Event
    submitted_at: float = field(default_factory=time.perf_counter)
    started_at: float | None = None
    future: Future[list[GenerationResult]] = field(default_factory=Future)
    handles: list[RowHandle] = field(default_factory=list)
    _results: list[GenerationResult | None] = field(default_factory=list)
    _remaining: int = 0
    _on_cancel: Callable[[Job], None] | None = None

    def __post_init__(self) -> None:
        self._results = [None] * len(self.requests)
        self._remaining = len(self.requests)

    def request_cancel(self) -> None:
        """Ask the worker and the engine to stop this job's rows; waiting rows leave at once."""
        self.cancel.set()
        if self._on_cancel is not None:
            self._on_cancel(self)

    def wait(self, timeout: float) -> list[GenerationResult]:
        """The rows' results, waiting at most ``timeout`` seconds.

        Raises:
            TimeoutError: Time ran out; the job was cancelled.
        """
        try:
            return self.future.result(timeout)
        except TimeoutError:
            self.request_cancel()
            raise

    async def wait_async(self, timeout: float) -> list[GenerationResult]:
        """Async :meth:`wait`; cancelling the awaiting task cancels the job too."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self.future), timeout)
        except (TimeoutError, asyncio.CancelledError):
            self.request_cancel()
            raise

    @property
    def queue_seconds(self) -> float:
        """Time from submission until the first row started in the engine."""
        starts = [h.started_at for h in self.handles if h.started_at is not None]
        if starts:
            return min(starts) - self.submitted_at
        end = self.started_at if self.started_at is not None else time.perf_counter()
        return end - self.submitted_at

    def _settle(self, index: int, result: GenerationResult) -> bool:
        """Record one row's result; return True when this completed the job."""
        if self._results[index] is not None:
            return False
        self._results[index] = result
        self._remaining -= 1
        if self._remaining:
            return False
        if not self.future.done():
            self.future.set_result([r for r in self._results if r is not None])
        return True


class Worker(Protocol):
    """What the scheduler needs from a policy's worker (``row_worker``, ``static_worker``)."""

    def submit(self, job: Job) -> None:
        """Hand a job's rows on (called from the submitting thread)."""
        ...

    def cancel(self, job: Job) -> None:
        """Stop a job's rows; rows that have not started are settled at once."""
        ...

    def close(self, timeout: float) -> None:
        """Stop; every unfinished row ends as cancelled."""
        ...


class Scheduler:
    """Slots for calls in flight, and the worker of the chosen policy.

    Args:
        capacity: The most calls holding a slot (reserved, waiting or running).
        max_batch_size: The most rows the static worker hands the engine at once.
        batch_wait_s: The longest an idle engine waits for calls already on their way.
        policy: ``iteration`` or ``static`` (see the module docstring).
    """

    def __init__(
        self,
        *,
        capacity: int,
        max_batch_size: int,
        batch_wait_s: float,
        policy: Policy = "iteration",
    ) -> None:
        self._capacity = capacity
        self._max_batch = max(1, max_batch_size)
        self._batch_wait_s = batch_wait_s
        self._policy = policy
        self._cond = threading.Condition()
        self._jobs_in_flight = 0
        self._reserved = 0
        self._preparing = 0
        self._closed = False
        self._worker: Worker | None = None

    @property
    def depth(self) -> int:
        """Calls holding a slot: reserved, waiting or running."""
        return self._jobs_in_flight + self._reserved

    @property
    def capacity(self) -> int:
        """The most jobs that may wait or run at once."""
        return self._capacity

    @property
    def policy(self) -> str:
        """The policy in force once started: ``iteration`` or ``static``."""
        return self._policy

    def start(self, engine: Engine) -> None:
        """Hand the engine to the worker of the policy and start it (idempotent)."""
        from m2_tools.serving.row_worker import RowWorker
        from m2_tools.serving.static_worker import StaticWorker

        with self._cond:
            if self._worker is not None:
                return
            if self._policy == "iteration" and isinstance(engine, RowEngine):
                self._worker = RowWorker(engine, self, self._batch_wait_s)
            else:
                self._policy = "static"
                batch = max(1, min(self._max_batch, engine.max_batch_size))
                self._worker = StaticWorker(engine, self, batch, self._batch_wait_s)

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

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker: waiting rows end as cancelled, running ones get ``timeout`` s."""
        with self._cond:
            self._closed = True
            worker = self._worker
            self._cond.notify_all()
        if worker is not None:
            worker.close(timeout)

    # ---- used by Slot and the workers (the condition guards the counters) ----------------

    @property
    def condition(self) -> threading.Condition:
        """Guards the counters; workers wait on it for new work."""
        return self._cond

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def on_the_way(self) -> int:
        """Calls holding a slot whose rows have not reached the worker yet (hold the lock)."""
        return self._reserved + self._preparing

    def settle(self, job: Job, index: int, result: GenerationResult) -> None:
        """Record one row's result; the job's slot is freed when its last row settles."""
        # Why: the worker and a cancelling caller may settle rows of the same job at once.
        with self._cond:
            if job._settle(index, result):
                self._jobs_in_flight -= 1
                self._cond.notify_all()

    def _submit(self, requests: Sequence[GenerationRequest], cancel: threading.Event) -> Job:
        with self._cond:
            self._reserved -= 1
            if self._closed or self._worker is None:
                self._cond.notify_all()
                # Why: the call held a slot when the service began to shut down.
                raise Cancelled("the service shut down before the call started")
            worker = self._worker
            job = Job(tuple(requests), cancel, _on_cancel=worker.cancel)
            self._jobs_in_flight += 1
            self._preparing += 1
        try:
            worker.submit(job)
        finally:
            with self._cond:
                self._preparing -= 1
                self._cond.notify_all()
        return job

    def _release(self) -> None:
        with self._cond:
            self._reserved -= 1
            self._cond.notify_all()


class Slot:
    """A call's place in the queue, taken before its images are decoded.

    Use it as a context manager: leaving it without :meth:`submit` (a cache hit, an
    error) gives the place back.
    """

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._open = True

    def submit(self, requests: Sequence[GenerationRequest], cancel: threading.Event) -> Job:
        """Hand the call's rows on; the slot is then the job's until it ends.

        On the per-row path the engine prepares the rows (tokeniser, image patches) in
        this thread, so async callers run it in a worker thread.
        """
        if not self._open:
            raise RuntimeError("this slot was already used")
        self._open = False
        return self._scheduler._submit(requests, cancel)

    async def asubmit(self, requests: Sequence[GenerationRequest], cancel: threading.Event) -> Job:
        """:meth:`submit` in a worker thread, so that row preparation never blocks the loop.

        When the awaiting task is cancelled meanwhile, the job is cancelled as it lands.
        """
        submitting = asyncio.ensure_future(asyncio.to_thread(self.submit, requests, cancel))
        try:
            return await asyncio.shield(submitting)
        except asyncio.CancelledError:
            cancel.set()
            submitting.add_done_callback(_cancel_landed_job)
            raise

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._open:
            self._open = False
            self._scheduler._release()


def _cancel_landed_job(submitted: asyncio.Future[Job]) -> None:
    if not submitted.cancelled() and submitted.exception() is None:
        submitted.result().request_cancel()
