"""M2Reasoner: the service behind every adapter.

A call goes: validate → image intake → (cache) → wait for the model → queue →
engine → parse → vote → result. Sync and async methods share every step but
the waiting.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from m2_tools.answers.parsing import ParsedAnswer, parse_response
from m2_tools.answers.voting import vote
from m2_tools.catalog import ToolSpec, tool_spec
from m2_tools.engines import create_engine
from m2_tools.engines.base import Engine, EngineInfo, GenerationRequest, GenerationResult
from m2_tools.errors import Cancelled, InvalidArgument, RequestTimeout
from m2_tools.intake.images import ImageIntake, LoadedImage
from m2_tools.intake.video import VideoIntake
from m2_tools.prompts import SYSTEM_PROMPT, build_user_text
from m2_tools.redaction import public_model_id, without_paths
from m2_tools.schemas import (
    ImageInfo,
    M2Result,
    ModelInfo,
    ServiceStatus,
    SpatialReasonInput,
    Timings,
    Usage,
    VisualMathReasonInput,
)
from m2_tools.serving.model_loader import ModelLoader
from m2_tools.serving.progress import (
    AsyncProgressCallback,
    Notify,
    ProgressCallback,
    ProgressPump,
    TokenProgress,
    guarded,
    ignore,
)
from m2_tools.serving.result_cache import ResultCache, cache_key
from m2_tools.serving.scheduler import Job, Scheduler
from m2_tools.settings import Settings

__all__ = ["AsyncProgressCallback", "M2Reasoner", "ProgressCallback"]

logger = logging.getLogger(__name__)

_CONCURRENT_DECODES = 4


@dataclass
class _Call:
    spec: ToolSpec
    args: VisualMathReasonInput | SpatialReasonInput
    deadline: float
    started: float = field(default_factory=time.perf_counter)
    cancel: threading.Event = field(default_factory=threading.Event)
    images: list[LoadedImage] = field(default_factory=list)
    key: str = ""
    intake_ms: float = 0.0
    load_wait_ms: float = 0.0

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.perf_counter())


class M2Reasoner:
    """The reasoning service: one queue, one worker, one engine, any number of callers.

    Construction is instant: the model loads in the background on the first call
    or on :meth:`start_loading`.

    Args:
        settings: The configuration; ``Settings()`` (the environment) when omitted.
        engine: An engine to use instead of the native M2 engine (e.g. the
            scripted engine of :mod:`m2_tools.testing`).
        intake: An image intake to use instead of one built from ``settings``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        engine: Engine | None = None,
        intake: ImageIntake | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings()
        self._intake = intake if intake is not None else ImageIntake.from_settings(self.settings)
        self._video = VideoIntake.from_settings(self.settings, self._intake)
        self._cache = ResultCache(self.settings.cache_size)
        self._scheduler = Scheduler(
            capacity=self.settings.queue_size,
            max_batch_size=self.settings.max_batch_size,
            batch_wait_s=self.settings.batch_wait_ms / 1000,
            policy=self.settings.scheduler,
        )
        # Why: decoding is memory-hungry (a 50 MP image is 150 MB decoded); calls holding a
        # slot may decode only a few at a time.
        self._decode_slots = threading.BoundedSemaphore(_CONCURRENT_DECODES)
        self._info = (
            engine.info if engine is not None else EngineInfo(self.settings.model, "m2-native")
        )
        self._loader = ModelLoader(
            (lambda: engine) if engine is not None else (lambda: create_engine(self.settings))
        )
        self._loader.on_ready(self._start_worker)

    # ---- public API -------------------------------------------------------------------------

    def start_loading(self) -> None:
        """Begin loading the model in the background (idempotent, returns at once)."""
        self._loader.start()

    def wait_until_loaded(self, timeout: float | None = None) -> bool:
        """Block until loading settled (ready or failed); True when it settled in time."""
        self._loader.start()
        return self._loader.wait(timeout)

    def status(self) -> ServiceStatus:
        """The model's state, the queue and the cache, for health checks."""
        progress = self._loader.last_progress
        return ServiceStatus(
            model=public_model_id(self.settings.model),
            state=self._loader.state,
            reason=without_paths(self._loader.reason) if self._loader.reason else None,
            backend=self._info.backend,
            device=self._info.device,
            load_progress=without_paths(progress.message)
            if progress and self._loader.state == "loading"
            else None,
            load_seconds=self._loader.load_seconds,
            queue_depth=self._scheduler.depth,
            queue_capacity=self.settings.queue_size,
            cache_entries=len(self._cache),
            cache_hits=self._cache.hits,
        )

    def run_tool(
        self, name: str, arguments: Mapping[str, Any], *, progress: ProgressCallback | None = None
    ) -> M2Result:
        """Run tool ``name`` with its input fields and wait for the result.

        Raises:
            M2Error: A contract error (its ``code`` says which).
        """
        call = self._prepare(name, arguments)
        notify = guarded(progress) if progress else ignore
        with self._scheduler.reserve() as slot:
            call.images = self._load_images(call)
            cached = self._after_intake(call)
            if cached is not None:
                return cached
            call.load_wait_ms = self._loader.wait_ready(
                self._load_wait(call), notify, self.settings.model
            )
            job = slot.submit(self._rows(call, notify), call.cancel)
        try:
            results = job.wait(call.remaining())
        except TimeoutError:
            raise self._timeout() from None
        return self._finish(call, job, results)

    async def arun_tool(
        self,
        name: str,
        arguments: Mapping[str, Any],
        *,
        progress: AsyncProgressCallback | None = None,
    ) -> M2Result:
        """Async :meth:`run_tool`; cancelling the awaiting task stops the generation."""
        call = self._prepare(name, arguments)
        async with ProgressPump(progress) as notify:
            with self._scheduler.reserve() as slot:
                call.images = await asyncio.to_thread(self._load_images, call)
                cached = self._after_intake(call)
                if cached is not None:
                    return cached
                call.load_wait_ms = await self._loader.await_ready(
                    self._load_wait(call), notify, self.settings.model
                )
                job = await slot.asubmit(self._rows(call, notify), call.cancel)
            try:
                results = await job.wait_async(call.remaining())
            except TimeoutError:
                raise self._timeout() from None
        return self._finish(call, job, results)

    def visual_math_reason(
        self, *, progress: ProgressCallback | None = None, **fields: Any
    ) -> M2Result:
        """Solve a math or logic problem about a figure (``VisualMathReasonInput`` fields)."""
        return self.run_tool("visual_math_reason", fields, progress=progress)

    def spatial_reason(
        self, *, progress: ProgressCallback | None = None, **fields: Any
    ) -> M2Result:
        """Answer a question about a scene's 3-D layout (fields of ``SpatialReasonInput``)."""
        return self.run_tool("spatial_reason", fields, progress=progress)

    async def avisual_math_reason(
        self, *, progress: AsyncProgressCallback | None = None, **fields: Any
    ) -> M2Result:
        """Async :meth:`visual_math_reason`."""
        return await self.arun_tool("visual_math_reason", fields, progress=progress)

    async def aspatial_reason(
        self, *, progress: AsyncProgressCallback | None = None, **fields: Any
    ) -> M2Result:
        """Async :meth:`spatial_reason`."""
        return await self.arun_tool("spatial_reason", fields, progress=progress)

    def close(self) -> None:
        """Stop the worker and release the model."""
        self._scheduler.close()
        engine = self._loader.engine
        if engine is not None:
            engine.close()

    def __enter__(self) -> M2Reasoner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- steps shared by the sync and async paths ------------------------------------------

    def _prepare(self, name: str, arguments: Mapping[str, Any]) -> _Call:
        try:
            spec = tool_spec(name)
        except (KeyError, TypeError):  # TypeError: an unhashable name
            raise InvalidArgument(f"unknown tool {str(name)[:80]!r}") from None
        if not isinstance(arguments, Mapping):
            raise InvalidArgument("arguments must be an object of the tool's input fields")
        try:
            args = spec.input_model.model_validate(dict(arguments))
        except ValidationError as exc:
            raise InvalidArgument.from_validation_error(exc) from None
        return _Call(spec, args, time.perf_counter() + self.settings.request_timeout_s)

    def _after_intake(self, call: _Call) -> M2Result | None:
        """Record intake time and key the call; return a cached result when there is one."""
        call.intake_ms = (time.perf_counter() - call.started) * 1000
        args = call.args
        call.key = cache_key(
            tool=call.spec.name,
            question=args.question,
            choices=args.choices,
            max_new_tokens=args.max_new_tokens,
            image_digests=[image.digest for image in call.images],
            context=[self.settings.model, self.settings.max_pixels, self.settings.prompt_style],
        )
        if args.samples > 1:
            return None
        return self._cache.hit(
            call.key,
            preprocess_ms=call.intake_ms,
            total_ms=(time.perf_counter() - call.started) * 1000,
            include_raw=args.include_raw,
        )

    def _load_wait(self, call: _Call) -> float:
        return min(self.settings.load_wait_s, call.remaining())

    def _load_images(self, call: _Call) -> list[LoadedImage]:
        with self._decode_slots:
            images = self._intake.load_all(call.args.images)
            video = getattr(call.args, "video", None)
            if video is not None:
                # Decoded here, in the intake stage (on its own timed thread), never on the worker.
                max_frames = getattr(call.args, "max_frames", 16)
                images += self._video.load(video, max_frames=max_frames, other_images=len(images))
            return images

    def _rows(self, call: _Call, notify: Notify) -> list[GenerationRequest]:
        """One generation request per sample, reporting progress at most every 0.1 s."""
        args = call.args
        samples = args.samples
        progress = TokenProgress(samples, float(args.max_new_tokens * samples), notify)
        user_text = build_user_text(args.question, args.choices)
        images = tuple(image.image for image in call.images)
        seed_base = int(call.key[:8], 16)
        return [
            GenerationRequest(
                system_prompt=SYSTEM_PROMPT,
                user_text=user_text,
                images=images,
                max_new_tokens=args.max_new_tokens,
                do_sample=samples > 1,
                seed=seed_base + row if samples > 1 else None,
                max_pixels=self.settings.max_pixels,
                on_token=progress.callback(row),
                cancel=call.cancel,
            )
            for row in range(samples)
        ]

    def _finish(self, call: _Call, job: Job, results: Sequence[GenerationResult]) -> M2Result:
        for result in results:
            if result.error is not None:
                raise result.error
        if any(result.finish_reason == "cancelled" for result in results):
            raise Cancelled("the call was cancelled before it finished")
        args = call.args
        parsed = [
            _account_for_cutoff(parse_response(result.text, args.choices), result.finish_reason)
            for result in results
        ]
        chosen, votes, confidence = vote(parsed) if args.samples > 1 else (0, None, None)
        best, answer = results[chosen], parsed[chosen]
        status = answer.status
        info = self._loader.engine.info if self._loader.engine else self._info
        sizes = list(best.image_sizes) + [(0, 0)] * (len(call.images) - len(best.image_sizes))
        full = M2Result(
            tool=call.spec.name,
            answer=answer.answer,
            choice=answer.choice,
            choice_text=answer.choice_text,
            value=answer.value,
            rationale=answer.rationale,
            rationale_truncated=answer.rationale_truncated,
            flags=list(answer.flags),
            status=status,
            confidence=confidence,
            votes=votes,
            finish_reason="length" if best.finish_reason == "length" else "stop",
            model=ModelInfo(
                id=public_model_id(info.id), revision=info.revision, backend=info.backend
            ),
            usage=Usage(
                prompt_tokens=best.prompt_tokens,
                completion_tokens=sum(result.completion_tokens for result in results),
                image_tokens=best.image_tokens,
            ),
            timings_ms=Timings(
                queue=call.load_wait_ms + job.queue_seconds * 1000,
                preprocess=call.intake_ms + max(result.preprocess_ms for result in results),
                generate=max(result.generate_ms for result in results),
                total=(time.perf_counter() - call.started) * 1000,
            ),
            images=[
                ImageInfo(
                    source=image.source,
                    timestamp_s=image.timestamp_s,
                    width=image.width,
                    height=image.height,
                    model_width=width,
                    model_height=height,
                )
                for image, (width, height) in zip(call.images, sizes, strict=True)
            ],
            raw_output=best.text,
        )
        if args.samples == 1:
            self._cache.put(call.key, full)
        logger.info(
            "%s: status=%s tokens=%d total=%.0f ms",
            call.spec.name,
            full.status,
            full.usage.completion_tokens,
            full.timings_ms.total,
        )
        return full if args.include_raw else full.model_copy(update={"raw_output": None})

    def _start_worker(self, engine: Engine) -> None:
        self._info = engine.info
        self._scheduler.start(engine)

    def _timeout(self) -> RequestTimeout:
        return RequestTimeout(
            f"the call did not finish within {self.settings.request_timeout_s:g} s; retry later, "
            "or lower max_new_tokens"
        )


def _account_for_cutoff(parsed: ParsedAnswer, finish_reason: str) -> ParsedAnswer:
    """Mark an answer the token limit cut off as ``truncated``.

    Cut-off text is a conclusion only when a box, an ``<answer>`` tag or an "answer is"
    phrase marks it; otherwise it is merely where generation stopped, so no answer is
    taken from it.
    """
    if finish_reason != "length" or parsed.status == "truncated":
        return parsed
    flags = set(parsed.flags)
    anchored = not {"no_answer_tag", "no_box"} <= flags or "answer_from_phrase" in flags
    if parsed.status == "ok" and anchored:
        return parsed
    return dataclasses.replace(
        parsed,
        answer=None,
        choice=None,
        choice_text=None,
        value=None,
        status="truncated",
        flags=(*parsed.flags, "cut_off_at_token_limit"),
    )
