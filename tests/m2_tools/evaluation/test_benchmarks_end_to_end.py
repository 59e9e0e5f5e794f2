"""Each benchmark end to end: its released layout → the real service (scripted engine) →
records → the benchmark's aggregate, as its official code computes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from m2_tools.evaluation import RunOptions, read_benchmark, run_evaluation, write_report
from m2_tools.evaluation.aggregates import BenchmarkSummary
from m2_tools.testing import ScriptedEngine

from .conftest import boxed

QUIET = RunOptions(progress=False, info={"model": "scripted"})
COPY = "Circumference $=12.6 \\mathrm{~cm}$"


def _run(
    make_reasoner: Callable[..., object],
    name: str,
    path: Path | list[Path],
    replies: dict[str, str],
    out: Path,
) -> BenchmarkSummary:
    items = read_benchmark(name, path)
    engine = ScriptedEngine(by_question=replies, default=boxed("nothing useful"))
    run_evaluation(make_reasoner(engine), items, out, QUIET)  # type: ignore[arg-type]
    (summary,) = write_report(out).benchmarks
    return summary


def test_mathvista(make_reasoner, release, tmp_path: Path) -> None:
    """calculate_score.py: 3 of 5 right (option text, int(float), rounded float)."""
    replies = {
        "largest area": boxed("B"),
        "taller than 40": boxed("3.9"),  # int(float("3.9")) == 3
        "slope": boxed("0.46"),  # round(0.46, 1) == 0.5
        "lowest point": boxed("2009 and 2011"),  # a list compares as its string
        "CD的长": boxed("C"),  # the option "6"
    }
    summary = _run(make_reasoner, "mathvista", release("mathvista"), replies, tmp_path / "run")

    assert summary.metrics["accuracy"] == pytest.approx(3 / 5)


def test_mathvision(make_reasoner, release, tmp_path: Path) -> None:
    """evaluate.py with utils.is_equal: 5 of 7 right."""
    replies = {
        "completes the pattern": boxed("D"),
        "fair open": boxed("Friday"),  # the text of option C
        "dots are hidden": boxed("12.0"),
        "diagonal": boxed("\\sqrt{18}"),  # 4.24 == round(3√2, 2)
        "folds into the cube": boxed("A"),
        "shaded area": boxed("\\frac{1}{4}"),  # the gold 1:4 evaluates to 0.25
        "side length": boxed("\\frac{9}{4}"),  # the gold is boxed: it cannot be evaluated
    }
    summary = _run(make_reasoner, "mathvision", release("mathvision"), replies, tmp_path / "run")

    assert summary.metrics["accuracy"] == pytest.approx(5 / 7)


def test_mathverse_reports_vision_only_and_leaves_unequal_answers_to_the_judge(
    make_reasoner, release, tmp_path: Path
) -> None:
    """score_answer_s2.py: exact matches are right, the rest goes to a GPT judge."""
    replies = {
        "legs 6 cm": boxed("10"),  # Text Dominant
        "Find the hypotenuse AB.": boxed("10 cm"),  # Text Lite and Vision Intensive: judge
        "Find AB.": boxed("10"),  # Vision Dominant
        "According to the question shown": boxed("10"),  # Vision Only
        "angle C is": boxed("B"),
        "acute": boxed("B"),  # gold "False": judge
        "y = 2x": boxed("A"),  # gold "(A)": judge
        "circumference": f"<think>\n4 pi\n</think>\n<answer>{COPY}</answer>",  # the gold verbatim
        "fence": boxed("60"),  # gold "60 "
    }
    summary = _run(make_reasoner, "mathverse", release("mathverse"), replies, tmp_path / "run")

    assert summary.headline == "version/Vision Only"
    assert summary.headline_value == 1.0
    assert sorted(summary.judge_items) == ["202", "203", "text-only-206", "text-only-207"]
    assert summary.metrics["version/Text Only"] == 1.0
    assert summary.metrics["accuracy"] == 1.0  # every decided item is right


def test_dynamath(make_reasoner, release, tmp_path: Path) -> None:
    """opensource_json_eval.py per item; VLMEvalKit's worst case over the seeds."""
    replies = {
        "period": boxed("3.142"),
        "red bar taller": boxed("A"),
        "weekday": boxed("It is Tuesday."),
        "determinant": boxed("-7"),
        "only tea": ["<think>\nx\n</think>\n<answer>\\boxed{17}</answer>", boxed("16")],
    }
    summary = _run(make_reasoner, "dynamath", release("dynamath"), replies, tmp_path / "run")

    assert summary.metrics["average"] == pytest.approx(9 / 10)
    assert summary.metrics["worst_case"] == pytest.approx(4 / 5)  # seed 11 fails one variant
    assert summary.counts["seeds"] == 5


