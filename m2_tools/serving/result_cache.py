"""A bounded in-memory cache of deterministic (greedy) results."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence

from m2_tools.schemas import M2Result, Timings

__all__ = ["ResultCache", "cache_key"]


def cache_key(
    *,
    tool: str,
    question: str,
    choices: Sequence[str] | None,
    max_new_tokens: int,
    image_digests: Sequence[str],
    context: Sequence[object],
) -> str:
    """Hash everything that decides a greedy answer into a key.

    Args:
        tool: The tool name.
        question: The question text.
        choices: The options, in order.
        max_new_tokens: The generation limit.
        image_digests: Content hashes of the images, in order.
        context: Anything else that changes the output (model id, pixel limits, prompt style).
    """
    material = json.dumps(
        [tool, question, list(choices or []), max_new_tokens, list(image_digests), list(context)],
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()


class ResultCache:
    """Least-recently-used results, at most ``size`` of them; ``size`` 0 disables it."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, M2Result] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> M2Result | None:
        """Return the cached result for ``key`` and mark it recently used."""
        with self._lock:
            result = self._items.get(key)
            if result is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return result

    def hit(
        self, key: str, *, preprocess_ms: float, total_ms: float, include_raw: bool
    ) -> M2Result | None:
        """The cached result for ``key`` as this call's answer: its own timings, raw text or not."""
        cached = self.get(key)
        if cached is None:
            return None
        timings = Timings(
            queue=0, preprocess=preprocess_ms, generate=0, total=total_ms, cache_hit=True
        )
        update: dict[str, object] = {"timings_ms": timings}
        if not include_raw:
            update["raw_output"] = None
        return cached.model_copy(update=update)

    def put(self, key: str, result: M2Result) -> None:
        """Store ``result``, evicting the least recently used entries beyond the bound."""
        if self._size <= 0:
            return
        with self._lock:
            self._items[key] = result
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
