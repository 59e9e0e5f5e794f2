"""The iteration policy: every row goes to the engine at once, and no call waits for another.

A job's rows are submitted to the engine in the submitting thread (which also does
their tokenisation and image preprocessing, off the worker) and come back as
:class:`~m2_tools.engines.base.RowHandle` objects; each handle settles its row when it
finishes. A self-batching engine needs nothing more. A stepped engine (the native one)
is driven by one worker thread that calls ``engine.step()`` while it has rows: at
every step finished rows leave and waiting rows join the running batch.

If a step raises (an engine bug; engines fail their own rows for model errors), the
rows running in it fail with ``internal`` and the rest go on.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import TYPE_CHECKING

from m2_tools.engines.base import GenerationResult, RowEngine, RowHandle
from m2_tools.errors import InternalError

if TYPE_CHECKING:
    from m2_tools.serving.scheduler import Job, Scheduler

__all__ = ["RowWorker"]

logger = logging.getLogger(__name__)

_FAILURE = "the model failed while generating; see the server log"
#: Steps in a row that may raise before every unfinished row is failed, waiting ones too.
_MAX_FAILED_STEPS = 3


class RowWorker:
    """Submits rows to a per-row engine and, for a stepped engine, steps it.

    Args:
        engine: An engine with the per-row path.
        scheduler: Holds the lock, the counters and the settling of rows.
        batch_wait_s: The longest an idle engine waits for calls already on their way.
    """

    def __init__(self, engine: RowEngine, scheduler: Scheduler, batch_wait_s: float) -> None:
        self._engine = engine
        self._scheduler = scheduler
        self._cond = scheduler.condition
        self._batch_wait_s = batch_wait_s
        self._jobs: set[Job] = set()
        self._wake = False
        self._thread: threading.Thread | None = None
        if engine.row_mode == "stepped":
            self._thread = threading.Thread(target=self._work, name="m2-worker", daemon=True)
            self._thread.start()

    def submit(self, job: Job) -> None:
        """Submit the job's rows (prepared in this thread) and wake the worker."""
        try:
            handles = self._engine.submit(job.requests)
            if len(handles) != len(job.requests):
                raise RuntimeError(f"engine gave {len(handles)} handles for {len(job.requests)}")
        except Exception:
            logger.exception("engine refused a job of %d rows", len(job.requests))
            handles = [RowHandle(request) for request in job.requests]
            for handle in handles:
                handle.finish(GenerationResult(error=InternalError(_FAILURE)))
        with self._cond:
            self._jobs.add(job)
            job.handles = handles
            self._wake = True
            self._cond.notify_all()
        job.future.add_done_callback(lambda _future: self._forget(job))
        for index, handle in enumerate(handles):
            handle.add_done_callback(functools.partial(self._settle, job, index))
        if job.cancel.is_set():
            self.cancel(job)

    def cancel(self, job: Job) -> None:
        """Cancel the job's rows: waiting ones end at once, running ones at the next step."""
        for handle in list(job.handles):
            handle.cancel()

    def close(self, timeout: float) -> None:
        """Cancel the rows that have not started; running rows get ``timeout`` s to end.

        Rows still unfinished then end as cancelled.
        """
        with self._cond:
            jobs = list(self._jobs)
            self._wake = True
            self._cond.notify_all()
        for job in jobs:
            for handle in job.handles:
                if not handle.started:
                    handle.cancel()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        for job in jobs:
            job.cancel.set()
            for handle in job.handles:
                handle.finish(GenerationResult(finish_reason="cancelled"))

    def _settle(self, job: Job, index: int, handle: RowHandle) -> None:
        self._scheduler.settle(job, index, handle.result())

    def _forget(self, job: Job) -> None:
        with self._cond:
            self._jobs.discard(job)

    def _work(self) -> None:
        idle = True
        failed_steps = 0
        while True:
            with self._cond:
                while not self._wake and not (idle and self._scheduler.closed):
                    self._cond.wait()
                if idle and self._scheduler.closed:
                    return
                self._wake = False
                if idle and not self._scheduler.closed:
                    self._wait_for_calls_on_their_way()
            try:
                busy = self._engine.step()
                failed_steps = 0
            except Exception:
                failed_steps += 1
                logger.exception("engine step failed")
                self._fail_rows(started_only=failed_steps < _MAX_FAILED_STEPS)
                busy = True
            idle = not busy
            if busy:
                with self._cond:
                    self._wake = True

    def _wait_for_calls_on_their_way(self) -> None:
        """Let calls that already hold a slot start with this one (call with the lock held)."""
        deadline = time.perf_counter() + self._batch_wait_s
        while self._scheduler.on_the_way() > 0 and not self._scheduler.closed:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self._cond.wait(left)

    def _fail_rows(self, *, started_only: bool) -> None:
        with self._cond:
            handles = [h for job in self._jobs for h in job.handles]
        for handle in handles:
            if handle.started or not started_only:
                handle.finish(GenerationResult(error=InternalError(_FAILURE)))
