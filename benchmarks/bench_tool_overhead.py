"""What the MCP tool layer adds to a call: an in-memory MCP call versus a direct engine call.

Run ``python benchmarks/bench_tool_overhead.py``. Both paths run the golden tiny
checkpoint (``tests/fixtures/m2-tiny-reference/checkpoint``) on the CPU with the
same prompt and 16 new tokens (the tools' minimum), greedy, with the result cache
off so that every call really generates:

- **direct**: ``engine.generate([request])`` on the calling thread;
- **mcp**: ``client.call_tool("visual_math_reason", ...)`` through ``mcp.Client(server)``
  in memory: argument validation, the queue and its worker thread, progress
  plumbing, parsing, the result model and the MCP result.

The two are timed in alternation, so drift of a shared machine hits both alike.
The added cost is reported two ways: the difference of the two medians (and
p95s), and the median of the per-pair differences. It prints a table, one JSON
line, and exits 1 when the added p50 misses the target (under 5 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from _common import add_threads_option, machine, now_utc, percentile
from mcp import Client

from m2_tools import M2Reasoner, Settings
from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.prompts import SYSTEM_PROMPT, build_user_text
from mcp_server import create_server

CHECKPOINT = Path(__file__).parents[1] / "tests" / "fixtures" / "m2-tiny-reference" / "checkpoint"
QUESTION = "Rhombus QRST has an area of 137.9 square meters. If RT is 12.2 meters, find QS."
CHOICES = ["11.3", "22.4", "22.6", "25.6"]
NEW_TOKENS = 16
TARGET_ADDED_P50_MS = 5.0


async def measure(
    engine: M2NativeEngine, reasoner: M2Reasoner, settings: Settings, calls: int, warmup: int
) -> tuple[list[float], list[float]]:
    request = GenerationRequest(
        system_prompt=SYSTEM_PROMPT,
        user_text=build_user_text(QUESTION, CHOICES),
        max_new_tokens=NEW_TOKENS,
        max_pixels=settings.max_pixels,
    )
    arguments = {"question": QUESTION, "choices": CHOICES, "max_new_tokens": NEW_TOKENS}
    direct_ms: list[float] = []
    mcp_ms: list[float] = []
    async with Client(create_server(reasoner)) as client:
        for index in range(warmup + calls):
            started = time.perf_counter()
            (row,) = engine.generate([request])
            direct = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            result = await client.call_tool("visual_math_reason", arguments)
            via_mcp = (time.perf_counter() - started) * 1000
            if row.error is not None or result.is_error:
                raise RuntimeError(f"a call failed: {row.error or result.content}")
            if result.structured_content["usage"]["completion_tokens"] != row.completion_tokens:
                raise RuntimeError("the two paths generated different amounts of text")
            if index >= warmup:
                direct_ms.append(direct)
                mcp_ms.append(via_mcp)
    return direct_ms, mcp_ms


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="measured pairs")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument(
        "--batch-wait-ms",
        type=float,
        default=Settings.model_fields["batch_wait_ms"].default,
        help="the service's batching window (used only while other calls hold queue slots)",
    )
    add_threads_option(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    settings = Settings(
        model=str(args.checkpoint),
        device="cpu",
        dtype="float32",
        cache_size=0,
        allowed_dirs=(),
        batch_wait_ms=args.batch_wait_ms,
    )
    engine = M2NativeEngine(settings)
    with M2Reasoner(settings, engine=engine) as reasoner:
        if not reasoner.wait_until_loaded(300) or reasoner.status().state != "ready":
            print(f"the model did not load: {reasoner.status().reason}", file=sys.stderr)
            return 2
        direct, via_mcp = asyncio.run(measure(engine, reasoner, settings, args.calls, args.warmup))
    load_after = os.getloadavg()

    pairs = [m - d for m, d in zip(via_mcp, direct, strict=True)]
    stats = {
        name: {"p50": percentile(values, 50), "p95": percentile(values, 95)}
        for name, values in (("direct", direct), ("mcp", via_mcp), ("pair_difference", pairs))
    }
    added_p50 = stats["mcp"]["p50"] - stats["direct"]["p50"]
    added_p95 = stats["mcp"]["p95"] - stats["direct"]["p95"]
    met = added_p50 < TARGET_ADDED_P50_MS

    print(f"{args.calls} pairs after {args.warmup} warm-up pairs, {NEW_TOKENS} new tokens, "
          f"batch_wait_ms {args.batch_wait_ms:g}, torch threads {args.threads}")  # fmt: skip
    print(f"{'path':<24}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for name, values in (("direct engine.generate", direct), ("MCP call (in memory)", via_mcp)):
        print(
            f"{name:<24}{percentile(values, 50):>10.2f}{percentile(values, 95):>10.2f}"
            f"{statistics.fmean(values):>10.2f}"
        )
    print(f"{'added (difference)':<24}{added_p50:>10.2f}{added_p95:>10.2f}")
    print(
        f"{'added (per pair)':<24}{stats['pair_difference']['p50']:>10.2f}"
        f"{stats['pair_difference']['p95']:>10.2f}"
    )
    print(f"target: added p50 < {TARGET_ADDED_P50_MS} ms: {'met' if met else 'MISSED'}")
    record = {
        "benchmark": "tool_overhead",
        "date": now_utc(),
        "machine": machine(args.threads, load_before, load_after),
        "config": {
            "calls": args.calls,
            "warmup": args.warmup,
            "new_tokens": NEW_TOKENS,
            "batch_wait_ms": args.batch_wait_ms,
        },
        "ms": {name: {k: round(v, 3) for k, v in s.items()} for name, s in stats.items()},
        "added_ms": {"p50": round(added_p50, 3), "p95": round(added_p95, 3)},
        "target_added_p50_ms": TARGET_ADDED_P50_MS,
        "target_met": met,
    }
    print(json.dumps(record))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
