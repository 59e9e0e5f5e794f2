"""Options of the plugin's test suite, which ``make test-vllm`` runs (never ``make test``).

``--reference DIR``: where ``native_reference.py`` wrote the checkpoints and the native
engine's outputs. ``--vllm-bin DIR``: the vLLM environment's ``bin`` (for ``m2-vllm serve``
in the tests that run in m2-tools' environment). Tests that need one are skipped without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--reference", default=None, help="native_reference.py's output folder")
    parser.addoption("--vllm-bin", default=None, help="the vLLM environment's bin folder")


@pytest.fixture(scope="session")
def reference_dir(request: pytest.FixtureRequest) -> Path:
    value = request.config.getoption("--reference")
    if not value:
        pytest.skip("needs --reference DIR (make test-vllm passes it)")
    return Path(value)


@pytest.fixture(scope="session")
def reference(reference_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((reference_dir / "reference.json").read_text("utf-8"))
    return loaded


@pytest.fixture(scope="session")
def vllm_bin(request: pytest.FixtureRequest) -> Path:
    value = request.config.getoption("--vllm-bin")
    if not value:
        pytest.skip("needs --vllm-bin DIR (make test-vllm passes it)")
    return Path(value)
