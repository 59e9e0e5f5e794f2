"""Readers: benchmarks' own published layouts → :class:`EvalItem`.

Each reader takes the benchmark's annotation file as published (JSON or JSONL;
export Parquet releases to JSONL first) and resolves image paths against the
file's directory. Only the field names of the official releases are read:

- MathVista testmini: ``pid, question, image, choices, unit, precision, answer,
  question_type, answer_type, metadata{task, ...}`` (a dict keyed by pid, or a list).
- MathVision: ``id, question, options, image, answer, level, subject``.
- MathVerse: ``sample_index, problem_version, question, image, answer,
  question_type, metadata{subject, ...}``; options embedded in the question.
- DynaMath: ``id, question, image, ground_truth, answer_type, subject,
  knowledge_level``, one file per variant (``*variant<k>*``) or a ``variant`` field.
- WeMath: ``ID, key, question, option, answer, image_path, knowledge concept``.
- LogicVista: a dict keyed by id of ``imagename, question, answer, skill``.
- CV-Bench and VSI-Bench: see :mod:`m2_tools.evaluation.spatial_readers`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from m2_tools.evaluation._layout import (
    Row,
    gold_letters,
    image_refs,
    number_type,
    read_rows,
    split_embedded_choices,
)
from m2_tools.evaluation.items import EvalItem, ItemsFileError, StepRole, load_items

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


_MATHVISTA_TYPES = ("multiple_choice", "integer", "float")


def read_mathvista(path: Path) -> list[EvalItem]:
    """MathVista (testmini): multiple-choice gold is the option text."""
    items = []
    for row in read_rows(path):
        meta = row.get("metadata") or {}
        choices: list[Any] = row.get("choices") or []
        multi = bool(row.get("question_type") == "multi_choice" and choices)
        answer_type = "multiple_choice" if multi else str(row.get("answer_type"))
        precision = row.get("precision")
        items.append(
            EvalItem(
                id=str(row.get("pid", row.get("_key"))),
                benchmark="mathvista",
                category=str(meta.get("task") or "all"),
                question=row["question"],
                images=image_refs(row.get("image"), path.parent),
                options=[str(choice) for choice in choices] if multi else None,
                gold=str(row["answer"]),
                answer_type=answer_type if answer_type in _MATHVISTA_TYPES else "text",  # type: ignore[arg-type]
                precision=int(float(precision)) if precision is not None else None,
                unit=row.get("unit") or None,
                meta={k: meta[k] for k in ("source", "context", "grade", "skills") if k in meta},
            )
        )
    return items


def read_mathvision(path: Path) -> list[EvalItem]:
    """MathVision (test or testmini JSONL)."""
    items = []
    for row in read_rows(path):
        options = [str(option) for option in row.get("options") or []] or None
        gold = str(row["answer"]).strip()
        items.append(
            EvalItem(
                id=str(row["id"]),
                benchmark="mathvision",
                category=str(row.get("subject") or "all"),
                question=row["question"],
                images=image_refs(row.get("image"), path.parent),
                options=options,
                gold=gold_letters(gold) if options else gold,
                answer_type="multiple_choice" if options else number_type(gold),  # type: ignore[arg-type]
                meta={"level": row["level"]} if "level" in row else {},
            )
        )
    return items


def read_mathverse(path: Path) -> list[EvalItem]:
    """MathVerse (testmini); categories are the problem versions."""
    items = []
    for row in read_rows(path):
        gold = str(row["answer"]).strip()
        multi = str(row.get("question_type", "")).startswith("multi")
        question, options = (
            split_embedded_choices(row["question"]) if multi else (row["question"], None)
        )
        meta = row.get("metadata") or {}
        items.append(
            EvalItem(
                id=str(row.get("sample_index", row.get("_key"))),
                benchmark="mathverse",
                category=str(row.get("problem_version") or "all"),
                question=question or row["question"],
                images=image_refs(row.get("image"), path.parent),
                options=options,
                gold=gold_letters(gold) if multi else gold,
                answer_type="multiple_choice" if multi else number_type(gold),  # type: ignore[arg-type]
                meta={k: meta[k] for k in ("subject", "subfield", "source") if k in meta},
            )
        )
    return items


def read_dynamath(path: Path) -> list[EvalItem]:
    """DynaMath: a directory of ``*variant<k>*`` files, or one file with a ``variant`` field."""
    files = sorted(path.glob("*variant*.json*")) if path.is_dir() else [path]
    if not files:
        raise ItemsFileError(f"{path}: no DynaMath *variant<k>*.json(l) files")
    items = []
    for file in files:
        found = re.search(r"variant[_-]?(\d+)", file.stem)
        for row in read_rows(file):
            variant = int(row.get("variant") or (found.group(1) if found else 1))
            items.append(_dynamath_item(row, variant, file.parent))
    return items


def _dynamath_item(row: Row, variant: int, base: Path) -> EvalItem:
    kind = str(row.get("answer_type", "text")).lower()
    gold = str(row["ground_truth"]).strip()
    question, options = row["question"], None
    if kind.startswith("multiple"):
        question, options = split_embedded_choices(question)
    seed = str(row["id"])
    return EvalItem(
        id=f"{seed}-v{variant}",
        benchmark="dynamath",
        category=str(row.get("subject") or "all"),
        question=question,
        images=image_refs(row.get("image"), base),
        options=options,
        gold=gold_letters(gold) if kind.startswith("multiple") else gold,
        answer_type="multiple_choice"
        if kind.startswith("multiple")
        else ("float" if kind == "float" else "text"),
        seed_id=seed,
        variant=variant,
        meta={"knowledge_level": row["knowledge_level"]} if "knowledge_level" in row else {},
    )


_WEMATH_KEY = re.compile(r"(\d+)steps?_(\d+|multi)")
_WEMATH_LEVEL = {1: "one-step", 2: "two-step", 3: "three-step"}


def read_wemath(path: Path) -> list[EvalItem]:
    """WeMath (testmini): sub-steps and composites linked by ``ID`` and ``key``."""
    items = []
    for row in read_rows(path):
        key = str(row.get("key", ""))
        found = _WEMATH_KEY.fullmatch(key)
        num_steps = int(found.group(1)) if found else None
        role: StepRole | None = None
        if found:
            role = "composite" if found.group(2) == "multi" else f"step_{found.group(2)}"  # type: ignore[assignment]
        level = _WEMATH_LEVEL.get(num_steps or 1, "one-step") if role == "composite" else "one-step"
        options = [
            part.strip() for part in re.split(r";\s*(?=[A-Z]\s*\.)", str(row.get("option", "")))
        ]
        options = [re.sub(r"^[A-Z]\s*\.\s*", "", part) for part in options if part]
        items.append(
            EvalItem(
                id=f"{row['ID']}@{key}" if key else str(row["ID"]),
                benchmark="wemath",
                category=level,
                question=row["question"],
                images=image_refs(row.get("image_path"), path.parent),
                options=options if len(options) >= 2 else None,
                gold=gold_letters(row["answer"]),
                answer_type="multiple_choice",
                composite_id=str(row["ID"]) if role else None,
                step_role=role,
                num_steps=num_steps,
                meta={"knowledge_concept": row.get("knowledge concept")},
            )
        )
    return items


def read_logicvista(path: Path) -> list[EvalItem]:
    """LogicVista (``dataset.json``); images are looked up in ``images/`` beside it."""
    images_dir = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    items = []
    for row in read_rows(path):
        gold = gold_letters(row["answer"])
        question, options = split_embedded_choices(row["question"])
        skill = row.get("skill")
        category = skill[0] if isinstance(skill, list) and skill else skill or "all"
        several = "," in gold
        items.append(
            EvalItem(
                id=str(row.get("_key", row.get("id"))),
                benchmark="logicvista",
                category=str(category),
                question=question,
                images=image_refs(row.get("imagename"), images_dir),
                options=options,
                gold=gold,
                answer_type="multi_select" if several else "multiple_choice",
                meta={"broad_capability": row.get("broad_capability")},
            )
        )
    return items


def _read_items(path: Path) -> list[EvalItem]:
    return load_items(path)


def _spatial(name: str) -> Reader:
    def read(path: Path) -> list[EvalItem]:
        from m2_tools.evaluation import spatial_readers

        reader: Reader = getattr(spatial_readers, f"read_{name}")
        return reader(path)

    return read


#: ``--format`` name → reader.
READERS: dict[str, Reader] = {
    "items": _read_items,
    "mathvista": read_mathvista,
    "mathvision": read_mathvision,
    "mathverse": read_mathverse,
    "dynamath": read_dynamath,
    "wemath": read_wemath,
    "logicvista": read_logicvista,
    "cvbench": _spatial("cvbench"),
    "vsibench": _spatial("vsibench"),
}


def read_benchmark(name: str, path: Path) -> list[EvalItem]:
    """Read ``path`` with the reader for format ``name`` (see :data:`READERS`).

    Raises:
        ItemsFileError: Unknown format, unreadable file, or a row missing a field.
    """
    try:
        reader = READERS[name]
    except KeyError:
        raise ItemsFileError(f"unknown format {name!r}; known: {', '.join(READERS)}") from None
    try:
        return reader(path)
    except KeyError as exc:
        raise ItemsFileError(f"{path}: a {name} row has no field {exc.args[0]!r}") from None
    except ValueError as exc:
        if isinstance(exc, ItemsFileError):
            raise
        raise ItemsFileError(f"{path}: not a valid {name} file: {exc}") from None
