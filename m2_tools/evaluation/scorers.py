"""Per-item scoring, by each benchmark's own rule (see ``docs/eval.md``).

A scorer compares a :class:`Prediction` (the parser's ``answer``, ``choice``,
``choice_text`` and ``value``) with an item's gold answer and returns a score in
[0, 1]: 0 or 1 everywhere except VSI-Bench's numeric tasks, which use Mean
Relative Accuracy. Benchmark-level numbers (DynaMath worst case, WeMath, the
CV-Bench combined score, the VSI-Bench overall) are built from these in
:mod:`m2_tools.evaluation.aggregates`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from m2_tools.answers.parsing import parse_response
from m2_tools.evaluation.items import EvalItem
from m2_tools.evaluation.records import Prediction

__all__ = [
    "MATHVISION_RULES",
    "MRA_THRESHOLDS",
    "ItemScore",
    "gold_number",
    "mean_relative_accuracy",
    "score_item",
    "usable",
]

#: The ten MRA confidence thresholds θ = 0.50, 0.55, …, 0.95, as exact hundredths.
MRA_THRESHOLDS: tuple[int, ...] = tuple(range(50, 100, 5))
#: MathVision's two tolerance conventions for numeric answers, by their labels.
MATHVISION_RULES = ("abs_1e-6", "official_2dp")
# Slack for comparisons that sit exactly on a boundary (e.g. |2.1-2|/2 vs 1-0.95).
_EPS = 1e-9
_LETTERS = re.compile(r"^[A-Z](?:,[A-Z])*$")


@dataclass(frozen=True)
class ItemScore:
    """An item's score and, where a benchmark has several conventions, each of them."""

    score: float
    scores: dict[str, float] = field(default_factory=dict)


def mean_relative_accuracy(prediction: float | None, gold: float) -> float:
    """VSI-Bench MRA: the share of θ ∈ {0.50, …, 0.95} with |ŷ−y|/y ≤ 1−θ.

    An unparseable (``None``) or non-finite prediction scores 0. Boundaries are
    compared with a 1e-9 slack so that, e.g., MRA(2.1, 2.0) is exactly 1.
    """
    if prediction is None or not math.isfinite(prediction) or not math.isfinite(gold):
        return 0.0
    if gold == 0:
        return 1.0 if prediction == 0 else 0.0
    relative_error = abs(prediction - gold) / abs(gold)
    hits = sum(relative_error <= (100 - theta) / 100 + _EPS for theta in MRA_THRESHOLDS)
    return hits / len(MRA_THRESHOLDS)


def gold_number(text: str) -> float | None:
    """A gold answer as a number: plain decimals, or LaTeX evaluated by the parser."""
    try:
        return float(text.replace(",", "").strip())
    except ValueError:
        pass
    value = parse_response(f"<answer>\\boxed{{{text}}}</answer>").value
    return float(value) if value is not None else None


def usable(item: EvalItem, prediction: Prediction) -> bool:
    """Whether the parser produced what this item's answer type needs (else a parse failure)."""
    if item.answer_type in ("multiple_choice", "multi_select"):
        return prediction.choice is not None
    if item.answer_type in ("integer", "float"):
        return prediction.value is not None
    return prediction.answer is not None


def score_item(item: EvalItem, prediction: Prediction | None) -> ItemScore:
    """Score one prediction (``None`` for a failed call, which scores 0)."""
    if prediction is None:
        return ItemScore(0.0, dict.fromkeys(_conventions(item), 0.0))
    scorer = _SCORERS.get(item.benchmark, _score_generic)
    return scorer(item, prediction)


def _conventions(item: EvalItem) -> tuple[str, ...]:
    free_form = item.answer_type not in ("multiple_choice", "multi_select")
    if item.benchmark in ("mathvision", "mathverse") and free_form:
        return MATHVISION_RULES
    return ()


def _hit(flag: bool) -> ItemScore:
    return ItemScore(1.0 if flag else 0.0)


def _letters(text: str | None) -> frozenset[str]:
    if not text:
        return frozenset()
    compact = text.replace(" ", "").strip("()").upper()
    return frozenset(compact.split(",")) if _LETTERS.match(compact) else frozenset()


def _norm(text: str | None) -> str:
    if text is None:
        return ""
    text = text.strip().strip("$").strip().rstrip(".").strip()
    return re.sub(r"\s+", " ", text).lower()


