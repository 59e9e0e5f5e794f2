"""Dynamic batching: concurrent calls through the service versus one at a time and a raw batch.

Run ``python benchmarks/bench_batching.py``. A random-weight M2 checkpoint is written
with ``make_tiny_model`` at a size where the forward pass, not Python, is the cost
(hidden 512, 4 layers, about 11 M parameters: 44 MB of float32 weights, more than
the CPU caches hold). Then, in each round and on the same 16 questions:

- **ceiling**: ``generate_batch`` on the 16 prepared prompts (one padded prefill of
  all of them, then the decode loop), straight on the model;
- **concurrent**: 16 ``M2Reasoner.arun_tool`` calls gathered at once
  (``max_batch_size=16``), through the scheduler (``--scheduler``, iteration-level by
  default) and the engine's running batch;
- **one at a time**: the same 16 calls awaited in turn.

Decoding is greedy with a fixed ``max_new_tokens``; the cache is off. Each mode's
time is the median over the rounds, and the rounds rotate the order of the modes
so that a slow spell of a shared machine does not land on one mode only. It prints
a table, the rows of each prefill pass in the concurrent runs, one JSON line, and exits
1 when a target is missed (concurrent ≥ 0.8 × ceiling and ≥ 2 × one at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _common import add_model_options, machine, now_utc, small_checkpoint

from m2_tools import M2Reasoner, Settings
from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.engines.m2_native.generation import DecodeOptions, generate_batch
from m2_tools.prompts import SYSTEM_PROMPT, build_user_text

TOOL = "visual_math_reason"
TARGET_OF_CEILING = 0.8
TARGET_OVER_SERIAL = 2.0


class PassRecorder:
    """Notes the rows of every prefill pass (a decoder pass over more than one position)."""

    def __init__(self, engine: M2NativeEngine) -> None:
        self.prefill_rows: list[int] = []
        self._engine = engine
        self._hook: Any = None

    def __enter__(self) -> PassRecorder:
        def record(_module: Any, args: Any) -> None:
            if args[0].shape[1] > 1:
                self.prefill_rows.append(int(args[0].shape[0]))

        self._hook = self._engine.model.register_forward_pre_hook(record)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._hook.remove()


def questions(count: int) -> list[str]:
    return [f"Question {i}: what is {i} plus {i + 3}?" for i in range(count)]


def raw_requests(
    settings: Settings, texts: Sequence[str], max_new_tokens: int
) -> list[GenerationRequest]:
    """The rows the service builds for these questions (greedy, no images)."""
    return [
        GenerationRequest(
            system_prompt=SYSTEM_PROMPT,
            user_text=build_user_text(text, None),
            max_new_tokens=max_new_tokens,
            max_pixels=settings.max_pixels,
        )
        for text in texts
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--batch-wait-ms", type=float, default=Settings.model_fields["batch_wait_ms"].default
    )
    parser.add_argument("--scheduler", choices=("iteration", "static"), default="iteration")
    add_model_options(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="bench-batching-") as tmp:
        checkpoint = small_checkpoint(Path(tmp), args)
        settings = Settings(
            model=str(checkpoint),
            device="cpu",
            dtype="float32",
            max_batch_size=args.requests,
            queue_size=max(64, args.requests),
            batch_wait_ms=args.batch_wait_ms,
            cache_size=0,
            allowed_dirs=(),
            scheduler=args.scheduler,
        )
        engine = M2NativeEngine(settings)
        with M2Reasoner(settings, engine=engine) as reasoner:
            if not reasoner.wait_until_loaded(300) or reasoner.status().state != "ready":
                print(f"the model did not load: {reasoner.status().reason}", file=sys.stderr)
                return 2
            results = asyncio.run(measure(reasoner, engine, settings, args))
    load_after = os.getloadavg()

    times = {mode: statistics.median(runs) for mode, runs in results["seconds"].items()}
    tokens = results["tokens"]
    of_ceiling = times["ceiling"] / times["concurrent"]
    over_serial = times["one_at_a_time"] / times["concurrent"]
    met = {
        f"concurrent >= {TARGET_OF_CEILING} x ceiling": of_ceiling >= TARGET_OF_CEILING,
        f"concurrent >= {TARGET_OVER_SERIAL} x one at a time": over_serial >= TARGET_OVER_SERIAL,
    }

    print(f"{args.requests} requests x {args.max_new_tokens} new tokens, greedy, "
          f"{args.rounds} rounds, torch threads {args.threads}")  # fmt: skip
    print(f"{'mode':<15}{'median s':>10}{'req/s':>9}{'tokens/s':>10}{'runs (s)':>28}")
    for mode in ("ceiling", "concurrent", "one_at_a_time"):
        runs = " ".join(f"{s:.2f}" for s in results["seconds"][mode])
        print(
            f"{mode:<15}{times[mode]:>10.2f}{args.requests / times[mode]:>9.2f}"
            f"{tokens[mode] / times[mode]:>10.1f}{runs:>28}"
        )
    print(f"concurrent / ceiling throughput: {of_ceiling:.2f} (target >= {TARGET_OF_CEILING})")
    print(f"concurrent / one at a time:      {over_serial:.2f} (target >= {TARGET_OVER_SERIAL})")
    print(f"rows per prefill pass in the concurrent runs: {results['concurrent_batches']}")
    record = {
        "benchmark": "batching",
        "date": now_utc(),
        "machine": machine(args.threads, load_before, load_after),
        "config": {
            "requests": args.requests,
            "max_new_tokens": args.max_new_tokens,
            "rounds": args.rounds,
            "hidden_size": args.hidden_size,
            "intermediate_size": args.intermediate_size,
            "layers": args.layers,
            "batch_wait_ms": args.batch_wait_ms,
            "scheduler": args.scheduler,
        },
        "median_s": {mode: round(t, 4) for mode, t in times.items()},
        "runs_s": {mode: [round(t, 4) for t in runs] for mode, runs in results["seconds"].items()},
        "tokens": tokens,
        "concurrent_of_ceiling": round(of_ceiling, 3),
        "concurrent_over_one_at_a_time": round(over_serial, 3),
        "concurrent_batches": results["concurrent_batches"],
        "targets_met": met,
    }
    print(json.dumps(record))
    return 0 if all(met.values()) else 1


async def measure(
    reasoner: M2Reasoner, engine: M2NativeEngine, settings: Settings, args: argparse.Namespace
) -> dict[str, Any]:
    texts = questions(args.requests)
    rows = raw_requests(settings, texts, args.max_new_tokens)
    processor = engine.processor
    prompts = [processor.prepare(r.system_prompt, r.user_text, r.images) for r in rows]

    def ceiling() -> int:
        options = [DecodeOptions(max_new_tokens=args.max_new_tokens) for _ in prompts]
        outputs = generate_batch(
            engine.model, prompts, options, stop_ids=processor.stop_ids, pad_id=processor.pad_id
        )
        return sum(len(output.token_ids) for output in outputs)

    async def concurrent() -> int:
        calls = [
            reasoner.arun_tool(TOOL, {"question": text, "max_new_tokens": args.max_new_tokens})
            for text in texts
        ]
        return sum(result.usage.completion_tokens for result in await asyncio.gather(*calls))

    async def one_at_a_time() -> int:
        total = 0
        for text in texts:
            result = await reasoner.arun_tool(
                TOOL, {"question": text, "max_new_tokens": args.max_new_tokens}
            )
            total += result.usage.completion_tokens
        return total

    # Warm-up: first calls pay for lazy initialisation in torch and the tokenizer.
    ceiling()
    await reasoner.arun_tool(TOOL, {"question": "warm-up", "max_new_tokens": 16})

    seconds: dict[str, list[float]] = {"ceiling": [], "concurrent": [], "one_at_a_time": []}
    tokens: dict[str, int] = {}
    concurrent_batches: list[list[int]] = []
    modes = list(seconds)
    for round_index in range(args.rounds):
        order = modes[round_index % 3 :] + modes[: round_index % 3]
        for mode in order:
            started = time.perf_counter()
            if mode == "ceiling":
                produced = ceiling()
            elif mode == "concurrent":
                with PassRecorder(engine) as passes:
                    produced = await concurrent()
                concurrent_batches.append(passes.prefill_rows)
            else:
                produced = await one_at_a_time()
            seconds[mode].append(time.perf_counter() - started)
            tokens[mode] = produced
    return {"seconds": seconds, "tokens": tokens, "concurrent_batches": concurrent_batches}


if __name__ == "__main__":
    sys.exit(main())
