"""Shared pieces of the evaluation tests: sample data, scripted reasoners, record makers."""

from __future__ import annotations

import shutil
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
    """Rows we wrote in each benchmark's released layout (no media: see ``release``)."""
    return DATA_DIR


@pytest.fixture
def release(tmp_path: Path) -> Callable[[str], Path]:
    """Lay out a benchmark's sample release under ``tmp_path``, with the media files its
    ``MEDIA.txt`` lists (blank PNGs, and stand-in videos that the readers only look for)."""

    def make(benchmark: str) -> Path:
        target = tmp_path / "releases" / benchmark
        shutil.copytree(DATA_DIR / benchmark, target, ignore=shutil.ignore_patterns("MEDIA.txt"))
        for line in (DATA_DIR / benchmark / "MEDIA.txt").read_text().splitlines():
            path = target / line
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".mp4":
                path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
            else:
                Image.new("RGB", (32, 24), "white").save(path)
        return target

    return make


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
