"""Fixtures for the reliability suites: reasoners over the scripted engine, closed after use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from m2_tools import M2Reasoner, Settings
from m2_tools.testing import ScriptedEngine

from ._support import ReasonerFactory


@pytest.fixture
def make_reasoner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReasonerFactory]:
    """Build reasoners over a scripted engine; each one is closed after the test.

    Keyword arguments are settings; ``engine=`` passes a prepared ScriptedEngine. Local
    files are limited to a fresh empty directory unless ``allowed_dirs`` is given.
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
