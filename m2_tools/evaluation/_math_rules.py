"""The scoring rules of MathVista, MathVision and MathVerse, as their repositories apply them.

Our parser's reading of the output takes the place of each pipeline's answer
extraction (GPT for MathVista and MathVerse, string heuristics for MathVision);
what the official code does with the extracted answer is followed here:

- MathVista (``calculate_score.py``): a letter picks its option, any other text the
  option nearest in edit distance; integers as ``str(int(float(x)))``, floats as
  ``str(round(float(x), precision))``, lists as ``str(x)``; then string equality
  with the gold.
- MathVision (``evaluate.py``, ``utils.py``): the model's answer is cleaned
  (``find_math_answer``), the gold is not; equal after lower-casing, or equal tuples,
  or equal values rounded to 2 decimals; against the gold letter or its option text.
- MathVerse (``score_answer_s2.py``): an extraction equal to the gold is right; no
  extraction at all is wrong; anything else goes to a GPT judge, so it is returned as
  ``None`` (judge).
"""

from __future__ import annotations

import re

from m2_tools.answers.expr import evaluate
from m2_tools.evaluation.items import EvalItem
from m2_tools.evaluation.records import Prediction

__all__ = ["edit_distance", "mathverse", "mathvision", "mathvision_clean", "mathvista"]

_PAREN_LETTER = re.compile(r"\(([a-zA-Z])\)")
_BOXED = re.compile(r"oxed{(.*)}", re.S)
# latex2sympy reads these commands; any other letter makes a symbol, which fails to evaluate.
_LATEX_WORDS = re.compile(r"\\(?:[dt]?frac|sqrt|pi|times|cdot|div)")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions and substitutions cost 1)."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def mathvista(item: EvalItem, prediction: Prediction) -> float:
    """MathVista's ``normalize_extracted_answer`` then ``safe_equal`` with the gold."""
    gold = item.gold
    if item.answer_type == "multiple_choice" and item.options:
        choice = prediction.choice if prediction.choice and len(prediction.choice) == 1 else None
        extraction = (choice or prediction.answer or "").strip()
        letter = _PAREN_LETTER.findall(extraction)
        if letter:
            extraction = letter[0].upper()
        letters = [chr(ord("A") + i) for i in range(len(item.options))]
        if extraction in letters:
            chosen = item.options[letters.index(extraction)]
        else:
            distances = [edit_distance(extraction, option) for option in item.options]
            chosen = item.options[distances.index(min(distances))]
        return float(chosen == gold)
    number: float | str | None = (
        prediction.value if prediction.value is not None else prediction.answer
    )
    try:
        if item.answer_type == "integer":
            return float(str(int(float(number))) == gold)  # type: ignore[arg-type]
        if item.answer_type == "float":
            return float(str(round(float(number), int(item.precision))) == gold)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return float(any(text == gold for text in (prediction.answer, prediction.raw_answer) if text))


