"""Per-item scoring, by each benchmark's own rule (see ``docs/eval.md``).

A scorer compares a :class:`Prediction` (the parser's ``answer``, ``raw_answer``,
``choice``, ``choice_text`` and ``value``: the tools' own extraction, standing in
for the official pipelines' answer extraction) with an item's gold answer, the way
each benchmark's own scoring code does:

- MathVista, MathVision, MathVerse: :mod:`m2_tools.evaluation._math_rules`;
- DynaMath (its repository's script), WeMath and LogicVista (theirs), CV-Bench and
  VSI-Bench (as VLMEvalKit scores them): here.

Scores are 0 or 1 except VSI-Bench's numeric tasks (Mean Relative Accuracy). An
item the official code leaves to a GPT judge comes back with ``judge=True``: it is
listed, never scored. Benchmark-level numbers are built in
:mod:`m2_tools.evaluation.aggregates`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from m2_tools.evaluation import _math_rules
from m2_tools.evaluation.items import EvalItem
from m2_tools.evaluation.records import Prediction

__all__ = [
    "MRA_THRESHOLDS",
    "ItemScore",
    "answer_letters",
    "mean_relative_accuracy",
    "score_item",
    "usable",
]

#: The ten MRA confidence thresholds θ, computed as VLMEvalKit's ``np.linspace(.5, .95, 10)``.
MRA_THRESHOLDS: tuple[float, ...] = (*(0.5 + i * ((0.95 - 0.5) / 9) for i in range(9)), 0.95)
_EPS = 1e-9
_LETTER_SEPARATOR = re.compile(r"\s*(?:,|;|&|\band\b|\s)\s*")
_LETTER_TOKEN = re.compile(r"\(?([A-Za-z])\)?\.?")
_LEADING_LABEL = re.compile(r"\(?([A-Za-z])\)?\s*[.:)]\s")
_WEMATH_DROP = re.compile(r"[><:.]")


@dataclass(frozen=True)
class ItemScore:
    """An item's score, or that the official rule leaves it to a GPT judge (score 0)."""

    score: float
    judge: bool = False


def mean_relative_accuracy(prediction: float | None, gold: float | None) -> float:
    """VSI-Bench MRA as VLMEvalKit computes it: the share of θ ∈ {0.50, …, 0.95} with
    ``|ŷ−y|/|y| <= 1−θ`` in floating point (``|ŷ|`` against ``1−θ`` when ``y`` is 0).

    An unparseable (``None``) or non-finite prediction scores 0.
    """
    if (
        prediction is None
        or gold is None
        or not (math.isfinite(prediction) and math.isfinite(gold))
    ):
        return 0.0
    error = abs(prediction - gold) if gold == 0 else abs((prediction - gold) / gold)
    return sum(error <= 1 - theta for theta in MRA_THRESHOLDS) / len(MRA_THRESHOLDS)


def usable(item: EvalItem, prediction: Prediction) -> bool:
    """Whether the parser produced what this item's answer type needs (else a parse failure)."""
    if item.answer_type in ("multiple_choice", "multi_select"):
        return prediction.choice is not None or bool(answer_letters(prediction.answer))
    if item.answer_type in ("integer", "float"):
        return prediction.value is not None
    return prediction.answer is not None


def score_item(item: EvalItem, prediction: Prediction | None) -> ItemScore:
    """Score one prediction (``None`` for a failed call, which scores 0)."""
    if prediction is None:
        return ItemScore(0.0)
    scorer = _SCORERS.get(item.benchmark, _score_generic)
    return scorer(item, prediction)


def answer_letters(text: str | None) -> list[str]:
    """Option letters a free answer names: ``C``, ``(c)``, ``A, C``, ``B and D``, ``C) 14``."""
    text = (text or "").strip()
    tokens = [token for token in _LETTER_SEPARATOR.split(text) if token]
    matches = [_LETTER_TOKEN.fullmatch(token) for token in tokens]
    if matches and all(matches):
        return [match.group(1).upper() for match in matches if match]
    leading = _LEADING_LABEL.match(text)
    return [leading.group(1).upper()] if leading else []


def _chosen(prediction: Prediction) -> list[str]:
    """The letters chosen: the parser's ``choice``, else letters the answer names."""
    if prediction.choice:
        return [part.strip().upper() for part in prediction.choice.split(",") if part.strip()]
    return answer_letters(prediction.answer)


def _judged(score: float | None) -> ItemScore:
    return ItemScore(0.0, judge=True) if score is None else ItemScore(score)


def _hit(flag: bool) -> ItemScore:
    return ItemScore(1.0 if flag else 0.0)


def _gold_number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").strip())
    except ValueError:
        return None


