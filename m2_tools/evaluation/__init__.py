"""Evaluation of the tools on benchmark-style items: ``m2-tools eval``.

Items (:class:`EvalItem`, one JSONL line each) come from our own format, from a
benchmark's released files through a reader, or from the synthetic suite. The
runner sends them through :class:`m2_tools.M2Reasoner`, records every item as
it finishes (resumable), and the report scores them with each benchmark's own
rules. See ``docs/eval.md``.
"""

from m2_tools.evaluation.aggregates import BenchmarkSummary, summarize
from m2_tools.evaluation.compare import Comparison, compare_runs
from m2_tools.evaluation.items import EvalItem, ItemsFileError, load_items, write_items
from m2_tools.evaluation.readers import READERS, read_benchmark
from m2_tools.evaluation.records import EvalRecord, Prediction, load_records
from m2_tools.evaluation.report import Report, build_report, write_report
from m2_tools.evaluation.runner import (
    OutputDirNotEmpty,
    RunConflict,
    RunOptions,
    RunResult,
    arun_evaluation,
    prepare_out_dir,
    run_evaluation,
)
from m2_tools.evaluation.scorers import ItemScore, mean_relative_accuracy, score_item
from m2_tools.evaluation.synthetic import generate_synthetic

__all__ = [
    "READERS",
    "BenchmarkSummary",
    "Comparison",
    "EvalItem",
    "EvalRecord",
    "ItemScore",
    "ItemsFileError",
    "OutputDirNotEmpty",
    "Prediction",
    "Report",
    "RunConflict",
    "RunOptions",
    "RunResult",
    "arun_evaluation",
    "build_report",
    "compare_runs",
    "generate_synthetic",
    "load_items",
    "load_records",
    "mean_relative_accuracy",
    "prepare_out_dir",
    "read_benchmark",
    "run_evaluation",
    "score_item",
    "summarize",
    "write_items",
    "write_report",
]
