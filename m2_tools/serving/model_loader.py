"""Loads the engine once, in a background thread, and tells waiters how it goes."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from m2_tools.engines.base import Engine
from m2_tools.errors import M2Error, ModelLoading, ModelUnavailable
from m2_tools.redaction import public_model_id, without_paths
from m2_tools.serving.progress import Notify, ProgressEvent

__all__ = ["LoadState", "ModelLoader"]

logger = logging.getLogger(__name__)

LoadState = Literal["idle", "loading", "ready", "failed"]


Listener = Callable[[ProgressEvent | None], None]


class ModelLoader:
    """Runs ``engine.load`` once in a daemon thread; ``None`` is broadcast when it settles."""

    def __init__(self, engine_factory: Callable[[], Engine]) -> None:
        self._factory = engine_factory
        self._engine: Engine | None = None
        self._state: LoadState = "idle"
        self._reason: str | None = None
        self._last: ProgressEvent | None = None
        self._settled = threading.Event()
        self._lock = threading.Lock()
        self._listeners: set[Listener] = set()
        self._on_ready: list[Callable[[Engine], None]] = []
        self.load_seconds: float | None = None

    @property
    def state(self) -> LoadState:
        """idle, loading, ready or failed."""
        return self._state

    @property
    def reason(self) -> str | None:
        """Why loading failed, when it did."""
        return self._reason

    @property
    def engine(self) -> Engine | None:
        """The engine once it is ready."""
        return self._engine if self._state == "ready" else None

    @property
    def last_progress(self) -> ProgressEvent | None:
        """The latest loading progress report."""
        return self._last

    def on_ready(self, callback: Callable[[Engine], None]) -> None:
        """Run ``callback(engine)`` in the loading thread just before waiters are released."""
        self._on_ready.append(callback)

    def start(self) -> None:
        """Begin loading in the background; later calls do nothing."""
        with self._lock:
            if self._state != "idle":
                return
            self._state = "loading"
        threading.Thread(target=self._load, name="m2-loader", daemon=True).start()

    def wait(self, timeout: float | None) -> bool:
        """Block until loading settles or ``timeout`` passes; True when it settled."""
        return self._settled.wait(timeout)

    def wait_ready(self, timeout: float, notify: Notify, model: str) -> float:
        """Start loading if needed and wait for it, relaying progress to ``notify``.

        Returns:
            The milliseconds spent waiting (0 when the model was ready).

        Raises:
            ModelUnavailable: Loading failed.
            ModelLoading: The model is still loading after ``timeout`` seconds.
        """
        waited = 0.0
        if self._state != "ready":
            start = time.perf_counter()
            self.start()

            def listen(event: ProgressEvent | None) -> None:
                if event is not None:
                    notify(event)

            unsubscribe = self.subscribe(listen)
            try:
                self.wait(timeout)
            finally:
                unsubscribe()
            waited = (time.perf_counter() - start) * 1000
        self.raise_unless_ready(model)
        return waited

    async def await_ready(self, timeout: float, notify: Notify, model: str) -> float:
        """Async :meth:`wait_ready`: the event loop goes on while the model loads."""
        waited = 0.0
        if self._state != "ready":
            start = time.perf_counter()
            self.start()
            loop = asyncio.get_running_loop()
            settled = asyncio.Event()

            def listen(event: ProgressEvent | None) -> None:
                if event is None:
                    loop.call_soon_threadsafe(settled.set)
                else:
                    notify(event)

            unsubscribe = self.subscribe(listen)
            try:
                await asyncio.wait_for(settled.wait(), timeout)
            except TimeoutError:
                pass
            finally:
                unsubscribe()
            waited = (time.perf_counter() - start) * 1000
        self.raise_unless_ready(model)
        return waited

    def raise_unless_ready(self, model: str) -> None:
        """Raise the contract error for a model that is not ready.

        Raises:
            ModelUnavailable: Loading failed (with the reason).
            ModelLoading: Loading goes on (retryable).
        """
        if self._state == "ready":
            return
        # Why without_paths: messages reach remote callers; the full reason is in the log.
        if self._state == "failed":
            reason = f"the model {public_model_id(model)!r} cannot be loaded: {self._reason}"
            raise ModelUnavailable(without_paths(reason))
        detail = f" ({without_paths(self._last.message)})" if self._last else ""
        raise ModelLoading(f"the model is still loading{detail}; retry in a few seconds")

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every progress report and with ``None`` once settled.

        Returns a function that unsubscribes. A new listener hears the latest progress
        report at once, or ``None`` at once when loading already settled.
        """
        with self._lock:
            self._listeners.add(listener)
            settled = self._settled.is_set()
            last = self._last
        if settled:
            listener(None)
        elif last is not None:
            listener(last)
        return lambda: self._listeners.discard(listener)

    def _broadcast(self, event: ProgressEvent | None) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("a progress listener failed")

    def _report(self, done: float, total: float, message: str) -> None:
        self._last = ProgressEvent("loading", done, total or None, message)
        self._broadcast(self._last)

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            engine = self._factory()
            self._report(0, 0, f"loading {engine.info.id}")
            engine.load(self._report)
            for callback in self._on_ready:
                callback(engine)
        except M2Error as exc:
            self._fail(exc.message)
        except MemoryError:
            self._fail("not enough memory to load the model")
        except Exception as exc:
            logger.exception("model loading failed")
            self._fail(f"loading failed with {type(exc).__name__}: {exc}")
        else:
            self._engine = engine
            self._state = "ready"
            self.load_seconds = time.perf_counter() - started
            logger.info("model ready in %.1f s", self.load_seconds)
        self._settled.set()
        self._broadcast(None)

    def _fail(self, reason: str) -> None:
        logger.error("model unavailable: %s", reason)
        self._reason = reason
        self._state = "failed"
