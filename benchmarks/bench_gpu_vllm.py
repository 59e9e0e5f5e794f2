"""Time per output token of M2 on vLLM (m2-vllm) at the real 7B shapes, at concurrency 1, 8, 32.

Needs a CUDA GPU with vLLM and m2-vllm in their own environment (``--vllm-bin``). The
checkpoint holds config, tokenizer and processor files at the M2-Reasoning-7B shapes but no
weights: ``m2-vllm serve --load-format dummy`` fills random bf16 weights on the GPU. Each row
is a tool-call-shaped prompt through m2-tools' OpenAI engine: the official system prompt,
one 800×600 image and a question; decoding is greedy, up to ``--new-tokens`` tokens (random
weights seldom write a stop token; a row that does is timed over the tokens it wrote).

Time per output token (TPOT) is measured per row from the stream: (last token - first
token) / (tokens - 1); the report gives its median and p90 per concurrency, with the time
to first token and the aggregate tokens/s.

Usage::

    python benchmarks/bench_gpu_vllm.py --vllm-bin .venv-vllm/bin        # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _common import now_utc, percentile
from PIL import Image

from m2_tools import Settings
from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.m2_native.tiny.spec import build_config, build_spec
from m2_tools.engines.m2_native.tiny.tokenizer import (
    build_tokenizer,
    write_json,
    write_processor_files,
    write_tokenizer_files,
)
from m2_tools.engines.openai_compat import OpenAICompatibleEngine
from m2_tools.prompts import SYSTEM_PROMPT, build_user_text

CONCURRENCY = (1, 8, 32)


def write_shapes_only(out: Path) -> Path:
    """Config, tokenizer and processor files at the 7B shapes; no weights (vLLM's dummy load)."""
    spec = build_spec("7b-shapes")
    tokenizer = build_tokenizer(spec.bpe_vocab_size)
    out.mkdir(parents=True, exist_ok=True)
    token_ids = write_tokenizer_files(out, tokenizer)
    config = build_config(spec, token_ids, spec.vocab_size or 152064, "bfloat16")
    write_json(out / "config.json", config, indent=2, newline=False)
    write_json(out / "generation_config.json", {"_from_model_config": True}, indent=2)
    write_processor_files(out, spec.max_pixels)
    return out


def start_server(
    vllm_bin: Path, model: Path, port: int, extra: list[str]
) -> subprocess.Popen[bytes]:
    """``m2-vllm serve`` with dummy bf16 weights; returns once /health answers."""
    command = [str(vllm_bin / "m2-vllm"), "serve", str(model), "--port", str(port),
               "--load-format", "dummy", "--dtype", "bfloat16", "--max-model-len", "8192",
               "--max-num-seqs", str(max(CONCURRENCY)), *extra]  # fmt: skip
    process = subprocess.Popen(command, stdout=sys.stderr, stderr=sys.stderr)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"m2-vllm serve exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        threading.Event().wait(2)
    process.kill()
    raise SystemExit("m2-vllm serve did not start in 15 minutes")


def measure(engine: OpenAICompatibleEngine, concurrency: int, new_tokens: int) -> dict[str, Any]:
    """One round of ``concurrency`` rows at once: TPOT and TTFT per row, aggregate tokens/s."""
    stamps: list[list[float]] = [[] for _ in range(concurrency)]
    image = Image.new("RGB", (800, 600), (200, 220, 240))
    user = build_user_text("In the figure, find the measure of angle ABC.", ["30", "45", "60"])
    requests = [
        GenerationRequest(SYSTEM_PROMPT, user, (image,), max_new_tokens=new_tokens,
                          on_token=lambda _n, s=stamps[i]: s.append(time.perf_counter()))
        for i in range(concurrency)
    ]  # fmt: skip
    started = time.perf_counter()
    results = engine.generate(requests)
    wall = time.perf_counter() - started
    errors = [r.error.message for r in results if r.error is not None]
    if errors:
        raise SystemExit(f"rows failed: {errors[:3]}")
    tpot = [(s[-1] - s[0]) / (len(s) - 1) for s in stamps if len(s) > 1]
    ttft = [s[0] - started for s in stamps if s]
    tokens = sum(r.completion_tokens for r in results)
    return {
        "concurrency": concurrency,
        "prompt_tokens": results[0].prompt_tokens,
        "new_tokens": new_tokens,
        "tpot_ms_p50": percentile(tpot, 50) * 1000,
        "tpot_ms_p90": percentile(tpot, 90) * 1000,
        "ttft_ms_p50": percentile(ttft, 50) * 1000,
        "tokens_per_s": tokens / wall,
    }


def main() -> None:
    """Write the shapes, start the server, measure each concurrency, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vllm-bin", type=Path, default=Path(".venv-vllm/bin"))
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("server_args", nargs="*", help="more m2-vllm serve options (after --)")
    args = parser.parse_args()
    model = write_shapes_only(args.model_dir or Path(tempfile.mkdtemp()) / "m2-7b-shapes")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_server(args.vllm_bin, model, port, args.server_args)
    engine = OpenAICompatibleEngine(
        Settings(engine="openai", engine_url=f"http://127.0.0.1:{port}/v1", model=str(model))
    )
    try:
        engine.load()
        engine.generate([GenerationRequest(SYSTEM_PROMPT, "warm-up", max_new_tokens=8)])
        rows = [measure(engine, n, args.new_tokens) for n in CONCURRENCY]
    finally:
        engine.close()
        server.terminate()
        server.wait(timeout=60)
    print(json.dumps({"when": now_utc(), "engine": "vllm+m2-vllm", "server_args": args.server_args,
                      "weights": "dummy bf16, 7B shapes", "rows": rows}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
