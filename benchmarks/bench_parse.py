"""Time ``parse_response`` on typical ~2 KB M2 outputs.

Run ``python benchmarks/bench_parse.py``. It prints a table per case and one JSON
line with mean/p50/p95 microseconds over all calls. Every call parses a distinct
text with distinct options, so the parser's small caches do not flatter the numbers.
On a busy machine ``max_us`` (and so the mean) shows scheduler pauses; p50 and p95
are the figures to compare, or run with ``--clock cpu`` to count only CPU time.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from m2_tools.answers.parsing import parse_response

_REASONING = (
    "Let me analyze the figure step by step. The triangle ABC has a right angle at C, "
    "with AC = {a} cm and BC = 12.2 cm. By the Pythagorean theorem, "
    "$AB = \\sqrt{{AC^2 + BC^2}}$. First compute $AC^2 = {a}^2$ and $BC^2 = 148.84$. "
    "Wait, I should double-check the labels in the image: the side marked 12.2 is "
    "opposite to angle A, so $\\sin A = \\frac{{12.2}}{{AB}}$. "
)
_CASES = ("mc_letter_box", "mc_value_box", "free_fraction_box", "untagged_phrase")


def _output(case: str, i: int) -> tuple[str, Sequence[str] | None]:
    a = 10 + i % 89
    think = (_REASONING.format(a=a) * 5)[:1800]
    options = [f"{a}.3", f"{a + 11}.4", f"{a + 11}.6", f"{a + 14}.6"]
    if case == "mc_letter_box":
        body = f"<answer>\n\\boxed{{C. {a + 11}.6}}\n</answer><|im_end|>"
        return f"<think>\n{think}\n</think>\n{body}", options
    if case == "mc_value_box":
        return f"<think>\n{think}\n</think>\n<answer>\\boxed{{{a + 11}.4}}</answer>", options
    if case == "free_fraction_box":
        body = f"<answer>\nThe answer is $\\boxed{{\\dfrac{{{a}}}{{4}}}}$.\n</answer>"
        return f"<think>\n{think}\n</think>\n{body}", None
    return f"<think>\n{think}\n</think>\nTherefore, the final answer is {a}.5 cm.", None


def _time_case(case: str, calls: int, timer: Callable[[], int]) -> list[float]:
    inputs = [_output(case, i) for i in range(calls)]
    for text, choices in inputs[:50]:
        parse_response(text, choices)
    samples = []
    # Why: like timeit, keep the collector's pauses out of a sub-millisecond measurement.
    gc.disable()
    try:
        for text, choices in inputs:
            start = timer()
            parse_response(text, choices)
            samples.append((timer() - start) / 1000.0)
    finally:
        gc.enable()
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "mean_us": round(statistics.fmean(ordered), 1),
        "p50_us": round(ordered[len(ordered) // 2], 1),
        "p95_us": round(ordered[int(len(ordered) * 0.95)], 1),
        "max_us": round(ordered[-1], 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="calls per case")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: perf_counter; cpu: this process's CPU time, which ignores scheduler pauses",
    )
    args = parser.parse_args(argv)
    timer = time.perf_counter_ns if args.clock == "wall" else time.process_time_ns
    size = len(_output("mc_letter_box", 0)[0])
    print(
        f"parse_response, ~{size} B outputs, {args.calls} distinct calls/case, {args.clock} clock"
    )
    print(f"{'case':<20} {'mean µs':>9} {'p50 µs':>9} {'p95 µs':>9} {'max µs':>9}")
    everything: list[float] = []
    per_case: dict[str, dict[str, float]] = {}
    for case in _CASES:
        samples = _time_case(case, args.calls, timer)
        everything += samples
        row = per_case[case] = _summary(samples)
        print(
            f"{case:<20} {row['mean_us']:>9} {row['p50_us']:>9} "
            f"{row['p95_us']:>9} {row['max_us']:>9}"
        )
    overall = _summary(everything)
    summary = {"benchmark": "parse_response", "clock": args.clock, "bytes": size, **overall}
    print(json.dumps({**summary, "cases": per_case}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
