"""Progress reports of a call, and how they travel from worker threads to callers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AsyncProgressCallback",
    "Notify",
    "ProgressCallback",
    "ProgressEvent",
    "ProgressPump",
    "TokenProgress",
    "guarded",
    "ignore",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    """A progress report of one call.

    Attributes:
        phase: ``loading`` (the model), ``queued`` or ``generating``.
        done: Units done in this phase (shards, tokens).
        total: Units in this phase, when known.
        message: A short human-readable line.
    """

    phase: Literal["loading", "queued", "generating"]
    done: float
    total: float | None
    message: str


ProgressCallback = Callable[[ProgressEvent], None]
AsyncProgressCallback = Callable[[ProgressEvent], Awaitable[None]]
#: A thread-safe sink the service calls from any thread.
Notify = Callable[[ProgressEvent], None]


def ignore(_: ProgressEvent) -> None:
    """A sink that drops every report."""
    return None


def guarded(progress: ProgressCallback) -> Notify:
    """Wrap a sync callback so that its failures are logged, never raised into the worker."""

    def notify(event: ProgressEvent) -> None:
        try:
            progress(event)
        except Exception:
            logger.exception("a progress callback failed")

    return notify


class TokenProgress:
    """Adds up the tokens of a call's rows and reports the sum at most every ``interval_s``.

    Args:
        rows: Rows of the call (its samples).
        budget: Tokens the call may generate in all (the report's total).
        notify: Where reports go.
        interval_s: The shortest time between two reports.
    """

    def __init__(self, rows: int, budget: float, notify: Notify, interval_s: float = 0.1) -> None:
        self._counts = [0] * rows
        self._budget = budget
        self._notify = notify
        self._interval_s = interval_s
        self._last_report = 0.0

    def callback(self, row: int) -> Callable[[int], None]:
        """The ``on_token`` callback of row ``row``."""

        def on_token(count: int) -> None:
            self._counts[row] = count
            now = time.perf_counter()
            if now - self._last_report < self._interval_s:
                return
            self._last_report = now
            done = sum(self._counts)
            self._notify(
                ProgressEvent("generating", done, self._budget, f"{done} tokens generated")
            )

        return on_token


class ProgressPump:
    """Carries progress from worker threads to an async callback on the caller's loop.

    Only the latest event is delivered when the callback is slower than the model.
    """

    def __init__(self, progress: AsyncProgressCallback | None) -> None:
        self._progress = progress
        self._latest: ProgressEvent | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> Notify:
        if self._progress is None:
            return ignore
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._pump())
        return self._notify

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notify(self, event: ProgressEvent) -> None:
        assert self._loop is not None
        # Why: a closed loop means nobody listens any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._push, event)

    def _push(self, event: ProgressEvent) -> None:
        self._latest = event
        self._wake.set()

    async def _pump(self) -> None:
        assert self._progress is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            event, self._latest = self._latest, None
            if event is not None:
                try:
                    await self._progress(event)
                except Exception:
                    logger.exception("a progress callback failed")
