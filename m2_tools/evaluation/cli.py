"""``m2-tools eval``: run items through the tools, score them, report.

Three modes:

- ``m2-tools eval ITEMS... --out DIR``: ITEMS are items JSONL files, or a benchmark's
  released files or directories with ``--format NAME``; ``--resume --out DIR``
  continues an interrupted run with its recorded items, model and settings.
- ``m2-tools eval --synthetic --out DIR``: draw the offline synthetic suite into
  ``DIR/synthetic/`` and run it (exercises the pipeline; not a benchmark).
- ``m2-tools eval --compare RUN_A RUN_B [--out DIR]``: two runs side by side.

Progress and logs go to stderr; stdout gets only the short final summary.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from m2_tools.cli.options import add_model_options, configure_logging, settings_from_args
from m2_tools.errors import M2Error
from m2_tools.evaluation._run_dir import (
    OutputDirNotEmpty,
    RunConflict,
    check_resumable,
    prepare_out_dir,
    read_run_info,
)
from m2_tools.evaluation.items import EvalItem, ItemsFileError, load_items, write_items
from m2_tools.evaluation.readers import READERS, read_benchmark
from m2_tools.evaluation.report import Report, pct, write_report
from m2_tools.evaluation.runner import RunOptions
from m2_tools.settings import Settings

__all__ = ["HELP", "add_arguments", "run"]

HELP = "Score the tools on benchmark-style items."
_SYNTHETIC_COUNT = 60


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``eval`` options to ``parser``."""
    parser.add_argument(
        "items",
        nargs="*",
        type=Path,
        help="Items JSONL files, or a benchmark's released files or directories (--format).",
    )
    parser.add_argument(
        "--format",
        choices=list(READERS),
        default="items",
        metavar="NAME",
        help="Layout of ITEMS: items (our JSONL, default) or a benchmark's published file: "
        + ", ".join(name for name in READERS if name != "items")
        + ".",
    )
    parser.add_argument("--benchmark", metavar="NAME", help="Run only the items of NAME.")
    parser.add_argument(
        "--limit", type=_bounded(1, 10**9), metavar="N", help="Only the first N items."
    )
    parser.add_argument(
        "--samples", type=_bounded(1, 8), metavar="K", help="Voting answers per item (default 1)."
    )
    parser.add_argument(
        "--concurrency", type=_bounded(1, 1024), metavar="C", help="Calls in flight (default 8)."
    )
    parser.add_argument(
        "--max-new-tokens", type=_bounded(16, 16384), metavar="N", help="Token limit per answer."
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="Run directory.")
    restart = parser.add_mutually_exclusive_group()
    restart.add_argument("--resume", action="store_true", help="Continue the run in DIR.")
    restart.add_argument("--overwrite", action="store_true", help="Start DIR's run again.")
    parser.add_argument("--retry-errors", action="store_true", help="With --resume, rerun errors.")
    parser.add_argument("--report-only", action="store_true", help="Rebuild DIR's report.")
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
    parser.add_argument("--synthetic", action="store_true", help="Run the synthetic suite.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the synthetic suite.")
    parser.add_argument(
        "--compare", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"), help="Compare two runs."
    )
    add_model_options(parser)


def run(args: argparse.Namespace) -> int:
    """Run the chosen mode; 0 on success, 2 on a usage error, 1 when the model fails."""
    configure_logging(args.log_level or os.environ.get("M2_LOG_LEVEL", "WARNING"))
    if args.compare:
        return _compare(args.compare[0], args.compare[1], args.out)
    if args.out is None:
        return _usage("--out DIR is required")
    if args.report_only:
        return _summary(write_report(args.out), args.out)
    if args.items and args.synthetic:
        return _usage("give either ITEMS or --synthetic, not both")
    try:
        if args.resume:
            _resume_settings(args, read_run_info(args.out))
        if not (args.items or args.synthetic):
            return _usage("give ITEMS (files or release directories) or --synthetic")
        prepare_out_dir(args.out, resume=args.resume, overwrite=args.overwrite)
        items, items_file = _items(args)
    except (OutputDirNotEmpty, ItemsFileError, RunConflict) as exc:
        return _usage(str(exc))
    if not items:
        return _usage("no items to run (check --benchmark and the items file)")
    try:
        settings = _settings(args, items)
    except ValueError as exc:
        return _usage(f"invalid option: {exc}")
    return _evaluate(args, settings, items, items_file)


def _resume_settings(args: argparse.Namespace, recorded: dict[str, object]) -> None:
    """Take the run's recorded items, model, samples and token limit where none are given.

    Raises:
        RunConflict: A given model, sample count or token limit differs from the run's.
    """
    given = {"model": args.model, "samples": args.samples, "max_new_tokens": args.max_new_tokens}
    check_resumable(args.out, {key: value for key, value in given.items() if value is not None})
    for key in given:
        if given[key] is None and recorded.get(key) is not None:
            setattr(args, key, recorded[key])
    items_file = recorded.get("items_file")
    if not (args.items or args.synthetic) and items_file:
        args.items, args.format = [Path(str(items_file))], "items"
        args.synthetic = Path(str(items_file)).parent.name == "synthetic"


