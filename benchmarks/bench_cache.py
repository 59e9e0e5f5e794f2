"""Result cache: latency of a cache hit versus a miss, through the service.

Run ``python benchmarks/bench_cache.py``. The service (``M2Reasoner.run_tool``) runs
a random-weight checkpoint of the ``small`` preset (written by ``make_tiny_model``;
its greedy text rarely meets a stop token, so a miss generates all of
``--max-new-tokens``) on the CPU with the result cache on. Each step asks a new
question (a miss), then asks it again (a hit). Two cases: a text-only question,
and one with the fixture's PNG figure as a data URI. A hit still reads and hashes
its images, because the key is their content, so the image case shows what intake
costs on a hit. It prints a table, one JSON line, and exits 1 unless every hit is
marked ``cache_hit`` and the p95 hit is faster than the p50 miss.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _common import add_threads_option, machine, now_utc, percentile

from m2_tools import M2Reasoner, Settings
from m2_tools.engines.m2_native.tiny import make_tiny_model
from m2_tools.schemas import M2Result

FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "m2-tiny-reference"
CHOICES = ["11.3", "22.4", "22.6", "25.6"]


def timed_call(reasoner: M2Reasoner, arguments: dict[str, Any]) -> tuple[float, M2Result]:
    started = time.perf_counter()
    result = reasoner.run_tool("visual_math_reason", arguments)
    return (time.perf_counter() - started) * 1000, result


def measure(
    reasoner: M2Reasoner, images: list[str], steps: int, warmup: int, new_tokens: int
) -> dict[str, list[float]]:
    misses: list[float] = []
    hits: list[float] = []
    tokens: list[float] = []
    for step in range(warmup + steps):
        arguments = {
            "question": f"Rhombus QRST #{step} has an area of 137.9 m². If RT is 12.2 m, find QS.",
            "choices": CHOICES,
            "images": images,
            "max_new_tokens": new_tokens,
        }
        miss_ms, miss = timed_call(reasoner, arguments)
        hit_ms, hit = timed_call(reasoner, arguments)
        if miss.timings_ms.cache_hit or not hit.timings_ms.cache_hit:
            raise RuntimeError(f"step {step}: the cache did not mark the miss and the hit")
        if step >= warmup:
            misses.append(miss_ms)
            hits.append(hit_ms)
            tokens.append(miss.usage.completion_tokens)
    return {"miss": misses, "hit": hits, "miss_tokens": tokens}


def run_cases(
    checkpoint: Path, cases: dict[str, list[str]], args: argparse.Namespace
) -> dict[str, dict[str, list[float]]]:
    settings = Settings(
        model=str(checkpoint),
        device="cpu",
        dtype="float32",
        cache_size=4 * (args.steps + args.warmup),
        allowed_dirs=(),
    )
    with M2Reasoner(settings) as reasoner:
        if not reasoner.wait_until_loaded(300) or reasoner.status().state != "ready":
            raise SystemExit(f"the model did not load: {reasoner.status().reason}")
        return {
            name: measure(reasoner, images, args.steps, args.warmup, args.max_new_tokens)
            for name, images in cases.items()
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="miss/hit pairs per case")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--checkpoint", type=Path, help="an existing checkpoint instead")
    add_threads_option(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    figure = (FIXTURE / "images" / "rhombus.png").read_bytes()
    cases: dict[str, list[str]] = {
        "text only": [],
        "one PNG image": ["data:image/png;base64," + base64.b64encode(figure).decode()],
    }
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        checkpoint = args.checkpoint or make_tiny_model(Path(tmp) / "model", preset="small")
        results = run_cases(checkpoint, cases, args)
    load_after = os.getloadavg()

    figures: dict[str, dict[str, float]] = {}
    print(f"{args.steps} miss/hit pairs per case after {args.warmup} warm-up pairs, "
          f"{args.max_new_tokens} new tokens, torch threads {args.threads}")  # fmt: skip
    header = ("case", "miss p50", "miss p95", "hit p50", "hit p95", "speed-up", "tokens/miss")
    print(f"{header[0]:<15}" + "".join(f"{h:>10}" for h in header[1:6]) + f"{header[6]:>13}")
    for name, timings in results.items():
        row = {
            "miss_p50": percentile(timings["miss"], 50),
            "miss_p95": percentile(timings["miss"], 95),
            "hit_p50": percentile(timings["hit"], 50),
            "hit_p95": percentile(timings["hit"], 95),
        }
        row["speedup_p50"] = row["miss_p50"] / row["hit_p50"]
        row["mean_miss_tokens"] = sum(timings["miss_tokens"]) / len(timings["miss_tokens"])
        figures[name] = row
        print(
            f"{name:<15}{row['miss_p50']:>10.2f}{row['miss_p95']:>10.2f}"
            f"{row['hit_p50']:>10.3f}{row['hit_p95']:>10.3f}{row['speedup_p50']:>9.0f}x"
            f"{row['mean_miss_tokens']:>13.1f}"
        )
    print("(milliseconds)")
    met = all(row["hit_p95"] < row["miss_p50"] for row in figures.values())
    record = {
        "benchmark": "cache",
        "date": now_utc(),
        "machine": machine(args.threads, load_before, load_after),
        "config": {
            "checkpoint": str(args.checkpoint) if args.checkpoint else "make_tiny_model small",
            "steps": args.steps,
            "warmup": args.warmup,
            "max_new_tokens": args.max_new_tokens,
        },
        "ms": {name: {k: round(v, 3) for k, v in row.items()} for name, row in figures.items()},
        "hits_faster_than_misses": met,
    }
    print(json.dumps(record))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
