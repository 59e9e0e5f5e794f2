"""Head-of-line blocking: a short call's latency behind a long call, over its latency alone.

Run ``python benchmarks/bench_head_of_line.py``. A random-weight M2 checkpoint is
written with ``make_tiny_model`` (the ``small`` preset at hidden 512, 4 layers, as in
``bench_batching.py``). A *long* call (384 new tokens) starts; once it has generated
``--lead-tokens`` tokens a *short* call (16 new tokens) arrives, and its latency, from
submission to result, is divided by the latency of the same short call alone. Both
scheduler policies are measured, at two levels:

- **scheduler**: rows submitted straight to ``Scheduler`` over ``M2NativeEngine``;
- **reasoner**: ``M2Reasoner.arun_tool`` calls (validation, parsing, result model).

Each figure is the median over ``--rounds`` rounds; within a round the two orders
(alone, behind) alternate so that drift of a shared machine hits both. It prints a
table, one JSON line, and exits 1 when a target is missed: iteration ≤ 1.5× at the
scheduler level and < 2.5× through the reasoner.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from _common import add_model_options, machine, now_utc, small_checkpoint

from m2_tools import M2Reasoner, Settings
from m2_tools.engines.base import GenerationRequest, GenerationResult
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.prompts import SYSTEM_PROMPT, build_user_text
from m2_tools.serving.scheduler import Scheduler

TOOL = "visual_math_reason"
CONFIG_KEYS = ("long_tokens", "short_tokens", "lead_tokens", "rounds", "hidden_size", "layers")
TARGET_SCHEDULER = 1.5
TARGET_REASONER = 2.5
LONG_QUESTION = "Describe every step of the long derivation, then answer."
SHORT_QUESTION = "What is 2 plus 3?"


def request(text: str, tokens: int, on_token: Callable[[int], None] | None = None) -> Any:
    return GenerationRequest(
        SYSTEM_PROMPT, build_user_text(text, None), max_new_tokens=tokens, on_token=on_token
    )


def scheduler_round(scheduler: Scheduler, args: argparse.Namespace) -> tuple[float, float, int]:
    """One alone and one behind measurement through the scheduler; returns both and tokens."""

    def run(row: GenerationRequest) -> tuple[float, GenerationResult]:
        started = time.perf_counter()
        (result,) = scheduler.reserve().submit([row], threading.Event()).future.result(600)
        if result.error is not None:
            raise RuntimeError(f"a call failed: {result.error}")
        return time.perf_counter() - started, result

    alone, _ = run(request(SHORT_QUESTION, args.short_tokens))
    lead = threading.Event()
    long_row = request(
        LONG_QUESTION, args.long_tokens, lambda n: lead.set() if n >= args.lead_tokens else None
    )
    long_job = scheduler.reserve().submit([long_row], threading.Event())
    if not lead.wait(600):
        raise RuntimeError("the long call did not start")
    behind, _ = run(request(SHORT_QUESTION, args.short_tokens))
    (long_result,) = long_job.future.result(600)
    return alone, behind, long_result.completion_tokens


async def reasoner_round(
    reasoner: M2Reasoner, args: argparse.Namespace
) -> tuple[float, float, int]:
    """The same through ``M2Reasoner.arun_tool``."""
    short = {"question": SHORT_QUESTION, "max_new_tokens": args.short_tokens}
    started = time.perf_counter()
    await reasoner.arun_tool(TOOL, short)
    alone = time.perf_counter() - started
    lead = asyncio.Event()

    async def on_progress(event: Any) -> None:
        if event.phase == "generating" and event.done >= args.lead_tokens:
            lead.set()

    long_call = asyncio.create_task(
        reasoner.arun_tool(
            TOOL,
            {"question": LONG_QUESTION, "max_new_tokens": args.long_tokens},
            progress=on_progress,
        )
    )
    leading = asyncio.create_task(lead.wait())
    await asyncio.wait({leading, long_call}, timeout=600, return_when=asyncio.FIRST_COMPLETED)
    if not lead.is_set():
        leading.cancel()
        ended = long_call.result() if long_call.done() else None
        raise RuntimeError(
            f"the long call ended ({ended.usage.completion_tokens} tokens) before its progress "
            f"reached --lead-tokens {args.lead_tokens}: give it more --long-tokens"
            if ended
            else "the long call made no progress in 600 s"
        )
    started = time.perf_counter()
    await reasoner.arun_tool(TOOL, short)
    behind = time.perf_counter() - started
    long_result = await long_call
    return alone, behind, long_result.usage.completion_tokens


def measure_policy(checkpoint: Path, policy: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(
        model=str(checkpoint),
        device="cpu",
        dtype="float32",
        scheduler=policy,
        cache_size=0,
        allowed_dirs=(),
    )
    engine = M2NativeEngine(settings)
    engine.load()
    scheduler = Scheduler(capacity=8, max_batch_size=8, batch_wait_s=0.005, policy=policy)  # type: ignore[arg-type]
    scheduler.start(engine)
    rows: list[tuple[float, float, int]] = []
    try:
        scheduler_round(scheduler, argparse.Namespace(**{**vars(args), "long_tokens": 32}))
        rows = [scheduler_round(scheduler, args) for _ in range(args.rounds)]
    finally:
        scheduler.close()
        engine.close()
    with M2Reasoner(settings) as reasoner:
        if not reasoner.wait_until_loaded(300) or reasoner.status().state != "ready":
            raise RuntimeError(f"the model did not load: {reasoner.status().reason}")

        async def rounds() -> list[tuple[float, float, int]]:
            await reasoner.arun_tool(TOOL, {"question": "warm-up", "max_new_tokens": 16})
            return [await reasoner_round(reasoner, args) for _ in range(args.rounds)]

        via_reasoner = asyncio.run(rounds())
    return {"scheduler": summarise(rows), "reasoner": summarise(via_reasoner)}


def summarise(rows: Sequence[tuple[float, float, int]]) -> dict[str, Any]:
    alone = statistics.median(r[0] for r in rows)
    behind = statistics.median(r[1] for r in rows)
    return {
        "alone_s": round(alone, 4),
        "behind_s": round(behind, 4),
        "ratio": round(behind / alone, 3),
        "ratios": [round(r[1] / r[0], 3) for r in rows],
        "long_tokens": [r[2] for r in rows],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-tokens", type=int, default=384)
    parser.add_argument("--short-tokens", type=int, default=16)
    parser.add_argument("--lead-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--policies", default="iteration,static")
    add_model_options(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-hol-") as tmp:
        checkpoint = small_checkpoint(Path(tmp), args)
        figures = {p: measure_policy(checkpoint, p, args) for p in args.policies.split(",")}
    load_after = os.getloadavg()

    print(
        f"short call ({args.short_tokens} tokens) behind a long one ({args.long_tokens} tokens, "
        f"{args.lead_tokens} already generated); median of {args.rounds} rounds"
    )
    print(f"{'policy':<11}{'level':<11}{'alone s':>9}{'behind s':>10}{'ratio':>8}  per round")
    for policy, levels in figures.items():
        for level, f in levels.items():
            per_round = " ".join(f"{r:.2f}" for r in f["ratios"])
            print(f"{policy:<11}{level:<11}{f['alone_s']:>9.3f}{f['behind_s']:>10.3f}"
                  f"{f['ratio']:>7.2f}x  {per_round}")  # fmt: skip
    met: dict[str, bool] = {}
    if "iteration" in figures:
        met[f"iteration, scheduler <= {TARGET_SCHEDULER}x"] = (
            figures["iteration"]["scheduler"]["ratio"] <= TARGET_SCHEDULER
        )
        met[f"iteration, reasoner < {TARGET_REASONER}x"] = (
            figures["iteration"]["reasoner"]["ratio"] < TARGET_REASONER
        )
    record = {
        "benchmark": "head_of_line",
        "date": now_utc(),
        "machine": machine(args.threads, load_before, load_after),
        "config": {k: getattr(args, k) for k in CONFIG_KEYS},
        "figures": figures,
        "targets_met": met,
    }
    print(json.dumps(record))
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
