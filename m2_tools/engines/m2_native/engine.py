"""``M2NativeEngine``: the :class:`~m2_tools.engines.base.Engine` over the native M2 model."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from m2_tools.engines.base import (
    EngineInfo,
    GenerationRequest,
    GenerationResult,
    LoadProgress,
    RowHandle,
    RowMode,
)
from m2_tools.engines.m2_native.batcher import IterationBatcher
from m2_tools.engines.m2_native.checkpoint import resolve_checkpoint
from m2_tools.engines.m2_native.compiled import CompiledDecoder
from m2_tools.engines.m2_native.config import M2Config, load_config
from m2_tools.engines.m2_native.loading import (
    load_model,
    resolve_attention,
    resolve_device,
    resolve_dtype,
)
from m2_tools.engines.m2_native.modeling import M2Model
from m2_tools.engines.m2_native.processor import M2Processor, PreparedPrompt
from m2_tools.engines.m2_native.rows import prompt_groups
from m2_tools.errors import InvalidArgument, ModelUnavailable

if TYPE_CHECKING:
    from m2_tools.settings import Settings

__all__ = ["M2NativeEngine"]

logger = logging.getLogger(__name__)


class M2NativeEngine:
    """The native M2-Reasoning engine: load once, then decode rows in one running batch.

    Both engine paths: :meth:`submit` + :meth:`step` (iteration-level: rows join and
    leave the batch at every step) and :meth:`generate` (a batch, over the same loop).

    Args:
        settings: Model reference, device, dtype, batch size, pixel budgets,
            quantization, attention implementation and prompt style.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._info = EngineInfo(id=settings.model, backend="m2-native", device=settings.device)
        self._model: M2Model | None = None
        self._processor: M2Processor | None = None
        self._config: M2Config | None = None
        self._batcher: IterationBatcher | None = None
        self._fast: CompiledDecoder | None = None

    @property
    def info(self) -> EngineInfo:
        """Identity of the model; the backend names device and dtype once loaded."""
        return self._info

    @property
    def max_batch_size(self) -> int:
        """The most rows decoded together (``settings.max_batch_size``)."""
        return self._settings.max_batch_size

    @property
    def processor(self) -> M2Processor:
        """The prompt and image processor (after :meth:`load`)."""
        if self._processor is None:
            raise ModelUnavailable("the model is not loaded")
        return self._processor

    @property
    def model(self) -> M2Model:
        """The loaded network (after :meth:`load`)."""
        if self._model is None:
            raise ModelUnavailable("the model is not loaded")
        return self._model

    def load(self, progress: LoadProgress | None = None) -> None:
        """Resolve, check and load the checkpoint.

        Raises:
            ModelUnavailable: The checkpoint cannot be found, is broken, or does
                not fit the device.
        """
        s = self._settings
        started = time.perf_counter()
        if progress is not None:
            progress(0, 0, f"resolving {s.model}")
        resolved = resolve_checkpoint(s.model)
        config = load_config(resolved.path)
        device = resolve_device(s.device)
        dtype = resolve_dtype(s.dtype, device)
        attention = resolve_attention(s.attn_implementation, device, dtype)
        processor = M2Processor(
            resolved.path,
            config,
            prompt_style=s.prompt_style,
            max_pixels=s.max_pixels,
            max_total_pixels=s.max_total_pixels,
        )

        def on_shard(done: int, total: int, message: str) -> None:
            if progress is not None:
                progress(done, total, message)

        try:
            model = load_model(
                Path(resolved.path),
                config,
                device=device,
                dtype=dtype,
                attn_implementation=attention,
                quantization=s.quantization,
                progress=on_shard,
            )
        except torch.OutOfMemoryError:
            raise ModelUnavailable(f"out of memory while loading {s.model} on {device}") from None
        self._model, self._processor, self._config = model, processor, config
        self._fast = CompiledDecoder(model) if s.compile else None
        self._batcher = self._new_batcher(self._fast)
        dtype_name = str(dtype).removeprefix("torch.")
        quant = "" if s.quantization == "none" else f"/{s.quantization}"
        self._info = EngineInfo(
            id=s.model,
            backend=f"m2-native/{device.type}/{dtype_name}{quant}",
            revision=resolved.revision,
            device=str(device),
        )
        logger.info(
            "loaded %s from %s on %s (%s, %s attention) in %.1f s",
            s.model, resolved.path, device, dtype_name, attention, time.perf_counter() - started,
        )  # fmt: skip

    @property
    def row_mode(self) -> RowMode:
        """``stepped``: rows join and leave the running batch in :meth:`step`."""
        return "stepped"

    def submit(self, requests: Sequence[GenerationRequest]) -> list[RowHandle]:
        """Prepare one call's rows in this thread and queue them for the running batch.

        Rows with the same prompt (the samples of one call) are prepared once and
        prefilled once. A row that cannot be prepared is finished at once with its error.
        """
        return self._submit_to(self._batcher, requests)

    def step(self) -> bool:
        """One decode step of the running batch, with newcomers joining (worker thread only)."""
        if self._batcher is None:
            return False
        return self._batcher.step()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Answer each request; a bad row carries its own error and the others still run.

        The rows run in a batch of their own, driven from the calling thread, apart from
        the rows of :meth:`submit` (and without the ``M2_COMPILE`` fast path, which
        serves the per-row path).
        """
        batcher = self._new_batcher(None) if self._model is not None else None
        handles = self._submit_to(batcher, requests)
        while batcher is not None and batcher.step():
            pass
        return [handle.result(0) for handle in handles]

    def _new_batcher(self, fast: CompiledDecoder | None) -> IterationBatcher:
        assert self._model is not None and self._processor is not None
        return IterationBatcher(
            self._model,
            stop_ids=self._processor.stop_ids,
            pad_id=self._processor.pad_id,
            max_rows=self._settings.max_batch_size,
            prefill_tokens=self._settings.prefill_chunk_tokens,
            fast=fast,
        )

    def _submit_to(
        self, batcher: IterationBatcher | None, requests: Sequence[GenerationRequest]
    ) -> list[RowHandle]:
        handles = [RowHandle(request) for request in requests]
        if batcher is None or self._processor is None or self._config is None:
            for handle in handles:
                handle.finish(GenerationResult(error=ModelUnavailable("the model is not loaded")))
            return handles
        context = self._config.text.max_position_embeddings
        batcher.add(prompt_groups(handles, self._prepare, self._processor, context))
        return handles

    def close(self) -> None:
        """Drop the model and return its memory."""
        self._model = None
        self._processor = None
        self._batcher = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _prepare(self, request: GenerationRequest) -> PreparedPrompt:
        prompt = self.processor.prepare(
            request.system_prompt, request.user_text, request.images, request.max_pixels
        )
        assert self._config is not None
        context = self._config.text.max_position_embeddings
        if len(prompt.input_ids) >= context:
            raise InvalidArgument(
                _beyond_context(len(prompt.input_ids), prompt.image_tokens, context)
            )
        return prompt


def _beyond_context(tokens: int, image_tokens: int, context: int) -> str:
    """The context-length error, naming the field whose share of the prompt is larger."""
    text_tokens = tokens - image_tokens
    change = (
        "pass fewer or smaller `images`"
        if image_tokens > text_tokens
        else "shorten the `question` or the `choices`"
    )
    return (
        f"the prompt takes {tokens} tokens ({image_tokens} for images, {text_tokens} for the "
        f"text), beyond the model's context of {context}; {change}"
    )
