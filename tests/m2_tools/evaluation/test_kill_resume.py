"""A real run killed with SIGKILL mid-way resumes without losing or repeating an item."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from m2_tools.evaluation import (
    EvalItem,
    RunOptions,
    load_items,
    load_records,
    run_evaluation,
    write_items,
)
from m2_tools.testing import ScriptedEngine

from .conftest import boxed

CHILD = Path(__file__).with_name("_slow_run.py")
N_ITEMS = 16


def _record_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkilled_run_resumes_with_no_item_lost_or_repeated(make_reasoner, tmp_path: Path) -> None:
    Image.new("RGB", (32, 32), "white").save(tmp_path / "blank.png")
    items = [
        EvalItem(
            id=f"k{i:02d}",
            benchmark="synthetic",
            question=f"Item {i}: how many?",
            images=["blank.png"],
            gold="1",
            answer_type="integer",
        )
        for i in range(N_ITEMS)
    ]
    items_path, out = tmp_path / "items.jsonl", tmp_path / "run"
    write_items(items, items_path)
    records = out / "records.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}

    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(items_path), str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while _record_lines(records) < 4:
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the child recorded too few items in time"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    before = {r.id for r in load_records(records)}
    assert 4 <= len(before) < N_ITEMS

    engine = ScriptedEngine(default=boxed("1"))
    resumed = run_evaluation(
        make_reasoner(engine), load_items(items_path), out, RunOptions(progress=False, resume=True)
    )

    after = [r.id for r in load_records(records)]
    lines = records.read_text().splitlines()
    assert sorted(after) == [item.id for item in items]  # none lost
    assert len(lines) == N_ITEMS  # none repeated (and no torn line left behind)
    assert resumed.ran == len(engine.requests) == N_ITEMS - len(before)
    numbers = [re.search(r"Item (\d+):", r.user_text) for r in engine.requests]
    asked = {f"k{int(found.group(1)):02d}" for found in numbers if found}
    assert asked == {item.id for item in items} - before
