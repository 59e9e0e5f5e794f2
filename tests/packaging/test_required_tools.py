"""The outside tools the packaging checks need: skipped on a bare machine, never under CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._support import required_tool


def test_missing_tool_skips_the_check_outside_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        required_tool([tmp_path / "no-such-tool"], "a tool", "install it")


@pytest.mark.parametrize("value", ["true", "1", "True"])
def test_missing_tool_fails_the_check_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception):
        required_tool([tmp_path / "no-such-tool"], "a tool", "install it")


def test_present_tool_is_found_first_among_candidates(tmp_path: Path) -> None:
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert required_tool([tmp_path / "absent", tool], "a tool", "install it") == str(tool)