def _items(args: argparse.Namespace) -> tuple[list[EvalItem], Path]:
    if args.synthetic:
        from m2_tools.evaluation.synthetic import generate_synthetic

        path = args.out / "synthetic" / "items.jsonl"
        if not (args.resume and path.exists()):
            generate_synthetic(path.parent, count=args.limit or _SYNTHETIC_COUNT, seed=args.seed)
        items = load_items(path)
    elif args.format == "items" and len(args.items) == 1:
        path = args.items[0]
        items = load_items(path)
    else:
        if args.format == "items":
            items = [item for file in args.items for item in load_items(file)]
        else:
            items = read_benchmark(args.format, args.items)
        path = args.out / "items.jsonl"
        write_items(items, path)
    if args.benchmark:
        items = [item for item in items if item.benchmark == args.benchmark]
    return items[: args.limit] if args.limit else items, path


def _settings(args: argparse.Namespace, items: Sequence[EvalItem]) -> Settings:
    """Settings for a long batch run; the items' own image folders are allowed."""
    extra: dict[str, object] = {"load_wait_s": 24 * 3600.0, "cache_size": 0}
    if "M2_REQUEST_TIMEOUT_S" not in os.environ:
        extra["request_timeout_s"] = 24 * 3600.0
    settings = settings_from_args(args, **extra)
    concurrency = args.concurrency or settings.max_batch_size
    refs = [ref for item in items for ref in (*item.images, item.video or "")]
    folders = {Path(ref).parent for ref in refs if ref.startswith("/")}
    allowed = list(settings.effective_allowed_dirs())
    for folder in sorted(folders, key=lambda p: len(p.parts)):
        if not any(folder.is_relative_to(root) for root in allowed):
            allowed.append(folder.resolve())
    return settings.model_copy(
        update={"allowed_dirs": tuple(allowed), "queue_size": max(settings.queue_size, concurrency)}
    )


def _evaluate(
    args: argparse.Namespace, settings: Settings, items: list[EvalItem], items_file: Path
) -> int:
    from m2_tools.evaluation.runner import run_evaluation
    from m2_tools.reasoner import M2Reasoner

    options = RunOptions(
        samples=args.samples or 1,
        concurrency=args.concurrency or settings.max_batch_size,
        max_new_tokens=args.max_new_tokens,
        resume=args.resume,
        retry_errors=args.retry_errors,
        progress=not args.no_progress,
        info={"model": settings.model, "items_file": str(items_file.resolve())},
    )
    reasoner = M2Reasoner(settings)
    try:
        result = run_evaluation(reasoner, items, args.out, options)
    except (OutputDirNotEmpty, RunConflict) as exc:
        return _usage(str(exc))
    except M2Error as exc:
        hint = ""
        if args.model is None and "M2_MODEL" not in os.environ:
            hint = (
                f"; no --model was given, so the default {settings.model!r} was tried. Pass "
                "--model DIR_OR_HUB_ID (for an offline check, a tiny model made with "
                "`m2-tools make-tiny-model DIR`)"
            )
        print(f"m2-tools eval: {exc.message}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; resume with: m2-tools eval --resume --out {args.out}", file=sys.stderr
        )
        return 130
    finally:
        reasoner.close()
    print(
        f"ran {result.ran} items ({result.skipped} already recorded) in {result.wall_s:.1f} s",
        file=sys.stderr,
    )
    return _summary(write_report(args.out), args.out)


def _summary(report: Report, out_dir: Path) -> int:
    for bench in report.benchmarks:
        rates = bench.rates
        judge = bench.counts.get("judge", 0)
        left = f"{judge} left to a GPT judge, " if judge else ""
        print(
            f"{bench.benchmark}: {bench.headline} {pct(bench.headline_value)}% (n={bench.n}; "
            f"{left}parse failures {pct(rates.parse_failure)}%, truncated "
            f"{pct(rates.truncation)}%, errors {pct(rates.error)}%)"
        )
    print(f"report: {out_dir / 'report.md'}")
    return 0


def _compare(run_a: Path, run_b: Path, out: Path | None) -> int:
    from m2_tools.evaluation.compare import compare_runs, render_comparison

    for path in (run_a, run_b):
        if not (path / "records.jsonl").exists():
            return _usage(f"{path} has no records.jsonl")
    comparison = compare_runs(run_a, run_b)
    markdown = render_comparison(comparison)
    if out is None:
        sys.stdout.write(markdown)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(comparison.model_dump_json(indent=2) + "\n", "utf-8")
    (out / "compare.md").write_text(markdown, "utf-8")
    print(
        f"{comparison.common_items} items in both runs: {len(comparison.gained)} gained, "
        f"{len(comparison.lost)} lost; see {out / 'compare.md'}"
    )
    return 0


def _usage(message: str) -> int:
    print(f"m2-tools eval: {message}", file=sys.stderr)
    return 2
