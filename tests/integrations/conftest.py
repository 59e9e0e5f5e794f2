"""Fixtures for the framework adapters: a real reasoner over the scripted engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from m2_tools import M2Reasoner, Settings
from m2_tools.testing import ScriptedEngine

IMAGES_DIR = Path(__file__).parents[1] / "fixtures" / "m2-tiny-reference" / "images"

#: What the scripted model answers, by a substring of the question.
SCRIPT = {
    "side length": "<think>\nThe diagonals are 6 and 8, so a side is 5.\n</think>\n"
    "<answer>\n\\boxed{5}\n</answer>",
    "closer to the camera": "<think>\nThe box occludes the chair.\n</think>\n"
    "<answer>\n\\boxed{B}\n</answer>",
}


def scripted_reasoner() -> M2Reasoner:
    """A reasoner on the scripted engine that may read the fixture images only."""
    settings = Settings(model="scripted", allowed_dirs=(IMAGES_DIR,), allow_urls=False)
    return M2Reasoner(settings, engine=ScriptedEngine(by_question=SCRIPT))


@pytest.fixture
def images_dir() -> Path:
    """The fixture images: ``rhombus.png`` (355×231) and ``scene.jpg`` (480×320)."""
    return IMAGES_DIR


@pytest.fixture
def reasoner() -> Iterator[M2Reasoner]:
    """A fresh scripted reasoner, closed after the test."""
    with scripted_reasoner() as service:
        yield service
