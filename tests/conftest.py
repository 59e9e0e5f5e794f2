"""Test tiers: the default tier runs offline on CPU; ``--slow`` and ``--gpu`` opt in."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "m2-tiny-reference"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run tests marked slow")
    parser.addoption("--gpu", action="store_true", help="also run tests marked gpu (needs CUDA)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for tier in ("slow", "gpu"):
        if config.getoption(f"--{tier}"):
            continue
        skip = pytest.mark.skip(reason=f"{tier} tier: run with --{tier}")
        for item in items:
            if tier in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    """The golden M2 tiny reference fixture (checkpoint, images, reference outputs)."""
    return FIXTURE_DIR


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's M2_* configuration."""
    for name in list(os.environ):
        if name.startswith("M2_"):
            monkeypatch.delenv(name)


def _wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.005)
    return True


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """``wait_until(predicate, timeout=10.0)``: a bounded wait; True when the condition held."""
    return _wait_until
