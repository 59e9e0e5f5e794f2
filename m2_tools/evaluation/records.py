"""Per-item records and the append-only ``records.jsonl`` log a run resumes from.

One line per finished item, written and flushed as soon as the item finishes,
so a killed run loses at most the line being written. On resume a torn last
line is cut off and every item with a record is skipped.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from m2_tools.answers.text import find_boxes, normalise, unwrap_box
from m2_tools.evaluation.items import EvalItem
from m2_tools.schemas import M2Result

__all__ = ["ErrorInfo", "EvalRecord", "Prediction", "RecordLog", "load_records", "written_answer"]

logger = logging.getLogger(__name__)

RecordStatus = Literal["ok", "no_answer", "truncated", "ambiguous", "error"]


class Prediction(BaseModel):
    """The parsed answer of one call: what the scorers compare with the gold answer."""

    model_config = ConfigDict(frozen=True)

    answer: str | None = None
    raw_answer: str | None = Field(
        default=None,
        description="The answer as the model wrote it (box or answer tag), before cleaning.",
    )
    choice: str | None = None
    choice_text: str | None = None
    value: float | None = None
    status: Literal["ok", "no_answer", "truncated", "ambiguous"] = "ok"
    finish_reason: Literal["stop", "length"] = "stop"
    flags: list[str] = Field(default_factory=list)
    confidence: float | None = None

    @classmethod
    def from_result(
        cls, result: M2Result, flags: list[str] | None = None, raw_answer: str | None = None
    ) -> Prediction:
        """The parsed fields of a tool result, with the parser's ``flags`` and the
        uncleaned ``raw_answer`` (both read from the raw output when the result lacks them)."""
        return cls(
            answer=result.answer,
            raw_answer=raw_answer,
            choice=result.choice,
            choice_text=result.choice_text,
            value=result.value,
            status=result.status,
            finish_reason=result.finish_reason,
            flags=list(flags or []),
            confidence=result.confidence,
        )

    @property
    def truncated(self) -> bool:
        """The output was cut off (open tags, or the token limit was reached)."""
        return self.status == "truncated" or self.finish_reason == "length"

    @property
    def conflict(self) -> bool:
        """The parser flagged a letter that disagrees with the stated value."""
        return any("conflict" in flag for flag in self.flags)


def written_answer(raw_output: str) -> str | None:
    """The answer as the model wrote it, uncleaned: the last filled box of the last
    ``<answer>`` block after the reasoning (or of the text after it), stripped.

    Benchmarks that compare the answer with the gold as strings (MathVerse, MathVision)
    need it: the parser's ``answer`` unwraps ``$…$``, ``\\mathrm{}`` and the like.
    """
    text, _ = normalise(raw_output)
    close = text.rfind("</think>")
    if close >= 0:
        text = text[close + len("</think>") :]
    elif "<think>" in text and "<answer>" not in text:
        return None  # cut off inside the reasoning
    end = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, end if end >= 0 else len(text))
    if start >= 0:
        text = text[start + len("<answer>") : end if end > start else len(text)]
    filled = [box for box in find_boxes(text) if box.content.strip()]
    written = unwrap_box(filled[-1].content) if filled else text
    return written.strip() or None


class ErrorInfo(BaseModel):
    """Why an item's call failed (the contract error code and message)."""

    code: str
    message: str


class EvalRecord(BaseModel):
    """What happened to one item: the call, its parsed answer and its score."""

    model_config = ConfigDict(extra="ignore")

    id: str
    benchmark: str
    category: str
    item: EvalItem
    status: RecordStatus
    score: float = Field(..., ge=0, le=1)
    judge: bool = Field(
        default=False,
        description="The official rule leaves this item to a GPT judge: it is listed, "
        "not scored (its score is 0 and it counts in no accuracy).",
    )
    prediction: Prediction | None = None
    raw_output: str | None = None
    error: ErrorInfo | None = None
    timings_ms: dict[str, Any] | None = None
    usage: dict[str, int] | None = None
    session: float = Field(..., description="Start time (epoch seconds) of the run session.")
    finished_at: float = Field(..., description="When the item finished (epoch seconds).")

    @property
    def key(self) -> tuple[str, str]:
        """(benchmark, id), as :attr:`EvalItem.key`."""
        return (self.benchmark, self.id)


def load_records(path: Path) -> list[EvalRecord]:
    """Read every valid record; a torn or invalid line is skipped with a warning.

    A later record of the same item replaces an earlier one (``--retry-errors``).
    """
    if not path.exists():
        return []
    latest: dict[tuple[str, str], EvalRecord] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = EvalRecord.model_validate_json(line)
            except ValidationError:
                logger.warning("%s:%d: skipping an unreadable record", path, number)
                continue
            latest.pop(record.key, None)
            latest[record.key] = record
    return list(latest.values())


class RecordLog:
    """An append-only JSONL log of records, flushed after every line.

    Args:
        path: The ``records.jsonl`` file; created when missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def repair(self) -> None:
        """Cut a torn last line (one a killed run left without its newline)."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            logger.warning("%s: dropping a torn last line (%d bytes)", self.path, len(data) - keep)
            with self.path.open("r+b") as handle:
                handle.truncate(keep)

    def append(self, record: EvalRecord) -> None:
        """Write one record as a line and flush it to the operating system."""
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        line = json.dumps(record.model_dump(mode="json"), ensure_ascii=False)
        self._handle.write(line + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Close the file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RecordLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
