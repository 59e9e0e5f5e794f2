"""``m2-vllm serve`` on 127.0.0.1, driven by m2-tools' OpenAI-compatible engine.

Runs in m2-tools' own environment (``make test-vllm`` passes ``--vllm-bin``, the vLLM
environment's ``bin``). One server serves the ``small`` checkpoint for the whole module:

- ``m2-tools ask --engine openai`` returns the native engine's ``raw_output`` and usage;
- an MCP call through ``m2-tools serve --engine openai`` does too;
- a cancelled row is aborted inside vLLM (its running-requests gauge drops to zero);
- a short call behind a long one waits far less than with a batch-at-a-time engine
  (the head-of-line ratio is written to ``head_of_line.json`` in the reference folder).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("m2_tools")

from m2_tools import Settings
from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.openai_compat import OpenAICompatibleEngine
from m2_tools.prompts import SYSTEM_PROMPT, build_user_text

REPO = Path(__file__).resolve().parents[3]
IMAGES = REPO / "tests" / "fixtures" / "m2-tiny-reference" / "images"
START_TIMEOUT_S = 420.0
CALL_TIMEOUT_S = 300.0
QUESTION = "Rhombus QRST has an area of 137.9 square meters. If RT is 12.2 meters, find QS."
CHOICES = ["11.3", "22.4", "22.6", "25.6"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    ]
    return sum(values)


@pytest.fixture(scope="module")
def server(
    reference: dict[str, Any], vllm_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    checkpoint = reference["checkpoints"]["m_rope"]["path"]
    port = _free_port()
    log = (tmp_path_factory.mktemp("vllm") / "server.log").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("M2_")}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    process = subprocess.Popen(
        [str(vllm_bin / "m2-vllm"), "serve", checkpoint, "--port", str(port), "--dtype",
         "float32", "--max-model-len", "4608", "--max-num-seqs", "8", "--enforce-eager"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"m2-vllm serve exited with {process.returncode}; see {log.name}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"m2-vllm serve did not start in {START_TIMEOUT_S:.0f} s")
            threading.Event().wait(1.0)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _ask(*options: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "m2_tools.cli", "ask", "--question", QUESTION,
               "--image", str(IMAGES / "rhombus.png"), "--allow-dir", str(IMAGES),
               "--max-new-tokens", "32", "--include-raw", *options]  # fmt: skip
    for choice in CHOICES:
        command += ["--choice", choice]
    env = {k: v for k, v in os.environ.items() if not k.startswith("M2_")}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CALL_TIMEOUT_S, env=env, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def native_answer(reference: dict[str, Any]) -> dict[str, Any]:
    checkpoint = reference["checkpoints"]["m_rope"]["path"]
    return _ask("--model", checkpoint, "--device", "cpu", "--dtype", "float32")


def _same_answer(found: dict[str, Any], native: dict[str, Any]) -> None:
    assert found["raw_output"] == native["raw_output"]
    assert found["usage"] == native["usage"]
    assert found["finish_reason"] == native["finish_reason"]
    assert [(i["model_width"], i["model_height"]) for i in found["images"]] == [
        (i["model_width"], i["model_height"]) for i in native["images"]
    ]


def test_ask_through_m2_vllm_returns_the_native_raw_output_and_usage(
    server: str, reference: dict[str, Any], native_answer: dict[str, Any]
) -> None:
    checkpoint = reference["checkpoints"]["m_rope"]["path"]
    found = _ask("--engine", "openai", "--engine-url", f"{server}/v1", "--model", checkpoint)
    _same_answer(found, native_answer)
    assert found["model"]["backend"] == "openai/m2"


async def test_an_mcp_call_through_serve_engine_openai_matches_the_native_engine(
    server: str, reference: dict[str, Any], native_answer: dict[str, Any], tmp_path: Path
) -> None:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    checkpoint = reference["checkpoints"]["m_rope"]["path"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("M2_")}
    env.update(M2_ENGINE="openai", M2_ENGINE_URL=f"{server}/v1")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "m2_tools.cli", "serve", "--model", checkpoint, "--allow-dir", str(IMAGES)],
        env=env,
        cwd=REPO,
    )
    with (tmp_path / "stderr.txt").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            result = await client.call_tool(
                "visual_math_reason",
                {"question": QUESTION, "images": [str(IMAGES / "rhombus.png")],
                 "choices": CHOICES, "max_new_tokens": 32, "include_raw": True},
                read_timeout_seconds=CALL_TIMEOUT_S,
            )  # fmt: skip
    assert not result.is_error, result.content
    assert result.structured_content is not None
    _same_answer(result.structured_content, native_answer)


def _engine(server: str, reference: dict[str, Any]) -> OpenAICompatibleEngine:
    checkpoint = reference["checkpoints"]["m_rope"]["path"]
    engine = OpenAICompatibleEngine(
        Settings(engine="openai", engine_url=f"{server}/v1", model=checkpoint)
    )
    engine.load()
    return engine


def _row(tokens: int) -> GenerationRequest:
    return GenerationRequest(SYSTEM_PROMPT, build_user_text("Count to one thousand."),
                             max_new_tokens=tokens)  # fmt: skip


def test_cancel_aborts_the_row_inside_vllm(server: str, reference: dict[str, Any]) -> None:
    engine = _engine(server, reference)
    try:
        [handle] = engine.submit([_row(4000)])
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while handle.tokens < 2 and time.monotonic() < deadline:
            threading.Event().wait(0.05)
        assert _metric(server, "vllm:num_requests_running") >= 1
        handle.cancel()
        result = handle.result(timeout=30)
        assert result.finish_reason == "cancelled"
        assert result.completion_tokens < 4000
        deadline = time.monotonic() + 30
        while _metric(server, "vllm:num_requests_running") > 0:
            assert time.monotonic() < deadline, "vLLM kept running the cancelled row"
            threading.Event().wait(0.1)
    finally:
        engine.close()


def test_a_short_call_behind_a_long_one_is_not_held_up(
    server: str, reference: dict[str, Any], reference_dir: Path
) -> None:
    engine = _engine(server, reference)
    try:
        engine.generate([_row(16)])  # warm-up
        started = time.perf_counter()
        [alone] = engine.generate([_row(16)])
        alone_s = time.perf_counter() - started
        [long_row] = engine.submit([_row(384)])
        while long_row.tokens < 2:
            threading.Event().wait(0.02)
        started = time.perf_counter()
        [behind] = engine.generate([_row(16)])
        behind_s = time.perf_counter() - started
        long_result = long_row.result(timeout=CALL_TIMEOUT_S)
    finally:
        engine.close()
    assert alone.error is None and behind.error is None and long_result.error is None
    ratio = behind_s / alone_s
    figures = {"alone_s": alone_s, "behind_long_s": behind_s, "ratio": ratio,
               "long_tokens": 384, "short_tokens": 16}  # fmt: skip
    (reference_dir / "head_of_line.json").write_text(json.dumps(figures, indent=1))
    # A batch-at-a-time engine makes the short call wait for all 384 tokens (13.9x on CPU).
    assert ratio < 5.0, figures
