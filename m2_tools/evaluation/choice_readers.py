"""Readers for the two letter-only benchmarks: WeMath and LogicVista.

- WeMath (``testmini.json``): ``ID, key, question, option, answer, image_path,
  knowledge concept``; ``ID`` names a problem, ``key`` its step (``2steps_1``) or
  its composite (``2steps_multi``).
- LogicVista (``dataset.json``, an object keyed by id): ``imagename, question,
  answer, skill``; options, when written, are in the question (often on one line).
"""

from __future__ import annotations

import re
from pathlib import Path

from m2_tools.evaluation._layout import (
    annotation_files,
    first_image,
    gold_letters,
    image_refs,
    read_rows,
    require_files,
    split_embedded_choices,
)
from m2_tools.evaluation.items import EvalItem, StepRole

__all__ = ["read_logicvista", "read_wemath"]

_WEMATH_KEY = re.compile(r"(\d+)steps?_(\d+|multi)")
_WEMATH_LEVEL = {1: "one-step", 2: "two-step", 3: "three-step"}


def read_wemath(path: Path) -> list[EvalItem]:
    """WeMath (testmini): sub-steps and composites linked by ``ID`` and ``key``."""
    items: list[EvalItem] = []
    for file in annotation_files(
        path, ["testmini.json", "*.json", "*.parquet"], how="testmini.json"
    ):
        start = len(items)
        for row in read_rows(file):
            key = str(row.get("key", ""))
            found = _WEMATH_KEY.fullmatch(key)
            num_steps = int(found.group(1)) if found else None
            role: StepRole | None = None
            if found:
                role = "composite" if found.group(2) == "multi" else f"step_{found.group(2)}"  # type: ignore[assignment]
            level = (
                _WEMATH_LEVEL.get(num_steps or 1, "one-step") if role == "composite" else "one-step"
            )
            option_text = str(row.get("option") or "").strip()
            options = _wemath_options(option_text)
            question = str(row["question"])
            if options is None and option_text:
                question = f"{question}\n{option_text}"  # the options must reach the model
            items.append(
                EvalItem(
                    id=f"{row['ID']}@{key}" if key else str(row["ID"]),
                    benchmark="wemath",
                    category=level,
                    question=question,
                    images=first_image(row, file.parent, "image_path", "image"),
                    options=options,
                    gold=gold_letters(row["answer"]),
                    answer_type="multiple_choice",
                    composite_id=str(row["ID"]) if role else None,
                    step_role=role,
                    num_steps=num_steps,
                    meta={"knowledge_concept": row.get("knowledge concept")},
                )
            )
        require_files(
            items[start:], file, "keep the release's 2steps/ and 3steps/ image folders beside it"
        )
    return items


def _wemath_options(text: str) -> list[str] | None:
    """``A. 3;B. 4; C. 5``: labels in order, each after ``;`` or a space; a letter
    glued to a ``;`` (``the point ;O.;B. …``, a release typo) is not a label."""
    labels: list[re.Match[str]] = []
    position = 0
    for letter in "ABCDEFGH":
        found = re.compile(rf"(?:^|(?<=[;\s])){letter}\s*[.．](?!\s*;)").search(text, position)
        if found is None:
            break
        labels.append(found)
        position = found.end()
    if len(labels) < 2 or text[: labels[0].start()].strip():
        return None
    ends = [match.start() for match in labels[1:]] + [len(text)]
    spans = zip(labels, ends, strict=True)
    options = [text[m.end() : end].strip().rstrip(";").strip() for m, end in spans]
    return options if all(options) else None


def read_logicvista(path: Path) -> list[EvalItem]:
    """LogicVista (``dataset.json``); images are looked up in ``images/`` beside it."""
    items: list[EvalItem] = []
    for file in annotation_files(path, ["dataset.json", "*.json"], how="dataset.json"):
        start = len(items)
        images_dir = file.parent / "images" if (file.parent / "images").is_dir() else file.parent
        for row in read_rows(file):
            gold = gold_letters(row["answer"])
            question, options = split_embedded_choices(row["question"])
            skill = row.get("skill")
            category = skill[0] if isinstance(skill, list) and skill else skill or "all"
            kind = "multi_select" if "," in gold else "multiple_choice"
            items.append(
                EvalItem(
                    id=str(row.get("_key", row.get("id"))),
                    benchmark="logicvista",
                    category=str(category),
                    question=question,
                    images=image_refs(row.get("imagename"), images_dir),
                    options=options,
                    gold=gold,
                    answer_type="integer" if gold.isdigit() else kind,  # type: ignore[arg-type]
                    meta={"broad_capability": row.get("broad_capability")},
                )
            )
        require_files(
            items[start:], file, "put the release's images in images/ beside dataset.json"
        )
    return items
