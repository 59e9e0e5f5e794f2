"""Cold start of ``m2-tools serve`` over stdio: from process start to answers.

For each case the server is started several times. Each run measures, from the moment
the process is spawned, when the ``initialize`` response, the ``tools/list`` response
and the first ``tools/call`` response arrive (the call waits for the model, so for a
model that cannot load it shows how soon ``model_unavailable`` comes back).

Prints a table, then one JSON line::

    .venv/bin/python benchmarks/bench_cold_start.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "fixtures" / "m2-tiny-reference" / "checkpoint"

CASES: dict[str, list[str]] = {
    "tiny fixture (cpu, float32)": ["--model", str(TINY), "--device", "cpu", "--dtype", "float32"],
    "unloadable hub id (offline)": ["--model", "inclusionAI/M2-Reasoning", "--device", "cpu"],
}

_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench_cold_start", "version": "0"},
    },
}
_INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
_CALL = {
    "jsonrpc": "2.0",
    "id": 3,
    "method": "tools/call",
    "params": {
        "name": "visual_math_reason",
        "arguments": {"question": "What is 2 + 2?", "max_new_tokens": 16},
    },
}


@dataclass
class Run:
    """Seconds from process start to each response, and how the call ended."""

    initialize: float
    tools_list: float
    first_call: float
    call_outcome: str


def _send(stdin: IO[bytes], *messages: dict[str, Any]) -> None:
    for message in messages:
        stdin.write(json.dumps(message).encode() + b"\n")
    stdin.flush()


def _await_response(stdout: IO[bytes], request_id: int) -> dict[str, Any]:
    for line in stdout:
        message: dict[str, Any] = json.loads(line)
        if message.get("id") == request_id:
            return message
    raise RuntimeError(f"the server closed stdout before answering request {request_id}")


def _outcome(response: dict[str, Any]) -> str:
    result = response["result"]
    text = result["content"][0]["text"]
    if result.get("isError"):
        return str(json.loads(text)["error"]["code"])
    return f"ok ({json.loads(text)['status']})"


def run_once(options: list[str]) -> Run:
    """Start the server, time its first answers, and stop it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("M2_")}
    env["HF_HUB_OFFLINE"] = "1"
    command = [sys.executable, "-m", "m2_tools.cli", "serve", *options]
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        _send(process.stdin, _INITIALIZE)
        _await_response(process.stdout, 1)
        initialized = time.perf_counter() - started
        _send(process.stdin, _INITIALIZED, _LIST)
        _await_response(process.stdout, 2)
        listed = time.perf_counter() - started
        _send(process.stdin, _CALL)
        call = _await_response(process.stdout, 3)
        called = time.perf_counter() - started
        process.stdin.close()
        process.wait(timeout=60)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    return Run(initialized, listed, called, _outcome(call))


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 3), "max": round(max(values), 3)}


def main() -> None:
    """Run every case ``--runs`` times and print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="Runs per case (default 5).")
    args = parser.parse_args()

    results = []
    for name, options in CASES.items():
        runs = [run_once(options) for _ in range(args.runs)]
        results.append(
            {
                "case": name,
                "runs": len(runs),
                "initialize_s": _summary([r.initialize for r in runs]),
                "tools_list_s": _summary([r.tools_list for r in runs]),
                "first_call_s": _summary([r.first_call for r in runs]),
                "call_outcomes": sorted({r.call_outcome for r in runs}),
            }
        )

    header = f"{'case':<30} {'runs':>4}  {'initialize p50/max':>19}  {'tools/list p50/max':>19}"
    print(f"{header}  {'first call p50/max':>19}  call result")
    for row in results:
        cells = [
            f"{row[key]['p50']:6.2f} / {row[key]['max']:6.2f} s"  # type: ignore[index]
            for key in ("initialize_s", "tools_list_s", "first_call_s")
        ]
        outcomes = ", ".join(row["call_outcomes"])  # type: ignore[arg-type]
        print(f"{row['case']:<30} {row['runs']:>4}  " + "  ".join(cells) + f"  {outcomes}")
    print(
        json.dumps(
            {
                "benchmark": "cold_start_stdio",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
