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
)
from m2_tools.engines.m2_native.checkpoint import resolve_checkpoint
from m2_tools.engines.m2_native.config import M2Config, load_config
from m2_tools.engines.m2_native.generation import DecodeOptions, RowOutput, generate_batch
from m2_tools.engines.m2_native.loading import (
    load_model,
    resolve_attention,
    resolve_device,
    resolve_dtype,
)
from m2_tools.engines.m2_native.modeling import M2Model
from m2_tools.engines.m2_native.processor import M2Processor, PreparedPrompt
from m2_tools.errors import InternalError, InvalidArgument, M2Error, ModelUnavailable

if TYPE_CHECKING:
    from m2_tools.settings import Settings

__all__ = ["M2NativeEngine"]

logger = logging.getLogger(__name__)


class M2NativeEngine:
    """The native M2-Reasoning engine: load once, then answer batches of prompts.

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

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Answer each request; a bad row carries its own error and the others still run."""
        results = [GenerationResult() for _ in requests]
        if self._model is None or self._processor is None:
            for result in results:
                result.error = ModelUnavailable("the model is not loaded")
            return results
        prepared: dict[int, PreparedPrompt] = {}
        for i, request in enumerate(requests):
            started = time.perf_counter()
            try:
                prepared[i] = self._prepare(request)
            except M2Error as exc:
                results[i].error = exc
            except Exception:
                logger.exception("preparing request %d failed", i)
                results[i].error = InternalError("preparing the prompt failed")
            results[i].preprocess_ms = (time.perf_counter() - started) * 1000
        rows = list(prepared)
        for start in range(0, len(rows), self.max_batch_size):
            chunk = rows[start : start + self.max_batch_size]
            self._run_chunk(chunk, requests, prepared, results)
        return results

    def close(self) -> None:
        """Drop the model and return its memory."""
        self._model = None
        self._processor = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _prepare(self, request: GenerationRequest) -> PreparedPrompt:
        if request.max_new_tokens < 1:
            raise InvalidArgument("max_new_tokens must be at least 1")
        if request.do_sample and request.temperature <= 0:
            raise InvalidArgument("temperature must be positive when sampling")
        if not 0 < request.top_p <= 1:
            raise InvalidArgument("top_p must be in (0, 1]")
        prompt = self.processor.prepare(
            request.system_prompt, request.user_text, request.images, request.max_pixels
        )
        assert self._config is not None
        context = self._config.text.max_position_embeddings
        if len(prompt.input_ids) >= context:
            raise InvalidArgument(
                f"the prompt takes {len(prompt.input_ids)} tokens, beyond the model's context "
                f"of {context}; use fewer or smaller images or a shorter question"
            )
        return prompt

    def _run_chunk(
        self,
        rows: list[int],
        requests: Sequence[GenerationRequest],
        prepared: dict[int, PreparedPrompt],
        results: list[GenerationResult],
    ) -> None:
        if not rows:
            return
        assert self._model is not None and self._processor is not None and self._config is not None
        context = self._config.text.max_position_embeddings
        options = [_decode_options(requests[i], context - len(prepared[i].input_ids)) for i in rows]
        started = time.perf_counter()
        try:
            outputs = generate_batch(
                self._model,
                [prepared[i] for i in rows],
                options,
                stop_ids=self._processor.stop_ids,
                pad_id=self._processor.pad_id,
            )
        except Exception as exc:
            logger.exception("generation failed for a batch of %d rows", len(rows))
            reason = "out of memory" if isinstance(exc, torch.OutOfMemoryError) else "failed"
            for i in rows:
                results[i].error = InternalError(f"generation {reason}; see the server log")
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        for i, output in zip(rows, outputs, strict=True):
            self._fill(results[i], prepared[i], output, elapsed_ms)

    def _fill(
        self, result: GenerationResult, prompt: PreparedPrompt, output: RowOutput, ms: float
    ) -> None:
        assert self._processor is not None
        ids = output.token_ids
        if output.finish_reason == "stop" and ids:
            ids = ids[:-1]
        result.text = self._processor.decode(ids)
        result.finish_reason = output.finish_reason
        result.prompt_tokens = len(prompt.input_ids)
        result.completion_tokens = len(output.token_ids)
        result.image_tokens = prompt.image_tokens
        result.image_sizes = prompt.image_sizes
        result.generate_ms = ms


def _decode_options(request: GenerationRequest, room: int) -> DecodeOptions:
    return DecodeOptions(
        max_new_tokens=min(request.max_new_tokens, room),
        do_sample=request.do_sample,
        temperature=request.temperature,
        top_p=request.top_p,
        seed=request.seed,
        on_token=request.on_token,
        cancel=request.cancel,
    )
