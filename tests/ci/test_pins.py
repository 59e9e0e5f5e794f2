"""ci/pins.py: the floors file and the known-good lock agree with what they are made from."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

pytest.importorskip("tomllib")  # the script reads pyproject.toml with Python 3.11's tomllib

SCRIPT = Path(__file__).resolve().parents[2] / "ci" / "pins.py"


@pytest.fixture(scope="module")
def pins() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_pins", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_floors_file_is_what_pyproject_generates(pins: ModuleType) -> None:
    expected = pins.render_floors(pins.direct_requirements())

    assert pins.FLOORS.read_text(encoding="utf-8") == expected


def test_floors_pin_every_direct_dependency_except_torch(pins: ModuleType) -> None:
    floors = pins.read_lock(pins.FLOORS)

    assert "torch" not in floors
    assert {"transformers", "tokenizers", "mcp", "langchain-core", "langchain"} <= set(floors)
    assert {"pydantic", "httpx", "huggingface-hub", "pillow", "safetensors"} <= set(floors)
    assert floors["langchain"] == "1.4"  # langchain.mcp first ships in 1.4.0


def test_a_dependency_without_a_floor_is_refused(pins: ModuleType) -> None:
    with pytest.raises(ValueError):
        pins.floor_of(Requirement("transformers<6"))


def test_lock_round_trips_through_its_text(pins: ModuleType, tmp_path: Path) -> None:
    lock = tmp_path / "known-good.txt"
    lock.write_text(pins.render_lock({"mcp": "2.3.0", "Pillow": "13.0.0"}), encoding="utf-8")

    assert pins.read_lock(lock) == {"mcp": "2.3.0", "pillow": "13.0.0"}


def test_lock_holds_every_direct_dependency_above_its_floor(pins: ModuleType) -> None:
    from packaging.version import Version

    lock = pins.read_lock()
    for name, floor in pins.read_lock(pins.FLOORS).items():
        assert Version(lock[name]) >= Version(floor), name
    assert not {"m2-tools", "torch", "pip"} & set(lock)


def test_doctors_tested_versions_are_generated_from_the_lock(pins: ModuleType) -> None:
    expected = pins.render_tested(pins.read_lock())

    assert pins.TESTED.read_text(encoding="utf-8") == expected


def test_drift_lists_changed_added_and_removed_packages(pins: ModuleType) -> None:
    lock = {"mcp": "2.3.0", "pillow": "13.0.0", "gone": "1.0"}
    installed = {"mcp": "2.4.0", "pillow": "13.0.0", "new": "0.1"}

    assert pins.drift(installed, lock) == [
        "gone: 1.0 (lock) -> - (here)",
        "mcp: 2.3.0 (lock) -> 2.4.0 (here)",
        "new: - (lock) -> 0.1 (here)",
    ]
