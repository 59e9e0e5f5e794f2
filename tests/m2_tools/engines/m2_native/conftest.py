"""Shared fixtures for the native engine tests: one loaded tiny engine per session."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.settings import Settings

CASES = ("math_mc", "spatial_jpeg", "text_only")


@pytest.fixture(autouse=True)
def single_torch_thread() -> Iterator[None]:
    """Run the tiny model on one thread: its matrices are too small to share, and on a
    busy machine thread hand-offs made these tests ten times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def checkpoint_dir(fixture_dir: Path) -> Path:
    """The golden fixture's checkpoint directory (read-only)."""
    return fixture_dir / "checkpoint"


@pytest.fixture(scope="session")
def cases(fixture_dir: Path) -> dict[str, Any]:
    """``reference/cases.json``."""
    loaded: dict[str, Any] = json.loads(
        (fixture_dir / "reference" / "cases.json").read_text(encoding="utf-8")
    )
    return loaded


@pytest.fixture(scope="session")
def engine(checkpoint_dir: Path) -> M2NativeEngine:
    """The fixture checkpoint loaded once on CPU in float32."""
    loaded = M2NativeEngine(Settings(model=str(checkpoint_dir), device="cpu", dtype="float32"))
    loaded.load()
    return loaded


@pytest.fixture(scope="session")
def case_request(fixture_dir: Path, cases: dict[str, Any]) -> Callable[..., GenerationRequest]:
    """Build a request from a reference case's messages: system text, images, user text."""

    def build(name: str, **overrides: Any) -> GenerationRequest:
        system, user = cases[name]["messages"]
        images = []
        for item in user["content"]:
            if item["type"] == "image":
                with Image.open(fixture_dir / "images" / item["image"]) as image:
                    image.load()
                    images.append(image)
        fields: dict[str, Any] = {
            "system_prompt": "".join(i["text"] for i in system["content"] if i["type"] == "text"),
            "user_text": "".join(i["text"] for i in user["content"] if i["type"] == "text"),
            "images": tuple(images),
            "max_new_tokens": 24,
        }
        fields.update(overrides)
        return GenerationRequest(**fields)

    return build


@pytest.fixture
def checkpoint_copy(checkpoint_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the fixture checkpoint, for corrupting."""
    copy = tmp_path / "checkpoint"
    shutil.copytree(checkpoint_dir, copy)
    for path in copy.iterdir():
        path.chmod(0o644)
    return copy
