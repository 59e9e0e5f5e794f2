"""The compiled fast path (``M2_COMPILE``): a lone row on ``StaticCache`` + ``torch.compile``.

A ``StaticCache`` keeps one write position for all its rows, so it cannot take rows
that join at different steps; it suits the case that matters for latency, one row
decoding alone. When the running batch is down to one row and nothing waits, the
row's KV cache is copied into a ``StaticCache`` and each decode step runs a
``torch.compile(fullgraph=True)`` graph of the decoder (``mode="reduce-overhead"``,
CUDA graphs, on CUDA). When another row arrives, the filled part is copied back into
a ``DynamicCache`` and the batch goes on as usual, so the fast path never delays a
newcomer by more than one step.

Cache lengths are rounded up to a power of two (at least 256), and one cache is kept
per length, so a server compiles a few graphs and then reuses them. The first lone row
of each length pays for compiling (about a minute for the tiny test model on a shared
two-core CPU); if compiling fails, the same static-cache step runs uncompiled.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers.cache_utils import DynamicCache, StaticCache

from m2_tools.engines.m2_native.kv_cache import BatchCache
from m2_tools.engines.m2_native.modeling import M2Model

__all__ = ["CompiledDecoder"]

logger = logging.getLogger(__name__)

_MIN_BUCKET = 256


class CompiledDecoder:
    """Decodes one row at a time on a ``StaticCache`` with a compiled decoder step.

    Args:
        model: The loaded model.
        compile_step: Compile the decoder step; False runs the same static-cache step
            eagerly (a cheap check of the cache handover).
    """

    def __init__(self, model: M2Model, *, compile_step: bool = True) -> None:
        self.model = model
        self.device = model.language_model.lm_head.weight.device
        mode = "reduce-overhead" if self.device.type == "cuda" else None
        self._step = (
            torch.compile(self._forward, fullgraph=True, dynamic=False, mode=mode)
            if compile_step
            else self._forward
        )
        self._caches: dict[int, StaticCache] = {}
        self._cache: StaticCache | None = None
        self.length = 0
        #: Tokens decoded on this path so far.
        self.steps = 0

    @property
    def active(self) -> bool:
        """Whether a row's cache lives in the static cache now."""
        return self._cache is not None

    def enter(self, cache: BatchCache, room: int) -> None:
        """Copy a lone row's cache (no padding) into a static cache with ``room`` more slots."""
        if cache.rows != 1 or not bool(cache.mask.all()):
            raise ValueError("the compiled path takes one row without padding")
        self.length = cache.length
        size = max(_MIN_BUCKET, 1 << (self.length + room - 1).bit_length())
        static = self._caches.get(size)
        if static is None:
            text_config = self.model.language_model.model.config
            static = StaticCache(config=text_config, max_cache_len=size)
            self._caches[size] = static
        else:
            static.reset()
        layers = [layer for layer in cache.cache.layers if getattr(layer, "is_initialized", False)]
        for index, layer in enumerate(layers):
            keys, values = _kv(layer)
            static.update(keys, values, index)
        self._cache = static

    @torch.inference_mode()
    def step(self, token: int, position: int) -> torch.Tensor:
        """Feed ``token`` at rotary ``position``; return the next logits ``[1, V]``."""
        assert self._cache is not None
        ids = torch.tensor([[token]], device=self.device)
        positions = torch.full((3, 1, 1), position, dtype=torch.long, device=self.device)
        try:
            logits = self._step(ids, positions)
        except Exception:
            if self._step == self._forward:
                raise
            # Why: compiling fails before the graph runs (no C compiler, an unsupported
            # op); the same static-cache step still works eagerly.
            logger.warning("torch.compile failed; decoding without it", exc_info=True)
            self._step = self._forward
            logits = self._step(ids, positions)
        self.length += 1
        self.steps += 1
        # Why clone: with CUDA graphs the output buffer is overwritten by the next replay.
        return logits.clone()

    def leave(self) -> BatchCache:
        """Copy the filled part back into a ``DynamicCache`` and leave the fast path."""
        assert self._cache is not None
        dynamic = DynamicCache()
        for index, layer in enumerate(self._cache.layers):
            keys, values = _kv(layer)
            n = self.length
            dynamic.update(keys[:, :, :n].clone(), values[:, :, :n].clone(), index)
        mask = torch.ones((1, self.length), dtype=torch.long, device=self.device)
        self._cache = None
        return BatchCache(dynamic, mask)

    def release(self) -> None:
        """Leave the fast path without copying (the row ended)."""
        self._cache = None

    def _forward(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        # No attention mask: the lone row has no padding, and the static cache's own
        # length decides what is attended to.
        logits: torch.Tensor = self.model(ids, positions, None, self._cache)[:, -1]
        return logits


def _kv(layer: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return layer.keys, layer.values
