"""`m2-tools --version`: the installed distribution's version, the same as the package's."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import m2_tools
from m2_tools.cli import main

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _declared_version() -> str:
    version: str = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    return version


def test_version_flag_prints_the_package_version_and_exits_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"m2-tools {_declared_version()}\n"


def test_package_version_and_installed_metadata_match_pyproject() -> None:
    assert m2_tools.__version__ == _declared_version()
    assert metadata.version("m2-tools") == _declared_version()


def test_console_script_answers_version_without_a_subcommand() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "m2_tools.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"m2-tools {_declared_version()}"
