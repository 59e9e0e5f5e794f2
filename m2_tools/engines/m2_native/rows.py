"""From submitted rows to prompt groups, in the submitting thread, and back to results.

Rows of one call that share their prompt (its samples: the same texts, the same image
objects, the same pixel cap) become one :class:`~.batcher.PromptGroup`: the prompt is
tokenised and its images patched once, here, off the worker thread, and it will be
prefilled once. Each row's :class:`~.generation.DecodeRow` reports to its
:class:`~m2_tools.engines.base.RowHandle` (progress, cancel, the final result).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence

import torch

from m2_tools.engines.base import GenerationRequest, GenerationResult, RowHandle
from m2_tools.engines.m2_native.batcher import PromptGroup
from m2_tools.engines.m2_native.generation import DecodeOptions, DecodeRow
from m2_tools.engines.m2_native.processor import M2Processor, PreparedPrompt
from m2_tools.errors import InternalError, InvalidArgument, M2Error

__all__ = ["prompt_groups"]

logger = logging.getLogger(__name__)

#: Tokenises a request and patches its images (raises ``M2Error`` for a bad request).
Prepare = Callable[[GenerationRequest], PreparedPrompt]


def prompt_groups(
    handles: Sequence[RowHandle], prepare: Prepare, processor: M2Processor, context: int
) -> list[PromptGroup]:
    """Prepare one call's rows: one group per distinct prompt; rows that cannot run end here.

    Args:
        handles: The call's rows.
        prepare: Builds a request's model inputs.
        processor: Decodes the generated tokens into the result text.
        context: The model's context length (prompt plus generated tokens).
    """
    by_prompt: dict[tuple[object, ...], list[RowHandle]] = {}
    for handle in handles:
        by_prompt.setdefault(_prompt_key(handle.request), []).append(handle)
    groups = []
    for shared in by_prompt.values():
        group = _group(shared, prepare, processor, context)
        if group is not None:
            groups.append(group)
    return groups


def _group(
    handles: list[RowHandle], prepare: Prepare, processor: M2Processor, context: int
) -> PromptGroup | None:
    started = time.perf_counter()
    try:
        prompt = prepare(handles[0].request)
    except Exception as exc:
        if isinstance(exc, M2Error):
            error: M2Error = exc
        else:
            logger.exception("preparing a prompt failed")
            error = InternalError("preparing the prompt failed")
        for handle in handles:
            handle.finish(GenerationResult(error=error, preprocess_ms=_ms_since(started)))
        return None
    prep_ms = _ms_since(started)
    room = context - len(prompt.input_ids)
    rows = []
    for handle in handles:
        try:
            _check_sampling(handle.request)
        except InvalidArgument as exc:
            handle.finish(GenerationResult(error=exc, preprocess_ms=prep_ms))
            continue
        settle = functools.partial(_settle, handle, prompt, processor, prep_ms)
        rows.append(DecodeRow(_decode_options(handle, room), on_finish=settle, claim=handle.claim))
    return PromptGroup(prompt, rows) if rows else None


def _settle(
    handle: RowHandle,
    prompt: PreparedPrompt,
    processor: M2Processor,
    prep_ms: float,
    row: DecodeRow,
) -> None:
    output = row.output
    started = handle.started_at or time.perf_counter()
    result = GenerationResult(preprocess_ms=prep_ms, generate_ms=_ms_since(started))
    if output.failure is not None:
        oom = isinstance(output.failure, torch.OutOfMemoryError)
        reason = "out of memory" if oom else "failed"
        result.error = InternalError(f"generation {reason}; see the server log")
        handle.finish(result)
        return
    ids = output.token_ids
    if output.finish_reason == "stop" and ids:
        ids = ids[:-1]
    result.text = processor.decode(ids)
    result.finish_reason = output.finish_reason
    result.prompt_tokens = len(prompt.input_ids)
    result.completion_tokens = len(output.token_ids)
    result.image_tokens = prompt.image_tokens
    result.image_sizes = prompt.image_sizes
    handle.finish(result)


def _prompt_key(request: GenerationRequest) -> tuple[object, ...]:
    """Rows with equal keys share one prepared prompt and one prefill (images by identity)."""
    images = tuple(id(image) for image in request.images)
    return (request.system_prompt, request.user_text, images, request.max_pixels)


def _check_sampling(request: GenerationRequest) -> None:
    if request.max_new_tokens < 1:
        raise InvalidArgument("max_new_tokens must be at least 1")
    if request.do_sample and request.temperature <= 0:
        raise InvalidArgument("temperature must be positive when sampling")
    if not 0 < request.top_p <= 1:
        raise InvalidArgument("top_p must be in (0, 1]")


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _decode_options(handle: RowHandle, room: int) -> DecodeOptions:
    request = handle.request
    return DecodeOptions(
        max_new_tokens=min(request.max_new_tokens, room),
        do_sample=request.do_sample,
        temperature=request.temperature,
        top_p=request.top_p,
        seed=request.seed,
        on_token=handle.advance,
        should_stop=lambda: handle.cancel_requested or handle.done(),
    )
