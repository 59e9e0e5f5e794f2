"""The runner through the real service with the scripted engine: records, errors, resume."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from pathlib import Path

import pytest

from m2_tools import ModelUnavailable
from m2_tools.errors import RequestTimeout
from m2_tools.evaluation import (
    EvalItem,
    OutputDirNotEmpty,
    RunConflict,
    RunOptions,
    arun_evaluation,
    load_records,
    prepare_out_dir,
    run_evaluation,
)
from m2_tools.evaluation.runner import tool_arguments
from m2_tools.testing import ScriptedEngine, ScriptedReply

from .conftest import boxed

QUIET = RunOptions(progress=False)


def _items(image: Path, n: int = 6) -> list[EvalItem]:
    return [
        EvalItem(
            id=f"q{i}",
            benchmark="synthetic",
            category="counting" if i % 2 else "position",
            tool="spatial_reason",
            question=f"Question number {i}: how many?",
            images=[str(image)],
            gold=str(i),
            answer_type="integer",
        )
        for i in range(n)
    ]


def _lines(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def _wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.005)


def test_records_every_item_with_parsed_fields_score_and_timings(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    engine = ScriptedEngine(by_question={f"number {i}:": boxed(str(i * (i % 2))) for i in range(6)})
    out = tmp_path / "run"

    result = run_evaluation(make_reasoner(engine), _items(image_file), out, QUIET)

    assert (result.ran, result.skipped) == (6, 0)
    lines = _lines(out)
    assert sorted(line["id"] for line in lines) == [f"q{i}" for i in range(6)]
    first = next(line for line in lines if line["id"] == "q3")
    assert first["benchmark"] == "synthetic" and first["category"] == "counting"
    assert first["status"] == "ok" and first["score"] == 1.0 and first["error"] is None
    assert first["prediction"]["value"] == 3.0 and first["prediction"]["answer"] == "3"
    assert first["raw_output"] == boxed("3")
    assert set(first["timings_ms"]) >= {"queue", "preprocess", "generate", "total"}
    assert first["usage"]["completion_tokens"] > 0
    scores = {r.id: r.score for r in result.records}
    assert scores == {"q0": 1.0, "q1": 1.0, "q2": 0.0, "q3": 1.0, "q4": 0.0, "q5": 1.0}


def test_a_failing_call_is_recorded_as_an_error_scored_zero_and_the_run_goes_on(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    failing = ScriptedReply(error=RequestTimeout("too slow"))
    engine = ScriptedEngine(by_question={"number 1:": failing}, default=boxed("2"))
    items = _items(image_file, 4)
    items[3] = items[3].model_copy(update={"images": [str(tmp_path / "missing.png")]})

    result = run_evaluation(make_reasoner(engine), items, tmp_path / "run", QUIET)

    by_id = {r.id: r for r in result.records}
    assert by_id["q1"].status == "error" and by_id["q1"].error is not None
    assert (by_id["q1"].error.code, by_id["q1"].score) == ("timeout", 0.0)
    assert by_id["q3"].error is not None and by_id["q3"].error.code == "image_not_found"
    assert (by_id["q2"].status, by_id["q2"].score) == ("ok", 1.0)
    assert len(_lines(tmp_path / "run")) == 4


def test_resume_runs_only_the_unrecorded_items_and_repeats_none(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    items, out = _items(image_file), tmp_path / "run"
    run_evaluation(make_reasoner(ScriptedEngine(default=boxed("1"))), items[:2], out, QUIET)
    engine = ScriptedEngine(default=boxed("1"))

    resumed = run_evaluation(
        make_reasoner(engine), items, out, RunOptions(progress=False, resume=True)
    )

    assert (resumed.ran, resumed.skipped) == (4, 2)
    asked = sorted(re.search(r"number (\d+):", r.user_text).group(1) for r in engine.requests)
    assert asked == ["2", "3", "4", "5"]
    ids = [line["id"] for line in _lines(out)]
    assert sorted(ids) == [f"q{i}" for i in range(6)]  # none lost, none repeated
    assert len(resumed.records) == 6


def test_resume_cuts_a_torn_last_line_and_reruns_that_item(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    items, out = _items(image_file, 3), tmp_path / "run"
    run_evaluation(make_reasoner(ScriptedEngine(default=boxed("1"))), items[:2], out, QUIET)
    records = out / "records.jsonl"
    lines = records.read_text().splitlines(keepends=True)
    records.write_text(lines[0] + lines[1][: len(lines[1]) // 2])  # killed mid-write

    engine = ScriptedEngine(default=boxed("1"))
    run_evaluation(make_reasoner(engine), items, out, RunOptions(progress=False, resume=True))

    assert len(engine.requests) == 2  # q1 (torn) and q2
    assert sorted(r.id for r in load_records(records)) == ["q0", "q1", "q2"]
    assert len(_lines(out)) == 3


def test_retry_errors_reruns_failed_items_and_keeps_the_latest_record(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    items, out = _items(image_file, 2), tmp_path / "run"
    failing = ScriptedEngine(by_question={"number 1:": ScriptedReply(error=RequestTimeout("x"))})
    run_evaluation(make_reasoner(failing), items, out, QUIET)

    again = RunOptions(progress=False, resume=True, retry_errors=True)
    result = run_evaluation(make_reasoner(ScriptedEngine(default=boxed("1"))), items, out, again)

    assert result.ran == 1
    assert {r.id: r.status for r in load_records(out / "records.jsonl")} == {"q0": "ok", "q1": "ok"}


def test_refuses_a_non_empty_directory_unless_resuming_or_overwriting(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run_evaluation(make_reasoner(ScriptedEngine()), _items(image_file, 1), out, QUIET)
    (out / "notes.txt").write_text("keep me")

    with pytest.raises(OutputDirNotEmpty, match="--resume"):
        prepare_out_dir(out)
    with pytest.raises(OutputDirNotEmpty, match="--resume"):
        run_evaluation(make_reasoner(ScriptedEngine()), _items(image_file, 1), out, QUIET)
    prepare_out_dir(out, resume=True)
    assert (out / "records.jsonl").exists()

    prepare_out_dir(out, overwrite=True)

    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_concurrent_items_are_batched_by_the_service(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(generate_gate=gate, default=boxed("1"))
    reasoner = make_reasoner(engine)
    options = RunOptions(progress=False, concurrency=4)

    async def scenario() -> None:
        task = asyncio.ensure_future(
            arun_evaluation(reasoner, _items(image_file, 4), tmp_path, options)
        )
        # The first batch holds the engine until every call has reached the queue.
        await asyncio.to_thread(_wait_until, lambda: reasoner.status().queue_depth == 4)
        gate.set()
        await task

    asyncio.run(scenario())

    assert sum(len(batch) for batch in engine.calls) == 4
    assert len(engine.calls) <= 2  # the held batch, then everything that queued behind it


def test_samples_and_token_limit_reach_the_engine(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    engine = ScriptedEngine(default=boxed("1"))
    options = RunOptions(progress=False, samples=3, max_new_tokens=64)

    run_evaluation(make_reasoner(engine), _items(image_file, 1), tmp_path, options)

    assert len(engine.requests) == 3
    assert all(r.do_sample and r.max_new_tokens == 64 for r in engine.requests)
    (record,) = load_records(tmp_path / "records.jsonl")
    assert record.prediction is not None and record.prediction.confidence == 1.0


def test_a_model_that_cannot_load_stops_the_run_before_any_record(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    engine = ScriptedEngine(load_error=RuntimeError("no weights"))

    out = tmp_path / "run"

    with pytest.raises(ModelUnavailable):
        run_evaluation(make_reasoner(engine), _items(image_file, 2), out, QUIET)

    assert not (out / "records.jsonl").exists()
    assert not (out / "run.json").exists()
    prepare_out_dir(out)  # nothing blocks the next try


def test_progress_bar_shows_rate_and_eta_on_stderr(
    make_reasoner, image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_evaluation(make_reasoner(ScriptedEngine()), _items(image_file, 3), tmp_path, RunOptions())

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "3/3" in captured.err and "item/s" in captured.err and "<" in captured.err


def test_tool_arguments_pass_options_as_choices_and_keep_raw_output(item_of) -> None:
    item = item_of(options=["left", "right"], images=["/x.png"])
    single = item_of(options=["only"])

    arguments = tool_arguments(item, max_new_tokens=32)

    assert arguments == {
        "question": "What is shown?",
        "images": ["/x.png"],
        "choices": ["left", "right"],
        "include_raw": True,
        "max_new_tokens": 32,
    }
    assert tool_arguments(single)["question"] == "What is shown?\nA. only"
    assert "choices" not in tool_arguments(single)


def test_an_item_with_a_video_sends_it_to_spatial_reason(item_of) -> None:
    item = item_of(benchmark="vsibench", video="/data/scene.mp4", gold="3", answer_type="float")

    arguments = tool_arguments(item)

    assert item.resolved_tool == "spatial_reason"
    assert arguments["video"] == "/data/scene.mp4"
    assert arguments["images"] == []


def test_records_keep_the_parser_flags_and_the_answer_as_written(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    item = EvalItem(
        id="c1",
        benchmark="mathverse",
        question="A circle has radius 2 cm. Find its circumference.",
        images=[str(image_file)],
        gold="Circumference $=12.6 \\mathrm{~cm}$",
        answer_type="text",
    )
    engine = ScriptedEngine(
        default="<think>\n2 pi r\n</think>\n<answer>Circumference $=12.6 \\mathrm{~cm}$</answer>"
    )

    run_evaluation(make_reasoner(engine), [item], tmp_path, QUIET)

    (record,) = load_records(tmp_path / "records.jsonl")
    assert record.prediction is not None
    assert record.prediction.raw_answer == item.gold
    assert "no_box" in record.prediction.flags
    assert (record.score, record.judge) == (1.0, False)


def test_an_answer_the_official_code_sends_to_a_judge_is_recorded_as_such(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    item = EvalItem(
        id="j1",
        benchmark="mathverse",
        question="Find AB.",
        images=[str(image_file)],
        gold="10",
        answer_type="integer",
    )

    run_evaluation(make_reasoner(ScriptedEngine(default=boxed("10.0"))), [item], tmp_path, QUIET)

    (record,) = load_records(tmp_path / "records.jsonl")
    assert (record.score, record.judge) == (0.0, True)


@pytest.mark.parametrize(
    ("changed", "flag"),
    [
        ({"info": {"model": "another-model"}}, "--model"),
        ({"max_new_tokens": 64}, "--max-new-tokens"),
        ({"samples": 3}, "--samples"),
    ],
)
def test_resume_refuses_another_model_or_token_limit(
    changed: dict[str, object], flag: str, make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    first = RunOptions(progress=False, info={"model": "scripted"}, max_new_tokens=32)
    run_evaluation(make_reasoner(ScriptedEngine()), _items(image_file, 2), tmp_path, first)
    options = RunOptions(
        **{"progress": False, "resume": True, "info": {"model": "scripted"}, "max_new_tokens": 32}
        | changed  # type: ignore[arg-type]
    )

    with pytest.raises(RunConflict) as caught:
        run_evaluation(make_reasoner(ScriptedEngine()), _items(image_file, 4), tmp_path, options)

    assert flag in str(caught.value)
    assert len(load_records(tmp_path / "records.jsonl")) == 2
    assert json.loads((tmp_path / "run.json").read_text())["model"] == "scripted"
