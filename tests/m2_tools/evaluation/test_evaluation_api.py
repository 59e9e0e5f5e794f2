"""The public surface of m2_tools.evaluation, and what importing it pulls in."""

from __future__ import annotations

import subprocess
import sys

import m2_tools.evaluation as evaluation


def test_public_names_are_pinned() -> None:
    assert evaluation.__all__ == [
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
    for name in evaluation.__all__:
        assert getattr(evaluation, name) is not None


def test_importing_the_evaluation_loads_neither_torch_nor_matplotlib() -> None:
    code = (
        "import sys, m2_tools.evaluation, m2_tools.evaluation.cli;"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, sorted(sys.modules)"
    )

    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
