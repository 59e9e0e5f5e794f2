"""Mixed workload: 32 calls of 16 to 512 tokens arriving as a Poisson stream, static vs iteration.

Run ``python benchmarks/bench_mixed_workload.py``. A random-weight M2 checkpoint is
written with ``make_tiny_model`` (the ``small`` preset at hidden 512, 4 layers, as in
``bench_batching.py``). Each policy (``Settings.scheduler``) gets the same stream,
drawn from ``--seed``: ``--calls`` calls through ``M2Reasoner.arun_tool``, each with
its own question and a ``max_new_tokens`` drawn uniformly from 16 to 512, arriving with
exponential gaps at ``--rate`` calls per second. Random weights rarely meet a stop
token, so each call generates about its limit (the table counts what was generated).

Per policy it reports the latency percentiles (arrival to result), the latency per
generated token, and the throughput (tokens generated over the time from the first
arrival to the last result). It prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _common import add_model_options, machine, now_utc, percentile, small_checkpoint

from m2_tools import M2Reasoner, Settings

TOOL = "visual_math_reason"


def workload(args: argparse.Namespace) -> list[tuple[float, int]]:
    """(gap before the call in seconds, max_new_tokens) per call, the same for each policy."""
    rng = random.Random(args.seed)
    return [
        (rng.expovariate(args.rate), rng.randint(args.min_tokens, args.max_tokens))
        for _ in range(args.calls)
    ]


async def run_stream(reasoner: M2Reasoner, calls: Sequence[tuple[float, int]]) -> dict[str, Any]:
    latencies: list[float] = []
    per_token_ms: list[float] = []
    tokens = 0

    async def one(index: int, limit: int) -> None:
        nonlocal tokens
        arrived = time.perf_counter()
        result = await reasoner.arun_tool(
            TOOL, {"question": f"Call {index}: explain {index} in full.", "max_new_tokens": limit}
        )
        latency = time.perf_counter() - arrived
        latencies.append(latency)
        per_token_ms.append(latency * 1000 / max(1, result.usage.completion_tokens))
        tokens += result.usage.completion_tokens

    started = time.perf_counter()
    tasks = []
    for index, (gap, limit) in enumerate(calls):
        await asyncio.sleep(gap)
        tasks.append(asyncio.create_task(one(index, limit)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    return {
        "p50_s": round(percentile(latencies, 50), 3),
        "p95_s": round(percentile(latencies, 95), 3),
        "max_s": round(max(latencies), 3),
        "p50_ms_per_token": round(percentile(per_token_ms, 50), 2),
        "p95_ms_per_token": round(percentile(per_token_ms, 95), 2),
        "tokens": tokens,
        "elapsed_s": round(elapsed, 2),
        "tokens_per_s": round(tokens / elapsed, 1),
    }


def measure(checkpoint: Path, policy: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(
        model=str(checkpoint),
        device="cpu",
        dtype="float32",
        scheduler=policy,
        max_batch_size=args.max_batch_size,
        queue_size=max(64, args.calls),
        cache_size=0,
        allowed_dirs=(),
    )
    with M2Reasoner(settings) as reasoner:
        if not reasoner.wait_until_loaded(300) or reasoner.status().state != "ready":
            raise RuntimeError(f"the model did not load: {reasoner.status().reason}")

        async def go() -> dict[str, Any]:
            await reasoner.arun_tool(TOOL, {"question": "warm-up", "max_new_tokens": 16})
            return await run_stream(reasoner, workload(args))

        return asyncio.run(go())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=32)
    parser.add_argument("--min-tokens", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--rate", type=float, default=1.0, help="arrivals per second")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--policies", default="static,iteration")
    add_model_options(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-mixed-") as tmp:
        checkpoint = small_checkpoint(Path(tmp), args)
        figures = {p: measure(checkpoint, p, args) for p in args.policies.split(",")}
    load_after = os.getloadavg()

    limits = [limit for _, limit in workload(args)]
    print(
        f"{args.calls} calls, max_new_tokens {min(limits)}-{max(limits)} (sum {sum(limits)}), "
        f"Poisson arrivals at {args.rate:g}/s, max_batch_size {args.max_batch_size}"
    )
    print(f"{'policy':<11}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'p50 ms/tok':>12}"
          f"{'p95 ms/tok':>12}{'tokens/s':>10}{'elapsed s':>11}")  # fmt: skip
    for policy, f in figures.items():
        print(f"{policy:<11}{f['p50_s']:>8.2f}{f['p95_s']:>8.2f}{f['max_s']:>8.2f}"
              f"{f['p50_ms_per_token']:>12.1f}{f['p95_ms_per_token']:>12.1f}"
              f"{f['tokens_per_s']:>10.1f}{f['elapsed_s']:>11.1f}")  # fmt: skip
    record = {
        "benchmark": "mixed_workload",
        "date": now_utc(),
        "machine": machine(args.threads, load_before, load_after),
        "config": {
            k: getattr(args, k)
            for k in ("calls", "min_tokens", "max_tokens", "rate", "seed", "max_batch_size")
        },
        "figures": figures,
    }
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
