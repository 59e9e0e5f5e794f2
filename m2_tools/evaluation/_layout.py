"""Pieces the readers share: rows of released files, embedded options, gold letters,
image references and the read-time check that every referenced file is there."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from m2_tools.evaluation.items import EvalItem, ItemsFileError, resolve_image

__all__ = [
    "ROW_SUFFIXES",
    "Row",
    "annotation_files",
    "first_image",
    "gold_letters",
    "image_refs",
    "number_type",
    "read_rows",
    "require_files",
    "split_embedded_choices",
]

Row = dict[str, Any]
#: Suffixes of the annotation files a reader accepts.
ROW_SUFFIXES = (".json", ".jsonl", ".parquet")
_SUFFIX_RANK = {suffix: rank for rank, suffix in enumerate(ROW_SUFFIXES)}

_CHOICES_HEADER = re.compile(r"(?:^|(?<=[\s.?!:]))(?:choices?|options?)\s*[:：]\s*", re.IGNORECASE)
_LABEL = re.compile(r"(?:^|(?<=\s))\(?([A-Z])\)?\s*[:.)：]\s*|(?:^|(?<=\s))\(([A-Z])\)\s*")
# Inline options on one line: only the unmistakable "(A)" / "A)" labels.
_INLINE_LABEL = re.compile(r"(?:^|(?<=\s))(?:\(([A-Z])\)|([A-Z])\))\s*")
_SHOWN_MISSING = 3
# Why: a data URI names a type; the intake reads the real format from the bytes anyway.
_MAGIC = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
    (b"BM", "image/bmp"),
    (b"II*", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def read_rows(path: Path) -> list[Row]:
    """Rows of a JSON list, a JSON object keyed by id (key kept as ``_key``), JSONL or Parquet.

    Parquet needs ``pyarrow``; embedded images arrive as ``{"bytes": ..., "path": ...}``.
    """
    if path.suffix == ".parquet":
        return _parquet_rows(path)
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


def _parquet_rows(path: Path) -> list[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ItemsFileError(
            f"{path}: reading Parquet needs pyarrow (pip install pyarrow), "
            "or export the file to JSONL first"
        ) from None
    try:
        rows: list[Row] = pq.read_table(path).to_pylist()
    except (OSError, ValueError) as exc:
        raise ItemsFileError(f"{path}: not a readable Parquet file ({exc})") from None
    return rows


def annotation_files(path: Path, names: Sequence[str], *, how: str) -> list[Path]:
    """``path`` itself, or for a directory the annotation files in it matching ``names``.

    Args:
        path: A file, or a directory of a release.
        names: Glob patterns tried in order inside a directory; the first that matches wins.
        how: What the directory should hold, for the error message.
    """
    if not path.is_dir():
        if not path.exists():
            raise ItemsFileError(f"{path}: no such file or directory")
        return [path]
    for pattern in names:
        found: dict[str, Path] = {}
        # Why: a release may ship one table as both JSONL and Parquet; read it once.
        for file in sorted(path.glob(pattern), key=lambda p: _SUFFIX_RANK.get(p.suffix, 9)):
            if file.suffix in ROW_SUFFIXES and file.is_file():
                found.setdefault(file.stem, file)
        if found:
            return sorted(found.values())
    raise ItemsFileError(f"{path}: no annotation file found; expected {how}")


def split_embedded_choices(question: str) -> tuple[str, list[str] | None]:
    """Split options written into a question from its stem.

    Options must be labelled A, B, C, ... in order and come last: after a
    ``Choices:``/``Options:`` header (``A:8 B:10``, ``(A) yes (B) no``), as one line
    each (``A. 8``), or on one line with ``(A)``/``A)`` labels (``A) 10 B) 12``).
    Returns the question unchanged and ``None`` when no such block is found, or when
    an option has no text (the options are in the image).
    """
    headers = list(_CHOICES_HEADER.finditer(question))
    if headers:
        header = headers[-1]
        options = _labelled_options(question[header.end() :], _LABEL)
        stem = question[: header.start()].strip()
        if options and stem:
            return stem, options
    lines = question.rstrip().split("\n")
    for start in range(len(lines) - 2, -1, -1):
        if re.match(r"\s*\(?A\)?\s*[:.)：]", lines[start]):
            options = _labelled_options("\n".join(lines[start:]), _LABEL)
            stem = "\n".join(lines[:start]).strip()
            if options and stem and len(options) == len(lines) - start:
                return stem, options
            break
    return _inline_choices(question)


def _inline_choices(question: str) -> tuple[str, list[str] | None]:
    for match in _INLINE_LABEL.finditer(question):
        if (match.group(1) or match.group(2)) != "A":
            continue
        options = _labelled_options(question[match.start() :], _INLINE_LABEL)
        stem = question[: match.start()].strip()
        if options and stem:
            return stem, options
    return question, None


def _labelled_options(block: str, label: re.Pattern[str]) -> list[str] | None:
    block = block.strip()
    labels = list(label.finditer(block))
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
    """One image field as references: a path (resolved against ``base``), or the
    ``bytes`` of an image embedded by a Parquet export, as a data URI."""
    if isinstance(ref, list):
        return [found for part in ref for found in image_refs(part, base)]
    if isinstance(ref, dict):
        path = ref.get("path")
        embedded = _embedded(ref.get("bytes"))
        if embedded is not None and not (path and (base / str(path)).is_file()):
            return [embedded]
        ref = path
    return [resolve_image(str(ref), base)] if ref else []


def first_image(row: Row, base: Path, *fields: str) -> list[str]:
    """The first of ``fields`` that names an existing file or embeds an image, else the first."""
    found: list[list[str]] = [image_refs(row.get(name), base) for name in fields]
    for refs in found:
        if refs and (refs[0].startswith("data:") or Path(refs[0]).is_file()):
            return refs
    return next((refs for refs in found if refs), [])


def _embedded(data: Any) -> str | None:
    """Image bytes as a data URI; JSON exports carry them as base64 text or a list of ints."""
    if data is None or data == "":
        return None
    if isinstance(data, list):
        data = bytes(data)
    if isinstance(data, str):
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ItemsFileError("an embedded image is neither bytes nor base64") from None
    if not isinstance(data, (bytes, bytearray)) or not data:
        return None
    mime = next((kind for magic, kind in _MAGIC if data.startswith(magic)), "image/png")
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def require_files(items: Iterable[EvalItem], source: Path, hint: str) -> None:
    """Refuse items whose local image or video files are missing, saying how to get them.

    Raises:
        ItemsFileError: Some referenced files do not exist (the first few are named).
    """
    missing: list[str] = []
    for item in items:
        refs = [*item.images, *([item.video] if item.video else [])]
        missing += [ref for ref in refs if _is_local(ref) and not Path(ref).is_file()]
    missing = list(dict.fromkeys(missing))
    if not missing:
        return
    shown = ", ".join(missing[:_SHOWN_MISSING])
    more = f" and {len(missing) - _SHOWN_MISSING} more" if len(missing) > _SHOWN_MISSING else ""
    raise ItemsFileError(f"{source}: {len(missing)} files are missing ({shown}{more}); {hint}")


def _is_local(ref: str) -> bool:
    return ref.startswith("/") or (len(ref) > 2 and ref[1] == ":" and ref[2] in "\\/")


def number_type(gold: str) -> str:
    """``integer``, ``float`` or ``text``: how a free-form gold answer reads."""
    try:
        value = float(gold.replace(",", ""))
    except ValueError:
        return "text"
    return "integer" if value.is_integer() and "." not in gold else "float"
