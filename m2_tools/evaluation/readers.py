"""Readers: benchmarks' released files → :class:`EvalItem`.

Each reader takes a release's annotation file (JSON, JSONL or Parquet) or the
release's directory, resolves image paths against the file's directory (or takes
images embedded in a Parquet export), and checks at read time that every image it
needs is there. Only the field names of the official releases are read:

- MathVista testmini: ``pid, question, image (or decoded_image), choices, unit,
  precision, answer, question_type, answer_type, metadata{task, ...}``.
- MathVision: ``id, question, options, image, answer, level, subject``.
- MathVerse: ``sample_index, problem_index, problem_version, question, image,
  answer, question_type, query_wo, query_cot, metadata{subject, ...}``; Vision Only
  rows have an empty ``question`` (it is in the image).
- DynaMath: ``id, question, image, ground_truth, answer_type, subject,
  knowledge_level``, one file per variant (``*variant<k>*``) or a ``variant`` field.
- WeMath and LogicVista: see :mod:`m2_tools.evaluation.choice_readers`.
- CV-Bench and VSI-Bench: see :mod:`m2_tools.evaluation.spatial_readers`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from m2_tools.evaluation._layout import (
    Row,
    annotation_files,
    first_image,
    gold_letters,
    number_type,
    read_rows,
    require_files,
    split_embedded_choices,
)
from m2_tools.evaluation.choice_readers import read_logicvista, read_wemath
from m2_tools.evaluation.items import EvalItem, ItemsFileError, load_items
from m2_tools.evaluation.spatial_readers import read_cvbench, read_vsibench

__all__ = [
    "READERS",
    "read_benchmark",
    "read_dynamath",
    "read_logicvista",
    "read_mathverse",
    "read_mathvision",
    "read_mathvista",
    "read_rows",
    "read_wemath",
    "split_embedded_choices",
]

Reader = Callable[[Path], list[EvalItem]]

_MATHVISTA_TYPES = {"multi_choice": "multiple_choice", "integer": "integer", "float": "float"}


def read_mathvista(path: Path) -> list[EvalItem]:
    """MathVista (testmini): multiple-choice gold is the option text."""
    items: list[EvalItem] = []
    for file in annotation_files(
        path, ["testmini.json", "*.json", "*.parquet"], how="testmini.json"
    ):
        start = len(items)
        for row in read_rows(file):
            meta = row.get("metadata") or {}
            choices: list[Any] = row.get("choices") or []
            multi = row.get("question_type") == "multi_choice" and bool(choices)
            kind = "multi_choice" if multi else str(row.get("answer_type"))
            precision = row.get("precision")
            items.append(
                EvalItem(
                    id=str(row.get("pid", row.get("_key"))),
                    benchmark="mathvista",
                    category=str(meta.get("task") or "all"),
                    question=row["question"],
                    images=first_image(row, file.parent, "image", "decoded_image"),
                    options=[str(choice) for choice in choices] if multi else None,
                    gold=str(row["answer"]),
                    answer_type=_MATHVISTA_TYPES.get(kind, "list" if kind == "list" else "text"),  # type: ignore[arg-type]
                    precision=int(float(precision)) if precision is not None else None,
                    unit=row.get("unit") or None,
                    meta={
                        k: meta[k] for k in ("source", "context", "grade", "skills") if k in meta
                    },
                )
            )
        require_files(
            items[start:], file, "download the release's images/ folder beside testmini.json"
        )
    return items


def read_mathvision(path: Path) -> list[EvalItem]:
    """MathVision (test or testmini); the gold stays as released (the rule compares it raw)."""
    names = ["test.jsonl", "testmini.jsonl", "*.jsonl", "*.parquet"]
    items: list[EvalItem] = []
    for file in annotation_files(path, names, how="test.jsonl or testmini.jsonl"):
        start = len(items)
        for row in read_rows(file):
            options = [str(option) for option in row.get("options") or []] or None
            gold = str(row["answer"])
            items.append(
                EvalItem(
                    id=str(row["id"]),
                    benchmark="mathvision",
                    category=str(row.get("subject") or "all"),
                    question=row["question"],
                    images=first_image(row, file.parent, "image", "decoded_image"),
                    options=options,
                    gold=gold,
                    answer_type="multiple_choice" if options else number_type(gold.strip()),  # type: ignore[arg-type]
                    meta={"level": row["level"]} if "level" in row else {},
                )
            )
        require_files(
            items[start:], file, "unzip the release's images.zip beside the annotation file"
        )
    return items


def read_mathverse(path: Path) -> list[EvalItem]:
    """MathVerse (testmini, and testmini_text_only); categories are the problem versions."""
    items: list[EvalItem] = []
    files = annotation_files(path, ["testmini*.json", "*.json", "*.parquet"], how="testmini.json")
    for file in files:
        start = len(items)
        for row in read_rows(file):
            version = str(row.get("problem_version") or "all")
            multi = str(row.get("question_type", "")).startswith("multi")
            text = str(row.get("question") or "")
            question, options = split_embedded_choices(text) if multi else (text, None)
            if not text.strip():
                # Why: Vision Only rows carry the question in the image; the released
                # query is the only text there is.
                question = str(row.get("query_cot") or row.get("query_wo") or "")
            index = str(row.get("sample_index", row.get("_key")))
            meta = row.get("metadata") or {}
            items.append(
                EvalItem(
                    id=f"text-only-{index}" if version == "Text Only" else index,
                    benchmark="mathverse",
                    category=version,
                    question=question,
                    images=first_image(row, file.parent, "image", "decoded_image"),
                    options=options,
                    gold=str(row["answer"]),
                    answer_type="multiple_choice" if multi else number_type(str(row["answer"])),  # type: ignore[arg-type]
                    meta={
                        "problem_index": row.get("problem_index"),
                        **{k: meta[k] for k in ("subject", "subfield", "source") if k in meta},
                    },
                )
            )
        require_files(items[start:], file, "unzip the release's images.zip beside testmini.json")
    return items


def read_dynamath(path: Path) -> list[EvalItem]:
    """DynaMath: a directory of ``*variant<k>*`` files, or one file with a ``variant`` field."""
    items: list[EvalItem] = []
    for file in annotation_files(path, ["*variant*"], how="*variant<k>*.json(l) files"):
        start = len(items)
        found = re.search(r"variant[_-]?(\d+)", file.stem)
        for row in read_rows(file):
            variant = int(row.get("variant") or (found.group(1) if found else 1))
            items.append(_dynamath_item(row, variant, file.parent))
        require_files(items[start:], file, "the images of each variant belong beside its file")
    return items


def _dynamath_item(row: Row, variant: int, base: Path) -> EvalItem:
    kind = str(row.get("answer_type", "text")).lower()
    gold = str(row["ground_truth"])
    question, options = row["question"], None
    multi = kind.startswith("multiple")
    if multi:
        question, options = split_embedded_choices(question)
    seed = str(row["id"])
    return EvalItem(
        id=f"{seed}-v{variant}",
        benchmark="dynamath",
        category=str(row.get("subject") or "all"),
        question=question,
        images=first_image(row, base, "image", "decoded_image"),
        options=options,
        gold=gold_letters(gold) if multi else gold,
        # Why: "int" golds are float sums (5.000000000000001); they compare as numbers.
        answer_type="multiple_choice"
        if multi
        else ("float" if kind in ("float", "int") else "text"),
        seed_id=seed,
        variant=variant,
        meta={"answer_type": kind, "knowledge_level": row.get("knowledge_level")},
    )


def _read_items(path: Path) -> list[EvalItem]:
    return load_items(path)


#: ``--format`` name → reader.
READERS: dict[str, Reader] = {
    "items": _read_items,
    "mathvista": read_mathvista,
    "mathvision": read_mathvision,
    "mathverse": read_mathverse,
    "dynamath": read_dynamath,
    "wemath": read_wemath,
    "logicvista": read_logicvista,
    "cvbench": read_cvbench,
    "vsibench": read_vsibench,
}


def read_benchmark(name: str, paths: Path | Sequence[Path]) -> list[EvalItem]:
    """Read the files or release directories ``paths`` with the reader for format ``name``.

    Several paths (CV-Bench's ``test_2d`` and ``test_3d``, MathVerse's two files) make
    one list of items.

    Raises:
        ItemsFileError: Unknown format, unreadable file, a row missing a field, a
            missing image, or two items with the same id.
    """
    try:
        reader = READERS[name]
    except KeyError:
        raise ItemsFileError(f"unknown format {name!r}; known: {', '.join(READERS)}") from None
    items: list[EvalItem] = []
    for path in [paths] if isinstance(paths, Path) else paths:
        items += _read_one(name, reader, path)
    seen: set[tuple[str, str]] = set()
    for item in items:
        if item.key in seen:
            raise ItemsFileError(f"two {item.benchmark} items have the id {item.id!r}")
        seen.add(item.key)
    return items


def _read_one(name: str, reader: Reader, path: Path) -> list[EvalItem]:
    try:
        return reader(path)
    except KeyError as exc:
        raise ItemsFileError(f"{path}: a {name} row has no field {exc.args[0]!r}") from None
    except ValueError as exc:
        if isinstance(exc, ItemsFileError):
            raise
        raise ItemsFileError(f"{path}: not a valid {name} file: {exc}") from None
