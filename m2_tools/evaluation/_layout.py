"""Pieces the readers share: rows of published files, options embedded in a question,
gold letters and image references."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from m2_tools.evaluation.items import ItemsFileError, resolve_image

__all__ = [
    "Row",
    "gold_letters",
    "image_refs",
    "number_type",
    "read_rows",
    "split_embedded_choices",
]

Row = dict[str, Any]

_CHOICES_HEADER = re.compile(r"(?:^|(?<=[\s.?!]))(?:choices|options)\s*[:：]\s*", re.IGNORECASE)
_LABEL = re.compile(r"(?:^|(?<=\s))\(?([A-Z])\)?\s*[:.)：]\s*|(?:^|(?<=\s))\(([A-Z])\)\s*")


def read_rows(path: Path) -> list[Row]:
    """Rows of a JSON list, a JSON object keyed by id (key kept as ``_key``), or JSONL."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ItemsFileError(f"cannot read {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ItemsFileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict):
        return [{**row, "_key": key} for key, row in data.items() if isinstance(row, dict)]
    if isinstance(data, list):
        return [row for row in data if isinstance(row, dict)]
    raise ItemsFileError(f"{path}: expected a JSON list or object of problems")


def split_embedded_choices(question: str) -> tuple[str, list[str] | None]:
    """Split options written into a question (``Choices: A:8 B:10``) from its stem.

    Options must be labelled A, B, C, ... in order (``A.``, ``A:``, ``(A)``,
    ``A)``), either after a ``Choices:``/``Options:`` header or as trailing lines.
    Returns the question unchanged and ``None`` when no such block is found.
    """
    headers = list(_CHOICES_HEADER.finditer(question))
    header = headers[-1] if headers else None
    if header is not None:
        options = _labelled_options(question[header.end() :])
        stem = question[: header.start()].strip()
        if options and stem:
            return stem, options
    lines = question.rstrip().split("\n")
    for start in range(len(lines) - 2, -1, -1):
        if re.match(r"\s*\(?A\)?\s*[:.)：]", lines[start]):
            options = _labelled_options("\n".join(lines[start:]))
            stem = "\n".join(lines[:start]).strip()
            if options and stem and len(options) == len(lines) - start:
                return stem, options
            break
    return question, None


def _labelled_options(block: str) -> list[str] | None:
    block = block.strip()
    labels = list(_LABEL.finditer(block))
    if len(labels) < 2 or labels[0].start() != 0:
        return None
    letters = [match.group(1) or match.group(2) for match in labels]
    if letters != [chr(ord("A") + i) for i in range(len(letters))]:
        return None
    ends = [match.start() for match in labels[1:]] + [len(block)]
    options = [block[match.end() : end].strip() for match, end in zip(labels, ends, strict=True)]
    return options if all(options) else None


def gold_letters(answer: Any) -> str:
    """``"(A)"`` → ``A``; ``"A, C"`` → ``A,C``; anything else unchanged."""
    text = str(answer).strip()
    bare = text.strip("()[]").replace(" ", "")
    if bare and all(
        part.isalpha() and len(part) == 1 and part.isupper() for part in bare.split(",")
    ):
        return bare
    return text


def image_refs(ref: Any, base: Path) -> list[str]:
    if isinstance(ref, dict):
        ref = ref.get("path")
    return [resolve_image(str(ref), base)] if ref else []


def number_type(gold: str) -> str:
    try:
        value = float(gold.replace(",", ""))
    except ValueError:
        return "text"
    return "integer" if value.is_integer() and "." not in gold else "float"
