"""Shared pieces of the evaluation tests: sample data, scripted reasoners, record makers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from m2_tools import M2Reasoner
from m2_tools.evaluation import EvalItem, EvalRecord, Prediction
from m2_tools.testing import ScriptedEngine

DATA_DIR = Path(__file__).parent / "data"


def boxed(answer: str) -> str:
    """A well-formed M2 completion answering ``answer``."""
    return f"<think>\nI looked carefully.\n</think>\n<answer>\n\\boxed{{{answer}}}\n</answer>"


@pytest.fixture
def data_dir() -> Path:
    """The sample files in the benchmarks' published layouts."""
    return DATA_DIR


@pytest.fixture
def make_reasoner(
    make_reasoner: Callable[..., M2Reasoner], tmp_path: Path
) -> Callable[..., M2Reasoner]:
    """The shared factory, allowed to read images under ``tmp_path`` and with the cache off."""

    def make(engine: ScriptedEngine, **settings: Any) -> M2Reasoner:
        settings.setdefault("allowed_dirs", (tmp_path,))
        settings.setdefault("cache_size", 0)
        return make_reasoner(engine, **settings)

    return make


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    """A small PNG under ``tmp_path``."""
    path = tmp_path / "figure.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path)
    return path


def make_record(item: EvalItem, score: float, **fields: Any) -> EvalRecord:
    """A record of ``item`` with ``score`` (an ok prediction unless told otherwise)."""
    now = time.time()
    fields.setdefault("prediction", Prediction(answer="x", choice="A", value=1.0))
    fields.setdefault("status", "ok")
    return EvalRecord(
        id=item.id,
        benchmark=item.benchmark,
        category=item.category,
        item=item,
        score=score,
        session=fields.pop("session", now - 1),
        finished_at=fields.pop("finished_at", now),
        **fields,
    )


@pytest.fixture
def record_of() -> Callable[..., EvalRecord]:
    """:func:`make_record` as a fixture."""
    return make_record


@pytest.fixture
def item_of() -> Callable[..., EvalItem]:
    """Build an item with defaults for the fields a test does not care about."""

    def make(**fields: Any) -> EvalItem:
        fields.setdefault("id", "q1")
        fields.setdefault("benchmark", "synthetic")
        fields.setdefault("question", "What is shown?")
        fields.setdefault("gold", "A")
        fields.setdefault("answer_type", "multiple_choice")
        return EvalItem(**fields)

    return make
