"""Reports (JSON, Markdown, chart) and the comparison of two runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from m2_tools.evaluation import (
    EvalItem,
    Report,
    RunOptions,
    build_report,
    compare_runs,
    run_evaluation,
    write_report,
)
from m2_tools.evaluation.aggregates import summarize
from m2_tools.evaluation.chart import write_chart
from m2_tools.evaluation.compare import render_comparison
from m2_tools.evaluation.report import render_markdown
from m2_tools.testing import ScriptedEngine

from .conftest import boxed

QUIET = RunOptions(progress=False, info={"model": "scripted"})


def _items(image: Path) -> list[EvalItem]:
    mathvista = [
        EvalItem(
            id=f"mv{i}",
            benchmark="mathvista",
            category="geometry problem solving" if i < 2 else "figure question answering",
            question=f"MathVista question {i}",
            images=[str(image)],
            options=["circle", "square", "triangle"],
            gold="square",
            answer_type="multiple_choice",
        )
        for i in range(4)
    ]
    cvbench = [
        EvalItem(
            id=f"cv{i}",
            benchmark="cvbench",
            category=task,
            question=f"CV-Bench question {i}",
            images=[str(image)],
            options=["left", "right"],
            gold="A",
            answer_type="multiple_choice",
            source=source,
        )
        for i, (task, source) in enumerate(
            [("Count", "ADE20K"), ("Relation", "COCO"), ("Depth", "Omni3D"), ("Distance", "Omni3D")]
        )
    ]
    return mathvista + cvbench


def _run(make_reasoner, image: Path, out: Path, replies: dict[str, str]) -> None:
    engine = ScriptedEngine(by_question=replies, default=boxed("A"))
    run_evaluation(make_reasoner(engine), _items(image), out, QUIET)


def test_writes_json_markdown_and_chart_with_benchmark_and_category_scores(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    replies = {"MathVista question 0": boxed("B"), "question 3": boxed("circle")}
    _run(make_reasoner, image_file, out, replies)

    report = write_report(out)

    assert Report.model_validate_json((out / "report.json").read_text()) == report
    by_name = {b.benchmark: b for b in report.benchmarks}
    assert by_name["mathvista"].metrics["accuracy"] == pytest.approx(1 / 4)
    assert by_name["mathvista"].categories["geometry problem solving"].score == pytest.approx(0.5)
    assert by_name["mathvista"].rates.parse_failure == 0.0
    cv = by_name["cvbench"]
    # ADE20K 1/1, COCO 1/1, Omni3D 1/2 ("question 3" also hits cv3): ½((1 + 1)/2 + 0.5).
    assert (cv.headline, cv.metrics["combined"]) == ("combined", pytest.approx(0.75))
    assert report.throughput.items == 8 and report.throughput.items_per_s is not None
    assert report.throughput.completion_tokens > 0
    markdown = (out / "report.md").read_text()
    assert "| mathvista | 4 | accuracy | 25.0 | 0 |" in markdown
    assert "## cvbench" in markdown and "![per-category scores](scores.png)" in markdown
    assert "model: `scripted`" in markdown
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_after_resume_counts_every_session(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    out, items = tmp_path / "run", _items(image_file)
    run_evaluation(make_reasoner(ScriptedEngine()), items[:3], out, QUIET)
    resume = RunOptions(progress=False, resume=True)
    run_evaluation(make_reasoner(ScriptedEngine()), items, out, resume)

    report = write_report(out)

    assert report.n == 8
    assert report.throughput.sessions == 2


def test_compare_lists_metric_and_category_deltas_and_flipped_items(
    make_reasoner, image_file: Path, tmp_path: Path
) -> None:
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    _run(make_reasoner, image_file, run_a, {"MathVista question": boxed("B")})  # all 4 right
    _run(
        make_reasoner,
        image_file,
        run_b,
        {
            "MathVista question 1": boxed("C"),
            "MathVista question": boxed("B"),
            "CV-Bench question 1": boxed("B"),
        },
    )

    comparison = compare_runs(run_a, run_b)

    assert comparison.common_items == 8 and comparison.only_a == comparison.only_b == 0
    assert [(f.id, f.a_score, f.b_score, f.b_answer) for f in comparison.lost] == [
        ("cv1", 1.0, 0.0, "B"),
        ("mv1", 1.0, 0.0, "C"),
    ]
    assert comparison.gained == []
    accuracy = next(
        d for d in comparison.metrics if (d.benchmark, d.name) == ("mathvista", "accuracy")
    )
    assert (accuracy.a, accuracy.b, accuracy.delta) == (1.0, 0.75, -0.25)
    geometry = next(d for d in comparison.categories if d.name == "geometry problem solving")
    assert geometry.delta == pytest.approx(-0.5)
    markdown = render_comparison(comparison)
    assert "| mathvista | accuracy | 100.0 | 75.0 | -25.0 |" in markdown
    assert "## Lost items (2)" in markdown and "| mathvista | mv1 |" in markdown
    assert json.loads(comparison.model_dump_json())["lost"][1]["id"] == "mv1"


def _pixels(path: Path, color: tuple[int, int, int]) -> int:
    with Image.open(path) as image:
        found = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    return sum(count for count, rgb in found if rgb == color)


def test_chart_of_all_zero_scores_still_shows_every_row_and_the_chance_level(
    item_of, record_of, tmp_path: Path
) -> None:
    records = [
        record_of(item_of(id=str(i), benchmark="cvbench", category=task, options=["a", "b"]), 0.0)
        for i, task in enumerate(["Count", "Relation", "Depth"])
    ]
    path = tmp_path / "scores.png"

    assert write_chart([summarize("cvbench", records)], path, model="m2", date="2026-01-02")

    assert _pixels(path, (0xE8, 0xE8, 0xE8)) > 1000  # the 0-100 % track of each row
    assert _pixels(path, (0xC4, 0x4E, 0x52)) > 20  # the dashed chance marks at 50 %


def test_markdown_lists_the_items_left_to_a_judge(item_of, record_of, tmp_path: Path) -> None:
    records = [
        record_of(item_of(id="7", benchmark="mathverse", category="Vision Only"), 0.0, judge=True),
        record_of(item_of(id="8", benchmark="mathverse", category="Vision Only"), 1.0),
    ]
    report = build_report(records, {"model": "m2"})

    markdown = render_markdown(report)

    assert "| mathverse | 2 | version/Vision Only | 100.0 | 1 |" in markdown
    assert "Left to a GPT judge: `7`" in markdown
