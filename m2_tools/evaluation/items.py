"""The evaluation item: one benchmark question in one JSONL line.

Every reader converts a benchmark's published layout into :class:`EvalItem`;
the runner, the scorers and the report only ever see this model. Relative image
paths are resolved against the directory of the JSONL file that holds them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from m2_tools.prompts import OPTION_LETTERS
from m2_tools.schemas import ToolName

__all__ = [
    "BENCHMARKS",
    "AnswerType",
    "EvalItem",
    "ItemsFileError",
    "StepRole",
    "default_tool",
    "load_items",
    "resolve_image",
    "write_items",
]

logger = logging.getLogger(__name__)

AnswerType = Literal["multiple_choice", "integer", "float", "text", "list", "multi_select"]
StepRole = Literal["step_1", "step_2", "step_3", "composite"]

#: Benchmarks with their own scoring rules; any other name is scored by answer type.
BENCHMARKS = (
    "mathvista",
    "mathvision",
    "mathverse",
    "dynamath",
    "wemath",
    "logicvista",
    "cvbench",
    "vsibench",
    "synthetic",
)
_SPATIAL_BENCHMARKS = frozenset({"cvbench", "vsibench"})


class ItemsFileError(ValueError):
    """An items file is missing, unreadable, or has a line that is not a valid item."""


class EvalItem(BaseModel):
    """One question of a benchmark, with its gold answer and grouping keys.

    Attributes mirror the JSONL fields. Only ``id``, ``benchmark``, ``question``,
    ``gold`` and ``answer_type`` are required.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(..., min_length=1, description="Unique within the benchmark.")
    benchmark: str = Field(..., min_length=1, description="e.g. mathvista, cvbench, synthetic.")
    category: str = Field(
        default="all", description="Task or category that results are grouped by."
    )
    tool: ToolName | None = Field(
        default=None, description="Tool to call; default spatial_reason for cvbench/vsibench."
    )
    question: str = Field(..., min_length=1, description="The question text, verbatim.")
    images: list[str] = Field(
        default_factory=list,
        description="Image references: paths (relative to the JSONL's directory), "
        "file:// URIs, http(s) URLs or data URIs.",
    )
    video: str | None = Field(
        default=None,
        description="One video reference (path relative to the JSONL's directory, file:// "
        "URI or URL), sent as spatial_reason's `video`.",
    )
    options: list[str] | None = Field(
        default=None, description="Option texts in order, without letters (labelled A, B, ...)."
    )
    gold: str = Field(
        ...,
        description="The gold answer as the benchmark gives it: an option letter (or "
        "letters joined by ','), an option text, a number, or a text.",
    )
    answer_type: AnswerType
    precision: int | None = Field(
        default=None,
        ge=0,
        le=12,
        description="Decimals a float answer is rounded to before comparing.",
    )
    unit: str | None = Field(default=None, description="Unit of the answer, for display only.")
    seed_id: str | None = Field(default=None, description="DynaMath: the seed question.")
    variant: int | None = Field(
        default=None, ge=1, description="DynaMath: the variant number (1-10)."
    )
    composite_id: str | None = Field(default=None, description="WeMath: the composite problem.")
    step_role: StepRole | None = Field(
        default=None, description="WeMath: a sub-step or the composite."
    )
    num_steps: int | None = Field(default=None, ge=1, description="WeMath: steps of the composite.")
    source: str | None = Field(default=None, description="CV-Bench: ADE20K, COCO or Omni3D.")
    question_type: str | None = Field(default=None, description="VSI-Bench: the question type.")
    meta: dict[str, Any] = Field(default_factory=dict, description="Anything else, kept as is.")

    @field_validator("gold", mode="before")
    @classmethod
    def _gold_as_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, (int, float)):
            return repr(value) if isinstance(value, float) else str(value)
        if isinstance(value, list):
            return ",".join(str(part).strip() for part in value)
        return value

    @field_validator("options")
    @classmethod
    def _options_fit_letters(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(value) > len(OPTION_LETTERS):
            raise ValueError(f"at most {len(OPTION_LETTERS)} options")
        return value

    @property
    def resolved_tool(self) -> ToolName:
        """The tool this item is sent to."""
        return self.tool or default_tool(self.benchmark)

    @property
    def key(self) -> tuple[str, str]:
        """(benchmark, id): unique across a mixed items file."""
        return (self.benchmark, self.id)


def default_tool(benchmark: str) -> ToolName:
    """The tool a benchmark's items go to when an item names none."""
    return "spatial_reason" if benchmark in _SPATIAL_BENCHMARKS else "visual_math_reason"


def resolve_image(ref: str, base: Path) -> str:
    """Return ``ref`` with a relative filesystem path made absolute against ``base``.

    URLs, data URIs, ``file://`` URIs and bare base64 payloads pass through unchanged.
    """
    lowered = ref[:16].lower()
    if lowered.startswith(("http://", "https://", "data:", "file://")):
        return ref
    if len(ref) > 1024 and "/" not in ref[:64]:  # bare base64, not a path
        return ref
    path = Path(ref).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def load_items(path: Path) -> list[EvalItem]:
    """Read a JSONL items file; relative image paths become absolute.

    Raises:
        ItemsFileError: The file cannot be read, a line is not a valid item, or two
            items share a (benchmark, id).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ItemsFileError(f"cannot read items file {path}: {exc.strerror}") from None
    base = path.resolve().parent
    items: list[EvalItem] = []
    seen: set[tuple[str, str]] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        item = _parse_line(line, path, number)
        if item.key in seen:
            raise ItemsFileError(f"{path}:{number}: duplicate item {item.benchmark}/{item.id}")
        seen.add(item.key)
        images = [resolve_image(ref, base) for ref in item.images]
        video = resolve_image(item.video, base) if item.video else None
        items.append(item.model_copy(update={"images": images, "video": video}))
    return items


def _parse_line(line: str, path: Path, number: int) -> EvalItem:
    try:
        return EvalItem.model_validate_json(line)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "line"
        raise ItemsFileError(f"{path}:{number}: {where}: {first['msg']}") from None


def write_items(items: Iterable[EvalItem], path: Path) -> int:
    """Write ``items`` as JSONL to ``path`` (parents created); return how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for line in _lines(items):
            handle.write(line)
            count += 1
    return count


def _lines(items: Iterable[EvalItem]) -> Iterator[str]:
    for item in items:
        payload = item.model_dump(mode="json", exclude_defaults=True)
        yield json.dumps(payload, ensure_ascii=False) + "\n"
