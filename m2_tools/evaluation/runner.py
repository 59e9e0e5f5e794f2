"""The runner: items → concurrent tool calls through :class:`M2Reasoner` → scored records.

Calls go through the real service (``arun_tool``), whose worker batches
concurrent calls for the model. Each finished item is appended to
``records.jsonl`` and flushed at once, so an interrupted run loses nothing:
``resume=True`` skips every item that already has a record; it continues the run
with the model, sample count and token limit recorded in ``run.json`` and refuses
different ones (:class:`RunConflict`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from m2_tools.answers.parsing import parse_response
from m2_tools.errors import M2Error, ModelUnavailable
from m2_tools.evaluation._run_dir import (
    ARTIFACTS,
    RECORDS,
    OutputDirNotEmpty,
    RunConflict,
    check_resumable,
    prepare_out_dir,
    read_run_info,
    record_count,
    same_model,
    write_run_info,
)
from m2_tools.evaluation.items import EvalItem
from m2_tools.evaluation.records import (
    ErrorInfo,
    EvalRecord,
    Prediction,
    RecordLog,
    load_records,
    written_answer,
)
from m2_tools.evaluation.scorers import score_item
from m2_tools.reasoner import M2Reasoner
from m2_tools.schemas import M2Result

__all__ = [
    "ARTIFACTS",
    "OutputDirNotEmpty",
    "RunConflict",
    "RunOptions",
    "RunResult",
    "arun_evaluation",
    "prepare_out_dir",
    "read_run_info",
    "run_evaluation",
    "same_model",
    "tool_arguments",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """How to run the items.

    Attributes:
        samples: Answers per item (above 1 they vote, see the tool's ``samples``).
        concurrency: Calls in flight at once; the service batches them.
        max_new_tokens: Token limit per answer; ``None`` keeps the tool's default.
        resume: Keep existing records and run only the items without one.
        retry_errors: With ``resume``, also run again the items whose call failed.
        progress: Show a progress bar (tqdm, on stderr).
        info: Facts about the run stored in ``run.json`` (model, items file, ...).
    """

    samples: int = 1
    concurrency: int = 8
    max_new_tokens: int | None = None
    resume: bool = False
    retry_errors: bool = False
    progress: bool = True
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """What a run did: all records in the directory, and this session's share."""

    out_dir: Path
    records: list[EvalRecord]
    ran: int
    skipped: int
    wall_s: float


def tool_arguments(
    item: EvalItem, *, samples: int = 1, max_new_tokens: int | None = None
) -> dict[str, Any]:
    """The tool input fields for ``item`` (raw output included, for re-parsing)."""
    question = item.question
    arguments: dict[str, Any] = {"images": list(item.images), "include_raw": True}
    if item.video:
        arguments["video"] = item.video
    if item.options and len(item.options) >= 2:
        arguments["choices"] = list(item.options)
    elif item.options:  # one option cannot be a `choices` list; keep it in the text
        question += f"\nA. {item.options[0]}"
    arguments["question"] = question
    if samples != 1:
        arguments["samples"] = samples
    if max_new_tokens is not None:
        arguments["max_new_tokens"] = max_new_tokens
    return arguments


def run_evaluation(
    reasoner: M2Reasoner, items: Sequence[EvalItem], out_dir: Path, options: RunOptions
) -> RunResult:
    """Blocking :func:`arun_evaluation`."""
    return asyncio.run(arun_evaluation(reasoner, items, out_dir, options))


async def arun_evaluation(
    reasoner: M2Reasoner, items: Sequence[EvalItem], out_dir: Path, options: RunOptions
) -> RunResult:
    """Run every item without a record through ``reasoner`` and record each as it finishes.

    Raises:
        OutputDirNotEmpty: ``records.jsonl`` has records and ``resume`` is off.
        RunConflict: Resuming with another model, sample count or token limit.
        ModelUnavailable: The model failed to load (nothing is written).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    log = RecordLog(out_dir / RECORDS)
    settings = {"samples": options.samples, "max_new_tokens": options.max_new_tokens}
    if options.resume:
        check_resumable(out_dir, {**options.info, **settings})
    previous = _previous_records(log, options)
    done = {r.key for r in previous if not (options.retry_errors and r.error is not None)}
    todo = [item for item in items if item.key not in done]
    logger.info("%d items to run, %d already recorded", len(todo), len(items) - len(todo))
    if todo:
        await _wait_for_model(reasoner)
    # Why: written once the model is there, so a run that could not start leaves no run.json.
    write_run_info(
        out_dir, {**options.info, **settings, "items": len(items)}, resume=options.resume
    )
    concurrency = max(1, min(options.concurrency, reasoner.settings.queue_size))
    session = time.time()
    started = time.perf_counter()
    fresh: list[EvalRecord] = []
    with log, _progress(options, total=len(items), initial=len(items) - len(todo)) as bar:
        queue: asyncio.Queue[EvalItem] = asyncio.Queue()
        for item in todo:
            queue.put_nowait(item)

        async def worker() -> None:
            while not queue.empty():
                record = await _evaluate(reasoner, queue.get_nowait(), options, session)
                log.append(record)
                fresh.append(record)
                bar.update(1)
                bar.set_postfix(score=f"{sum(r.score for r in fresh) / len(fresh):.3f}")

        workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(todo)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    kept = {r.key: r for r in previous}
    kept.update((r.key, r) for r in fresh)
    return RunResult(
        out_dir=out_dir,
        records=list(kept.values()),
        ran=len(fresh),
        skipped=len(items) - len(todo),
        wall_s=time.perf_counter() - started,
    )


def _previous_records(log: RecordLog, options: RunOptions) -> list[EvalRecord]:
    if not options.resume:
        if record_count(log.path):
            raise OutputDirNotEmpty(
                f"{log.path} already has records; pass --resume (RunOptions.resume) to continue "
                "the run, or --overwrite to start it again"
            )
        return []
    log.repair()
    return load_records(log.path)


async def _wait_for_model(reasoner: M2Reasoner) -> None:
    await asyncio.to_thread(reasoner.wait_until_loaded)
    status = reasoner.status()
    if status.state == "failed":
        raise ModelUnavailable(f"the model {status.model!r} cannot be loaded: {status.reason}")


def _progress(options: RunOptions, *, total: int, initial: int) -> tqdm[Any]:
    return tqdm(
        total=total,
        initial=initial,
        unit="item",
        desc="eval",
        file=sys.stderr,
        disable=not options.progress,
        dynamic_ncols=True,
        smoothing=0.1,
    )


async def _evaluate(
    reasoner: M2Reasoner, item: EvalItem, options: RunOptions, session: float
) -> EvalRecord:
    arguments = tool_arguments(item, samples=options.samples, max_new_tokens=options.max_new_tokens)
    try:
        result = await reasoner.arun_tool(item.resolved_tool, arguments)
        return _scored(item, result, session)
    except M2Error as exc:
        return _failed(item, ErrorInfo(code=exc.code, message=exc.message), session)
    except Exception as exc:  # a bug in one item must not end a long run
        logger.exception("item %s/%s failed unexpectedly", item.benchmark, item.id)
        return _failed(item, ErrorInfo(code="internal", message=type(exc).__name__), session)


def _scored(item: EvalItem, result: M2Result, session: float) -> EvalRecord:
    raw = result.raw_output or ""
    flags = getattr(result, "flags", None)
    if flags is None:  # a result model without the parser's flags: read them again
        choices = item.options if item.options and len(item.options) >= 2 else None
        flags = parse_response(raw, choices).flags
    prediction = Prediction.from_result(result, list(flags), written_answer(raw) if raw else None)
    scored = score_item(item, prediction)
    return EvalRecord(
        id=item.id,
        benchmark=item.benchmark,
        category=item.category,
        item=_compact(item),
        status=prediction.status,
        score=scored.score,
        judge=scored.judge,
        prediction=prediction,
        raw_output=result.raw_output,
        timings_ms=result.timings_ms.model_dump(),
        usage=result.usage.model_dump(),
        session=session,
        finished_at=time.time(),
    )


def _failed(item: EvalItem, error: ErrorInfo, session: float) -> EvalRecord:
    return EvalRecord(
        id=item.id,
        benchmark=item.benchmark,
        category=item.category,
        item=_compact(item),
        status="error",
        score=0.0,
        error=error,
        session=session,
        finished_at=time.time(),
    )


def _compact(item: EvalItem) -> EvalItem:
    """The item as recorded: inline image data is replaced by a short marker."""
    images = [ref if len(ref) < 512 else f"{ref[:32]}…" for ref in item.images]
    return item.model_copy(update={"images": images})
