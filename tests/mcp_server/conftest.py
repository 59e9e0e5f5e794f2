"""Fixtures: one real HTTP server process (reasoner factories come from tests/conftest.py)."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._support import (
    IMAGES,
    REPO,
    TINY_MODEL_ARGS,
    HttpServer,
    free_port,
    serve_command,
    server_env,
)

STARTUP_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """One HTTP server on the tiny checkpoint for every test that needs it (bearer token on)."""
    port = free_port()
    token = secrets.token_urlsafe(16)
    stderr_path = tmp_path_factory.mktemp("http-server") / "stderr.txt"
    command = serve_command(
        "--transport", "http", "--port", str(port), *TINY_MODEL_ARGS, "--allow-dir", str(IMAGES)
    )
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=server_env(M2_AUTH_TOKEN=token),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, process, stderr_path)
        yield HttpServer(base=base, url=f"{base}/mcp", token=token, port=port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a process we do not control, within a deadline
    raise RuntimeError(
        f"the server did not answer within {STARTUP_TIMEOUT_S} s:\n{log.read_text()}"
    )