def _chosen_text(item: EvalItem, prediction: Prediction) -> str | None:
    if prediction.choice_text is not None:
        return prediction.choice_text
    letters = _letters(prediction.choice)
    if item.options and len(letters) == 1:
        index = ord(next(iter(letters))) - ord("A")
        if 0 <= index < len(item.options):
            return item.options[index]
    return None


def _letter_match(item: EvalItem, prediction: Prediction) -> bool:
    """Exact letter (set) equality; a gold given as option text matches the chosen text."""
    gold = _letters(item.gold)
    if gold:
        return _letters(prediction.choice) == gold
    return _norm(_chosen_text(item, prediction)) == _norm(item.gold) != ""


def _close(a: float | None, b: float | None, precision: int | None) -> bool:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return False
    if precision is not None:
        return round(a, precision) == round(b, precision)
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _score_generic(item: EvalItem, prediction: Prediction) -> ItemScore:
    """By answer type: letters, numbers (to ``precision`` or 1e-6 relative), or text."""
    if item.answer_type in ("multiple_choice", "multi_select"):
        return _hit(_letter_match(item, prediction))
    a, b = prediction.value, gold_number(item.gold)
    if item.answer_type == "integer":
        return _hit(a is not None and b is not None and abs(a - b) <= _EPS)
    if item.answer_type == "float":
        return _hit(_close(a, b, item.precision))
    return _hit(_norm(prediction.answer) == _norm(item.gold) != "")


def _truncated_int(value: float | str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except (ValueError, OverflowError):
        return None


def _score_mathvista(item: EvalItem, prediction: Prediction) -> ItemScore:
    """MathVista: option text equals the gold text; ints as int(float(x)); floats rounded."""
    if item.answer_type == "multiple_choice":
        chosen = _chosen_text(item, prediction)
        return _hit(chosen is not None and chosen.strip() == item.gold.strip())
    if item.answer_type == "integer":
        predicted = _truncated_int(prediction.value)
        return _hit(predicted is not None and predicted == _truncated_int(item.gold))
    if item.answer_type == "float":
        precision = item.precision if item.precision is not None else 2
        return _hit(_close(prediction.value, gold_number(item.gold), precision))
    return _hit(_norm(prediction.answer) == _norm(item.gold) != "")


def _score_mathvision(item: EvalItem, prediction: Prediction) -> ItemScore:
    """MathVision (and MathVerse): letters; else equal strings or equal numbers, two ways."""
    if item.answer_type in ("multiple_choice", "multi_select"):
        return _hit(_letter_match(item, prediction))
    same_text = _norm(prediction.answer) == _norm(item.gold) != ""
    a, b = prediction.value, gold_number(item.gold)
    numeric = a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
    strict = same_text or (numeric and abs(a - b) < 1e-6)  # type: ignore[operator]
    official = same_text or (numeric and round(a, 2) == round(b, 2))  # type: ignore[arg-type]
    scores = {"abs_1e-6": float(strict), "official_2dp": float(official)}
    return ItemScore(scores["abs_1e-6"], scores)


def _score_dynamath(item: EvalItem, prediction: Prediction) -> ItemScore:
    """DynaMath: letters; floats within ±0.001; texts equal."""
    if item.answer_type in ("multiple_choice", "multi_select"):
        return _hit(_letter_match(item, prediction))
    if item.answer_type in ("integer", "float"):
        a, b = prediction.value, gold_number(item.gold)
        return _hit(a is not None and b is not None and abs(a - b) <= 0.001 + _EPS)
    return _hit(_norm(prediction.answer) == _norm(item.gold) != "")


def _score_logicvista(item: EvalItem, prediction: Prediction) -> ItemScore:
    """LogicVista: the set of chosen letters equals the gold set exactly."""
    gold = _letters(item.gold)
    return _hit(bool(gold) and _letters(prediction.choice) == gold)


def _score_vsibench(item: EvalItem, prediction: Prediction) -> ItemScore:
    """VSI-Bench: exact letter for multiple choice, MRA for numeric answers."""
    if item.answer_type in ("multiple_choice", "multi_select"):
        return _hit(_letter_match(item, prediction))
    gold = gold_number(item.gold)
    return ItemScore(mean_relative_accuracy(prediction.value, gold) if gold is not None else 0.0)


_SCORERS: dict[str, Callable[[EvalItem, Prediction], ItemScore]] = {
    "mathvista": _score_mathvista,
    "mathvision": _score_mathvision,
    "mathverse": _score_mathvision,
    "dynamath": _score_dynamath,
    "logicvista": _score_logicvista,
    "vsibench": _score_vsibench,
    # WeMath, CV-Bench and the synthetic suite score items by answer type (letters).
}
