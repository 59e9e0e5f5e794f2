"""Samples share their prefix: ``samples=8`` against ``samples=1`` on an image prompt.

Run ``python benchmarks/bench_samples.py``. A random-weight M2 checkpoint is written
with ``make_tiny_model`` (the ``small`` preset at hidden 512, 4 layers) and asked one
question about a 448×448 image through ``M2Reasoner.arun_tool``:

- **samples=1**: one greedy row;
- **samples=8**: one call, eight sampled rows: one image pass and one prompt prefill,
  then eight decoding rows that copy the prefix cache;
- **8 separate calls**: eight concurrent ``samples=1`` calls on the same image (each
  prefills for itself), for comparison.

Each mode's latency is the median over ``--rounds`` rounds (modes rotate within a
round). The vision-tower and prefill passes of one call of each mode are counted with
forward hooks. It prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
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
from PIL import Image

from m2_tools import M2Reasoner, Settings
from m2_tools.engines.m2_native import M2NativeEngine

TOOL = "visual_math_reason"
MODES = ("samples=1", "samples=8", "8 separate calls")


def image_uri(side: int) -> str:
    """A deterministic noisy RGB PNG, as a data URI."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (side, side, 3), generator=generator, dtype=torch.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.numpy()).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class Passes:
    """Counts vision-tower passes and prefill passes (decoder passes over > 1 position)."""

    def __init__(self, engine: M2NativeEngine) -> None:
        self.vision = self.prefill = 0
        self.prefill_tokens = 0

        def on_decoder(_module: Any, args: Any) -> None:
            if args[0].shape[1] > 1:
                self.prefill += 1
                self.prefill_tokens += int(args[0].shape[0] * args[0].shape[1])

        def on_vision(_module: Any, _args: Any) -> None:
            self.vision += 1

        self._hooks = [
            engine.model.register_forward_pre_hook(on_decoder),
            engine.model.vision_model.register_forward_pre_hook(on_vision),
        ]

    def close(self) -> dict[str, int]:
        for hook in self._hooks:
            hook.remove()
        return {
            "vision": self.vision,
            "prefill": self.prefill,
            "prefill_tokens": self.prefill_tokens,
        }


async def run_mode(reasoner: M2Reasoner, mode: str, arguments: dict[str, Any]) -> int:
    if mode == "samples=1":
        return (await reasoner.arun_tool(TOOL, arguments)).usage.completion_tokens
    if mode == "samples=8":
        result = await reasoner.arun_tool(TOOL, {**arguments, "samples": 8})
        return result.usage.completion_tokens
    calls = [reasoner.arun_tool(TOOL, arguments) for _ in range(8)]
    return sum(r.usage.completion_tokens for r in await asyncio.gather(*calls))


async def measure(
    reasoner: M2Reasoner, engine: M2NativeEngine, args: argparse.Namespace
) -> dict[str, Any]:
    arguments = {
        "question": "How many squares does the picture show?",
        "images": [image_uri(args.image_side)],
        "max_new_tokens": args.max_new_tokens,
    }
    await reasoner.arun_tool(TOOL, {**arguments, "max_new_tokens": 16})  # warm-up
    passes: dict[str, dict[str, int]] = {}
    tokens: dict[str, int] = {}
    for mode in MODES:
        counter = Passes(engine)
        tokens[mode] = await run_mode(reasoner, mode, arguments)
        passes[mode] = counter.close()
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    for round_index in range(args.rounds):
        order = MODES[round_index % 3 :] + MODES[: round_index % 3]
        for mode in order:
            started = time.perf_counter()
            await run_mode(reasoner, mode, arguments)
            seconds[mode].append(time.perf_counter() - started)
    return {"seconds": seconds, "passes": passes, "tokens": tokens}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image-side", type=int, default=448)
    add_model_options(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-samples-") as tmp:
        checkpoint = small_checkpoint(Path(tmp), args)
        settings = Settings(
            model=str(checkpoint), device="cpu", dtype="float32", cache_size=0, allowed_dirs=()
        )
        engine = M2NativeEngine(settings)
        with M2Reasoner(settings, engine=engine) as reasoner:
            if not reasoner.wait_until_loaded(300) or reasoner.status().state != "ready":
                print(f"the model did not load: {reasoner.status().reason}", file=sys.stderr)
                return 2
            results = asyncio.run(measure(reasoner, engine, args))
    load_after = os.getloadavg()

    median = {mode: statistics.median(runs) for mode, runs in results["seconds"].items()}
    ratio = median["samples=8"] / median["samples=1"]
    separate = median["8 separate calls"] / median["samples=8"]
    print(f"{args.image_side}x{args.image_side} image, {args.max_new_tokens} new tokens per row, "
          f"{args.rounds} rounds, torch threads {args.threads}")  # fmt: skip
    print(f"{'mode':<18}{'median s':>9}{'tokens':>8}{'vision':>8}{'prefills':>10}"
          f"{'prefill tokens':>16}")  # fmt: skip
    for mode in MODES:
        p = results["passes"][mode]
        print(f"{mode:<18}{median[mode]:>9.2f}{results['tokens'][mode]:>8}{p['vision']:>8}"
              f"{p['prefill']:>10}{p['prefill_tokens']:>16}")  # fmt: skip
    print(f"samples=8 / samples=1 latency: {ratio:.2f}x")
    print(f"8 separate calls / samples=8:  {separate:.2f}x")
    record = {
        "benchmark": "samples",
        "date": now_utc(),
        "machine": machine(args.threads, load_before, load_after),
        "config": {
            "max_new_tokens": args.max_new_tokens,
            "rounds": args.rounds,
            "image_side": args.image_side,
            "hidden_size": args.hidden_size,
            "layers": args.layers,
        },
        "median_s": {mode: round(t, 4) for mode, t in median.items()},
        "runs_s": {m: [round(t, 4) for t in runs] for m, runs in results["seconds"].items()},
        "passes": results["passes"],
        "tokens": results["tokens"],
        "samples8_over_samples1": round(ratio, 3),
        "separate_over_samples8": round(separate, 3),
    }
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
