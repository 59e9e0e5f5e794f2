"""docs/parsing.md is in the repository, the code cites it, and its examples are true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from m2_tools.answers.parsing import parse_response

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "parsing.md"
OPT4 = ["11.3", "22.4", "22.6", "25.6"]


def _cells(line: str) -> list[str]:
    # Split on the table's pipes, not on the \| escapes inside cells.
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def _example_rows() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## Examples", 1)[1].split("\n## ", 1)[0]
    rows = [_cells(line) for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) >= 20
    return rows


def _code(cell: str) -> str | None:
    return None if cell == "null" else cell.strip("`")


def _options(cell: str) -> list[str] | None:
    if cell == "OPT4":
        return OPT4
    return None if cell == "–" else cell.split(", ")


def test_the_code_cites_only_docs_that_exist() -> None:
    cited: set[str] = set()
    for path in (REPO / "m2_tools").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "PARSING.md" not in source, path
        cited |= set(re.findall(r"docs/[\w-]+\.md", source))

    assert "docs/parsing.md" in cited
    assert all((REPO / name).is_file() for name in cited), cited


@pytest.mark.parametrize("row", _example_rows(), ids=lambda row: row[0][:40])
def test_each_example_in_the_doc_is_what_the_parser_returns(row: list[str]) -> None:
    raw, options, answer, choice, value, status, flags = row
    parsed = parse_response(_code(raw).replace("\\n", "\n"), _options(options))  # type: ignore[union-attr]

    assert parsed.answer == _code(answer)
    assert parsed.choice == (None if choice == "null" else choice)
    assert parsed.value == (None if value == "null" else pytest.approx(float(value)))
    assert parsed.status == status.strip("*")
    assert parsed.flags == tuple(flag.strip("`") for flag in flags.split(", ") if flag)
