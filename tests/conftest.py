"""Test tiers: the default tier runs offline on CPU; ``--slow`` and ``--gpu`` opt in."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from m2_tools import M2Reasoner, Settings
from m2_tools.testing import ScriptedEngine

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


@pytest.fixture
def make_reasoner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., M2Reasoner]]:
    """Build reasoners over a scripted engine; every one is closed after the test.

    Keyword arguments are settings; ``engine=`` passes a prepared ScriptedEngine.
    Local files are limited to a fresh empty directory unless ``allowed_dirs`` is given.
    """
    made: list[M2Reasoner] = []

    def make(engine: ScriptedEngine | None = None, **fields: Any) -> M2Reasoner:
        fields.setdefault("allowed_dirs", (tmp_path_factory.mktemp("allowed"),))
        fields.setdefault("model", "scripted")
        reasoner = M2Reasoner(Settings(**fields), engine=engine or ScriptedEngine())
        made.append(reasoner)
        return reasoner

    yield make
    for reasoner in made:
        reasoner.close()
