"""`m2-tools eval` from the command line: the tiny real model end to end, usage errors, compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m2_tools.cli import main
from m2_tools.evaluation import (
    EvalItem,
    RunOptions,
    load_items,
    load_records,
    read_benchmark,
    run_evaluation,
)
from m2_tools.testing import ScriptedEngine

from .conftest import boxed


def _tiny(fixture_dir: Path) -> list[str]:
    return [
        "--model",
        str(fixture_dir / "checkpoint"),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--max-new-tokens",
        "16",
        "--no-progress",
    ]


def test_synthetic_suite_runs_end_to_end_on_the_tiny_model(
    fixture_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"

    code = main(["eval", "--synthetic", "--limit", "20", "--out", str(out), *_tiny(fixture_dir)])

    assert code == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("synthetic: accuracy ")
    assert f"report: {out / 'report.md'}" in captured.out
    records = load_records(out / "records.jsonl")
    assert len(records) == 20
    assert all(r.error is None and r.raw_output is not None for r in records)
    assert {r.item.resolved_tool for r in records} == {"spatial_reason", "visual_math_reason"}
    report = json.loads((out / "report.json").read_text())
    assert report["benchmarks"][0]["n"] == 20
    assert report["run"]["model"] == str(fixture_dir / "checkpoint")
    assert report["throughput"]["tokens_per_s"] > 0
    assert (out / "report.md").read_text().startswith("# m2-tools eval report")
    assert (out / "scores.png").stat().st_size > 0

    # Resuming a finished run runs nothing and rewrites the same report; the run's
    # items, model and token limit are its own, and another model is refused.
    assert main(["eval", "--synthetic", "--out", str(out), "--resume", *_tiny(fixture_dir)]) == 0
    assert main(["eval", "--resume", "--out", str(out), "--no-progress"]) == 0
    assert len((out / "records.jsonl").read_text().splitlines()) == 20
    capsys.readouterr()
    assert main(["eval", "--resume", "--out", str(out), "--model", str(tmp_path)]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["eval", "--resume", "--out", str(out), "--max-new-tokens", "32"]) == 2
    assert json.loads((out / "run.json").read_text())["model"] == str(fixture_dir / "checkpoint")


def test_refuses_a_non_empty_out_dir_without_resume_or_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "old.txt").write_text("x")

    code = main(["eval", "--synthetic", "--out", str(tmp_path)])

    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.txt"]


def test_a_run_that_could_not_load_its_model_does_not_block_the_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "smoke"
    argv = ["eval", "--synthetic", "--limit", "6", "--out", str(out), "--no-progress"]
    missing = ["--model", str(tmp_path / "no-such-checkpoint"), "--device", "cpu"]

    assert main([*argv, *missing]) == 1
    capsys.readouterr()
    assert main([*argv, *missing]) == 1  # not refused (2) as a non-empty directory
    assert "no-such-checkpoint" in capsys.readouterr().err
    assert not (out / "records.jsonl").exists()


def test_without_a_model_the_failure_says_to_pass_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("M2_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "smoke"

    code = main(["eval", "--synthetic", "--limit", "6", "--out", str(out), "--no-progress"])

    assert code == 1
    assert "--model" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--synthetic"],  # no --out
        ["eval", "--out", "x"],  # neither ITEMS nor --synthetic
        ["eval", "--out", "x", "--resume"],  # nothing recorded to resume
        ["eval", "items.jsonl", "--synthetic", "--out", "x"],  # both
    ],
)
def test_usage_errors_exit_with_code_2(argv: list[str], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)

    assert main(argv) == 2


def test_a_missing_items_file_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["eval", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "run")]) == 2


def test_compare_mode_writes_markdown_and_json(
    make_reasoner, image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [
        EvalItem(
            id=str(i),
            benchmark="logicvista",
            question=f"Puzzle {i}",
            images=[str(image_file)],
            options=["a", "b", "c"],
            gold="B",
            answer_type="multiple_choice",
        )
        for i in range(3)
    ]
    quiet = RunOptions(progress=False)
    run_evaluation(make_reasoner(ScriptedEngine(default=boxed("A"))), items, tmp_path / "a", quiet)
    run_evaluation(make_reasoner(ScriptedEngine(default=boxed("B"))), items, tmp_path / "b", quiet)
    out = tmp_path / "cmp"

    code = main(["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)])

    assert code == 0
    assert capsys.readouterr().out.startswith("3 items in both runs: 3 gained, 0 lost")
    assert json.loads((out / "compare.json").read_text())["gained"][0]["b_answer"] == "B"
    assert "| logicvista | accuracy | 0.0 | 100.0 | +100.0 |" in (out / "compare.md").read_text()

    assert main(["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert capsys.readouterr().out.startswith("# m2-tools eval comparison")


def test_report_only_rebuilds_the_reports_from_the_records(
    make_reasoner, image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = EvalItem(
        id="1",
        benchmark="synthetic",
        question="How many?",
        images=[str(image_file)],
        gold="2",
        answer_type="integer",
    )
    out = tmp_path / "run"
    run_evaluation(
        make_reasoner(ScriptedEngine(default=boxed("2"))), [item], out, RunOptions(progress=False)
    )

    assert main(["eval", "--report-only", "--out", str(out)]) == 0

    assert capsys.readouterr().out.startswith("synthetic: accuracy 100.0% (n=1;")
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.md", "scores.png"}


def test_format_reads_several_released_files_and_resume_skips_recorded_items(
    make_reasoner, release, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = release("cvbench")
    files = [root / "test_2d.jsonl", root / "test_3d.jsonl"]
    out = tmp_path / "run"
    items = read_benchmark("cvbench", files)
    engine = ScriptedEngine(default=boxed("A"))
    run_evaluation(make_reasoner(engine), items, out, RunOptions(progress=False))

    argv = ["eval", *map(str, files), "--format", "cvbench", "--out", str(out), "--resume"]
    code = main(argv)

    assert code == 0
    assert load_items(out / "items.jsonl") == items
    assert len((out / "records.jsonl").read_text().splitlines()) == 5
    assert capsys.readouterr().out.startswith("cvbench: combined ")
    report = json.loads((out / "report.json").read_text())
    assert report["benchmarks"][0]["metrics"]["combined"] is not None
