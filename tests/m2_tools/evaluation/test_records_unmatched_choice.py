"""An eval record of a multiple-choice item whose answer names no option: ``no_answer``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from m2_tools import M2Reasoner
from m2_tools.evaluation import EvalItem, RunOptions, load_records, run_evaluation
from m2_tools.testing import ScriptedEngine

from .conftest import boxed


def test_an_answer_matching_no_option_is_recorded_as_no_answer_with_no_choice(
    make_reasoner: Callable[..., M2Reasoner],
    item_of: Callable[..., EvalItem],
    image_file: Path,
    tmp_path: Path,
) -> None:
    item = item_of(options=["3", "4", "5"], gold="B", images=[str(image_file)])
    engine = ScriptedEngine(default=boxed("9"))

    run_evaluation(make_reasoner(engine), [item], tmp_path / "run", RunOptions(progress=False))

    (record,) = load_records(tmp_path / "run" / "records.jsonl")
    assert record.status == "no_answer"
    assert record.prediction is not None
    assert (record.prediction.answer, record.prediction.choice) == ("9", None)
    assert "no_choice" in record.prediction.flags
    assert record.score == 0.0
