"""The Dockerfile: hadolint-clean, a serve command line, non-root, and a health check that works.

No image is built here (no container engine); what can be checked without one is.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from m2_tools.settings import ENV_VARS, Settings

from ._support import (
    CHECKPOINT,
    DOCKERFILE,
    EMPTY_MODELS,
    HEALTHCHECK,
    REPO,
    dockerfile_instructions,
    env_assignments,
    hadolint,
    load_module,
    parse_serve,
    run_tool,
)

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
probe = load_module(HEALTHCHECK, "m2_tools_image_healthcheck")
#: Generous: the server imports torch before it loads or fails, slow on a busy 2-core machine.
STARTUP_TIMEOUT_S = 180.0


def _last(keyword: str) -> str:
    found = [arguments for name, arguments in dockerfile_instructions() if name == keyword]
    assert found, f"no {keyword} instruction"
    return found[-1]


def _image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for name, arguments in dockerfile_instructions():
        if name == "ENV":
            env.update(env_assignments(arguments))
    return env


def test_hadolint_reports_nothing() -> None:
    done = run_tool(hadolint(), "--format", "json", "--failure-threshold", "style", str(DOCKERFILE))
    assert json.loads(done.stdout or "[]") == [], done.stdout
    assert done.returncode == 0, done.stderr


def test_image_starts_a_serve_command_line_over_http_on_the_exposed_port() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    entrypoint = json.loads(_last("ENTRYPOINT"))
    assert entrypoint == ["m2-tools"]
    assert entrypoint[0] in project["scripts"]
    args = parse_serve(json.loads(_last("CMD")))
    assert (args.transport, args.host) == ("http", "0.0.0.0")
    assert _last("EXPOSE") == str(args.port)
    assert f"http://127.0.0.1:{args.port}/healthz" == probe.DEFAULT_URL


def test_image_runs_as_a_non_root_user() -> None:
    user = _last("USER").split(":")[0]
    assert user not in {"root", "0"}


def test_image_sets_only_variables_the_code_reads_and_never_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = {name: value for name, value in _image_env().items() if name.startswith("M2_")}
    assert set(settings) <= set(ENV_VARS.values())
    assert ENV_VARS["auth_token"] not in settings
    assert not any(
        ENV_VARS["auth_token"] in arguments for _, arguments in dockerfile_instructions()
    )
    assert settings[ENV_VARS["model"]] == "/models"
    devices = [
        env_assignments(arguments)[ENV_VARS["device"]]
        for name, arguments in dockerfile_instructions()
        if name == "ENV" and ENV_VARS["device"] in env_assignments(arguments)
    ]
    assert devices == ["cpu", "cuda"], "one device per variant, CPU first"
    for device in devices:
        monkeypatch.setenv(ENV_VARS["device"], device)
        assert Settings().device == device


def test_build_context_holds_every_package_the_distribution_builds() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {
        pattern.rstrip("*")
        for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copies = [arguments.split() for name, arguments in dockerfile_instructions() if name == "COPY"]
    sources = {source for copy in copies for source in copy[:-1] if not source.startswith("$")}
    assert packages <= sources
    kept = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for source in sources:
        assert (REPO / source).exists(), source
        assert any(source == k or source.startswith(k + "/") for k in kept), (
            f"{source} is left out of the build context"
        )


def test_image_copies_the_health_probe_its_health_check_runs_and_the_default_models() -> None:
    copies = [arguments.split() for name, arguments in dockerfile_instructions() if name == "COPY"]
    probe_copy = next(c for c in copies if c[0] == HEALTHCHECK.relative_to(REPO).as_posix())
    assert probe_copy[-1] in json.loads(_last("HEALTHCHECK").split("CMD", 1)[1])
    default_models = re.search(r"ARG MODEL_SRC=(\S+)", DOCKERFILE.read_text())
    assert default_models is not None
    assert REPO / default_models.group(1) == EMPTY_MODELS
    assert ["${MODEL_SRC}", "/models/"] in copies


@contextmanager
def _http_server(model: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``serve --transport http`` on a free loopback port; yields the process and /healthz URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "m2_tools.cli", "serve", "--transport", "http"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--model", str(model)]
    env = {name: value for name, value in os.environ.items() if not name.startswith("M2_")}
    env.update(M2_AUTH_TOKEN=secrets.token_urlsafe(16), M2_DEVICE="cpu", HF_HUB_OFFLINE="1")
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        yield process, f"http://127.0.0.1:{port}/healthz"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _health_status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=1.0).status_code
    except httpx.TransportError:
        return None


def _await_health(process: subprocess.Popen[bytes], url: str, wanted: int) -> bool:
    """Whether ``/healthz`` answers ``wanted`` while the process runs, within the bound."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    pause = threading.Event()
    while process.poll() is None and time.monotonic() < deadline:
        if _health_status(url) == wanted:
            return True
        pause.wait(0.1)  # polling a process we do not control, within the deadline
    return False


def test_health_check_passes_on_a_serving_image_and_fails_once_it_stops(tmp_path: Path) -> None:
    with _http_server(CHECKPOINT, tmp_path) as (server, url):
        assert _await_health(server, url, 200), (tmp_path / "stderr.txt").read_text()
        assert probe.main(url) == 0
    assert probe.main(url, 1.0) == 1


def test_health_check_fails_on_a_running_image_without_weights(tmp_path: Path) -> None:
    # The image's default /models holds only a note: the load fails and /healthz says 503.
    with _http_server(EMPTY_MODELS, tmp_path) as (server, url):
        assert _await_health(server, url, 503), (tmp_path / "stderr.txt").read_text()
        assert probe.main(url) == 1