def _score_generic(item: EvalItem, prediction: Prediction) -> ItemScore:
    """By answer type: letter sets, numbers (to ``precision`` or 1e-6 relative), or text."""
    if item.answer_type in ("multiple_choice", "multi_select"):
        gold = sorted(part.strip().upper() for part in item.gold.split(","))
        if item.options and not all(len(part) == 1 for part in gold):
            chosen = prediction.choice_text or ""
            return _hit(chosen.strip().lower() == item.gold.strip().lower() != "")
        return _hit(sorted(_chosen(prediction)) == gold)
    a, b = prediction.value, _gold_number(item.gold)
    if item.answer_type in ("integer", "float"):
        if a is None or b is None:
            return ItemScore(0.0)
        if item.precision is not None:
            return _hit(round(a, item.precision) == round(b, item.precision))
        return _hit(math.isclose(a, b, rel_tol=1e-6, abs_tol=_EPS))
    norm = " ".join((prediction.answer or "").lower().split())
    return _hit(norm == " ".join(item.gold.lower().split()) != "")


def _dynamath_number(prediction: Prediction) -> float | None:
    """DynaMath's own parse of a float answer (first word, ``π`` multiplied out), else
    the tools' value (standing in for VLMEvalKit's LLM re-extraction)."""
    answer = (prediction.answer or "").strip()
    try:
        token = answer if answer.isdigit() else answer.split(" ")[0]
        if "π" in token:
            return float(token.split("π")[0]) * math.pi
        return float(token)
    except ValueError:
        return prediction.value


def _score_dynamath(item: EvalItem, prediction: Prediction) -> ItemScore:
    """DynaMath's script: floats (and the float-valued ``int`` golds) within ±0.001;
    a one-letter choice equal to the gold, else the gold among the first 3 characters;
    any other answer is right when it contains the gold."""
    if item.answer_type == "float":
        value, gold = _dynamath_number(prediction), _gold_number(item.gold)
        return _hit(value is not None and gold is not None and abs(value - gold) <= 0.001)
    if item.answer_type == "multiple_choice":
        answer = prediction.choice or (prediction.answer or "").strip()
        return _hit(answer == item.gold if len(answer) == 1 else item.gold in answer[:3])
    written = [text for text in (prediction.answer, prediction.raw_answer) if text]
    return _hit(any(item.gold in text for text in written))


def _score_wemath(item: EvalItem, prediction: Prediction) -> ItemScore:
    """WeMath: the first letter (A-H) of the answer after its last ``Answer`` equals the gold."""
    if prediction.choice and len(prediction.choice) == 1:
        return _hit(prediction.choice == item.gold)
    text = (prediction.answer or "").split("Answer")[-1].strip()
    text = _WEMATH_DROP.sub("", text).strip()
    letter = text[0] if text and text[0] in "ABCDEFGH" else None
    return _hit(letter == item.gold)


def _score_logicvista(item: EvalItem, prediction: Prediction) -> ItemScore:
    """LogicVista: the chosen letters (or number), lower-cased and sorted, equal the gold's."""
    gold = sorted(part.strip().lower() for part in item.gold.split(","))
    chosen = [letter.lower() for letter in _chosen(prediction)]
    run = (prediction.answer or "").strip()
    if not chosen and len(gold) > 1 and re.fullmatch(r"[A-Z]{2,8}", run):
        chosen = list(run.lower())  # "BD" for the letters B and D
    if not chosen and prediction.value is not None and prediction.value.is_integer():
        chosen = [str(int(prediction.value))]
    return _hit(sorted(chosen) == gold)


def _score_letter(item: EvalItem, prediction: Prediction) -> ItemScore:
    """VLMEvalKit's multiple choice: the one extracted letter equals the gold letter."""
    chosen = _chosen(prediction)
    return _hit(len(chosen) == 1 and chosen[0] == item.gold.strip().strip("()").upper())


def _score_vsibench(item: EvalItem, prediction: Prediction) -> ItemScore:
    """VSI-Bench (VLMEvalKit): exact letter for multiple choice, MRA for numeric answers."""
    if item.answer_type in ("multiple_choice", "multi_select"):
        return _score_letter(item, prediction)
    return ItemScore(mean_relative_accuracy(prediction.value, _gold_number(item.gold)))


_SCORERS: dict[str, Callable[[EvalItem, Prediction], ItemScore]] = {
    "mathvista": lambda i, p: ItemScore(_math_rules.mathvista(i, p)),
    "mathvision": lambda i, p: ItemScore(_math_rules.mathvision(i, p)),
    "mathverse": lambda i, p: _judged(_math_rules.mathverse(i, p)),
    "dynamath": _score_dynamath,
    "wemath": _score_wemath,
    "logicvista": _score_logicvista,
    "cvbench": _score_letter,
    "vsibench": _score_vsibench,
}