def test_wemath(make_reasoner, release, tmp_path: Path) -> None:
    """four_dimensional_metrics.py: the 2-step problem is RM, the 3-step one CM."""
    replies = {
        "radius": boxed("A"),  # wrong
        "diameter": boxed("C"),
        "circumference": boxed("A"),
        "side a": boxed("A"),
        "side b": boxed("B"),
        "side c": boxed("C"),
        "perimeter": boxed("B"),
    }
    summary = _run(
        make_reasoner, "wemath", release("wemath") / "testmini.json", replies, tmp_path / "r"
    )

    assert summary.counts["composites"] == 2 and summary.counts["incomplete"] == 1
    assert (summary.counts["RM_strict"], summary.counts["CM_strict"]) == (1, 1)
    assert summary.metrics["score_strict"] == pytest.approx((2 - 1) / 2)
    assert summary.metrics["score_loose"] == pytest.approx(2 / 2)


def test_logicvista(make_reasoner, release, tmp_path: Path) -> None:
    """extract_accuracy.py: equal sorted lists of letters; 5 of 7 right."""
    replies = {
        "completes the sequence": boxed("c"),
        "red group": boxed("D, B"),
        "5th figure": boxed("11"),  # the option B
        "grew fastest": boxed("B"),
        "follows from the rules": boxed("2"),
        "rotation of the object": boxed("D"),
        "completes the grid": boxed("F"),
    }
    summary = _run(
        make_reasoner, "logicvista", release("logicvista") / "dataset.json", replies, tmp_path / "r"
    )

    assert summary.metrics["accuracy"] == pytest.approx(5 / 7)
    assert summary.categories["numerical"].score == pytest.approx(1 / 2)


def test_cvbench_from_its_two_files(make_reasoner, release, tmp_path: Path) -> None:
    """VLMEvalKit CVBench: 2D = mean over sources, 3D accuracy, combined their mean."""
    root = release("cvbench")
    replies = {
        "lamps": boxed("B"),
        "dogs": boxed("B"),  # wrong
        "cup": boxed("right"),
        "closer to the camera": boxed("A"),
        "closer to the sofa": boxed("A"),  # wrong
    }
    files = [root / "test_2d.jsonl", root / "test_3d.jsonl"]
    summary = _run(make_reasoner, "cvbench", files, replies, tmp_path / "run")

    assert summary.metrics["accuracy_2d"] == pytest.approx((1.0 + 0.5) / 2)
    assert summary.metrics["accuracy_3d"] == pytest.approx(0.5)
    assert summary.headline == "combined"
    assert summary.metrics["combined"] == pytest.approx((0.75 + 0.5) / 2)


def test_vsibench_on_extracted_frames(make_reasoner, release, tmp_path: Path) -> None:
    """VLMEvalKit VsiBench: MRA for numbers, letters otherwise; overall the task mean."""
    root = release("vsibench")
    for video in list(root.glob("*/*.mp4")):
        frames = root / "frames" / video.parent.name / video.stem
        frames.mkdir(parents=True)
        Image.new("RGB", (16, 16)).save(frames / "0001.jpg")
        video.unlink()
    replies = {
        "chair(s)": boxed("5"),  # MRA(5, 4) = 0.6
        "sofa and the tv": boxed("2.0"),
        "size of this room": boxed("0.3"),  # gold 0: |0.3| against 1 - θ gives 0.5
        "left or right": boxed("B"),
        "front-left": boxed("A"),
        "[please fill in]": boxed("Turn Left"),
    }
    summary = _run(make_reasoner, "vsibench", root / "test.jsonl", replies, tmp_path / "run")

    assert summary.metrics["task/obj_count"] == pytest.approx(0.6)
    assert summary.metrics["task/room_size"] == pytest.approx(0.5)
    assert summary.metrics["task/rel_dir"] == pytest.approx(0.5)  # easy right, hard wrong
    assert summary.metrics["overall"] == pytest.approx((0.6 + 1.0 + 0.5 + 0.5 + 1.0) / 5)