def mathvision_clean(text: str) -> str:
    """MathVision's ``find_math_answer`` and the replacements ``evaluate.py`` applies after it."""
    s = text.lower().replace("{}", "")
    boxed = _BOXED.findall(s)
    answer = boxed[-1] if boxed else s
    close, opening = answer.find("}"), answer.find("{")
    if close != -1 and (opening == -1 or close < opening):
        answer = answer.split("}")[0]
    answer = answer.split("=")[-1].split("\\approx")[-1]
    for old, new in (
        (" ", ""), ("\\,", ""), ("∞", "\\infty"), ("+\\infty", "\\infty"), ("\\\\", "\\"),
        ("\n", ""), ("\\text", ""), ("\\mbox", ""), ("bmatrix", "pmatrix"), ("\\left", ""),
        ("\\right", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("{m}^3", ""), ("m^3", ""),
        ("{units}", ""), ("units", ""), ("{km}", ""), ("km", ""),
    ):  # fmt: skip
        answer = answer.replace(old, new)
    answer = _strip_string(answer)
    for letter in "abcde":
        answer = answer.replace(f"({letter})", letter)
    for letter in "abcde":
        answer = answer.replace(f"{{{letter}}}", letter)
    return answer.rstrip(".").lstrip(":").strip()


def _strip_string(s: str) -> str:
    for old, new in (
        ("\n", ""), ("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"), ("dfrac", "frac"),
        ("\\left", ""), ("\\right", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("\\$", ""), ("$", ""),
    ):  # fmt: skip
        s = s.replace(old, new)
    s = s.split("\\text{ ")[0].replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    if len(s.split("=")) == 2:
        s = s.split("=")[-1]
    if len(s.split("\\approx")) == 2:
        s = s.split("\\approx")[-1]
    if "sqrt" in s:
        s = re.sub(r"\\sqrt(?!{)(.)", r"\\sqrt{\1}", s)
    s = s.replace(" ", "")
    if "sqrt" in s:
        s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    found = re.fullmatch(r"(-?\d+)/(-?\d+)", s)
    if found and s == f"{int(found.group(1))}/{int(found.group(2))}":
        s = f"\\frac{{{int(found.group(1))}}}{{{int(found.group(2))}}}"
    return s


def _fix_fracs(s: str) -> str:
    """``\\frac12`` → ``\\frac{1}{2}`` (MathVision's ``_fix_fracs``)."""
    head, *rest = s.split("\\frac")
    out = head
    for sub in rest:
        out += "\\frac"
        if sub.startswith("{"):
            out += sub
            continue
        if len(sub) < 2:
            return s
        a, b, tail = sub[0], sub[1], sub[2:]
        out += f"{{{a}}}" + (f"{{{b}}}{tail}" if b != "{" else f"{b}{tail}")
    return out


def _latex_value(text: str) -> float | None:
    """``round(eval(str(latex2sympy(text))), 2)`` for the forms latex2sympy reads, else None."""
    s = text.replace("$", "").replace("\\left", "").replace("\\right", "").strip()
    if ":" in s:
        parts = s.split(":")
        values = [_latex_value(part) for part in parts] if len(parts) == 2 else [None]
        if any(v is None for v in values) or values[1] == 0:
            return None
        return round(values[0] / values[1], 2)  # type: ignore[operator]
    s = s.replace("\\%", "/100")
    if re.search(r"[a-zA-Z]", _LATEX_WORDS.sub("", s)) or "\\circ" in s:
        return None
    value = evaluate(s)
    return None if value is None else round(value, 2)


def _tuple(s: str) -> str:
    """MathVision's ``eval_tuple``: a (…) or […] of several parts, each evaluated to 2 decimals."""
    parts = s[1:-1].split(",")
    brackets = s[:1] + s[-1:]
    if brackets not in ("()", "[]") or len(parts) < 2:
        return s
    out = []
    for part in parts:
        if "infty" in part or part in ("a", "-a"):
            out.append(part)
            continue
        value = _latex_value(part)
        if value is None:
            return s
        # latex2sympy reads decimals as exact numbers (4.0 → 4) but leaves a division
        # unevaluated, which Python's eval then makes a float (4/2 → 2.0).
        divided = "/" in part or "frac" in part
        out.append(str(int(value)) if value.is_integer() and not divided else str(value))
    return f"{brackets[0]}{','.join(out)}{brackets[1]}"


def _is_equal(answer: str, gold: str) -> bool:
    """MathVision's ``is_equal``: lower-cased text, then tuples, then values to 2 decimals."""
    answer, gold = answer.lower(), gold.lower()
    if not answer.replace(" ", "") or not gold.replace(" ", ""):
        return False
    if gold.strip() == answer.strip():
        return True
    answer, gold = _tuple(answer), _tuple(gold)
    if gold == answer:
        return True
    a, b = _latex_value(gold), _latex_value(answer)
    return a is not None and b is not None and a == b


def mathvision(item: EvalItem, prediction: Prediction) -> float:
    """Right when the cleaned answer equals the gold, or (with options) the gold's option text."""
    gold = item.gold
    gold_text = ""
    if item.options and len(gold) == 1 and 0 <= ord(gold) - ord("A") < len(item.options):
        gold_text = item.options[ord(gold) - ord("A")]
    choice = prediction.choice if prediction.choice and len(prediction.choice) == 1 else None
    written = choice or prediction.raw_answer or prediction.answer
    if not written:
        return 0.0
    answer = mathvision_clean(written)
    return float(_is_equal(answer, gold) or _is_equal(answer, gold_text))


def mathverse(item: EvalItem, prediction: Prediction) -> float | None:
    """1 when an extraction (the answer as written, cleaned, or the letter) equals the
    gold after stripping; otherwise ``None``: the official code asks a GPT judge."""
    gold = item.gold.strip()
    written = [
        text.strip()
        for text in (prediction.raw_answer, prediction.answer, prediction.choice)
        if text
    ]
    if gold in written:
        return 1.0
    # Why: when the parser found no answer there is nothing to judge; the judge's own
    # prompt scores a null answer 0.
    return None if prediction.answer or prediction.choice else 0.0
