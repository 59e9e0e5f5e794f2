"""Reading one number out of a cleaned answer (the ``value`` field of docs/parsing.md).

:func:`parse_number` is strict: the answer must *be* one number, optionally with a
lead-in (``x =``, ``about``), a unit, currency, a degree mark or a percent sign.
Ranges, intervals, lists, ``±`` and inequalities give ``None``.
:func:`number_in_sentence` is the lenient fallback for a short sentence that holds
exactly one number ("There are 4 chairs").
"""

from __future__ import annotations

import re
from functools import lru_cache

from m2_tools.answers.expr import evaluate

__all__ = ["number_in_sentence", "parse_number"]

_MAX_CHARS = 200
_MAX_SENTENCE_CHARS = 120

_CHAR_MAP = str.maketrans(
    {
        "\u2212": "-",  # minus sign
        "\u2013": "-",
        "\u2014": "-",
        "\ufe63": "-",
        "\uff0d": "-",
        "\uff0b": "+",
        "\u00d7": " \\times ",
        "\u00b7": " \\cdot ",
        "\u22c5": " \\cdot ",
        "\u00f7": "/",
        "\u00b2": "^2",
        "\u00b3": "^3",
        "\u221a": "\\sqrt ",
        "\u03c0": "\\pi ",
        "\uff05": "%",
        "\uff0c": ",",
        "\uff0e": ".",
        "\u2248": " \\approx ",
        "\uff5e": "~",
        **{chr(0xFF10 + d): str(d) for d in range(10)},
    }
)
_MULTI_RE = re.compile(
    r"\\pm|\\mp|±|∓|\\[lg]eq?(?![A-Za-z])|\\neq?(?![A-Za-z])|[<>≤≥≠]|\\[lg]t(?![A-Za-z])"
    r"|\d\s*(?:~|\bto\b|至|到)\s*-?\d"
)
_APPROX_RE = re.compile(r"\\(?:approx|simeq|thickapprox|sim)(?![A-Za-z])|~")
_DROP_RE = re.compile(
    r"\\(?:left|right|displaystyle|quad|qquad|big|Big)(?![A-Za-z])|\\[,;:! ]|(?<!\\)\$"
    r"|\\(?:text|textbf|textrm|mathrm|mathbf|operatorname|mbox)\s*(?=\{)"
)
_THIN_THOUSANDS_RE = re.compile(r"(?<=\d)(?:\\[,!]|\{,\})(?=\d{3}(?!\d))")
_DEGREE_RE = re.compile(
    r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|[°º]|\bdeg(?:ree)?s?\b", re.IGNORECASE
)
_PERCENT_RE = re.compile(r"\\?%|\bper\s*cent\b|\bpercent(?:age)?\b", re.IGNORECASE)
_CURRENCY_RE = re.compile(r"\\\$|\$|US\$|USD\b|RMB\b|\bRs\.?|[€£¥￥₹]")
_X_TIMES_TEN_RE = re.compile(r"(?<=\d)\s*[xX]\s*(?=10\s*\^)")
_SHORT_FRAC_RE = re.compile(r"\\([dtc]?frac)\s*(\d)\s*(\d)")
_FILLER_RE = re.compile(
    r"^(?:approximately|approx\.?|about|around|roughly|nearly|almost|exactly|only|just"
    r"|约|大约|大概|约为)\s*",
    re.IGNORECASE,
)
_LIST_WORD_RE = re.compile(r",|;|\bor\b|\band\b|或|和", re.IGNORECASE)

_SMALL_WORDS = {
    word: index
    for index, word in enumerate(
        (
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        )
    )
}
_TENS_WORDS = {
    word: 10 * (index + 2)
    for index, word in enumerate(
        ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
    )
}
_SCALE_WORDS = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER_WORDS = set(_SMALL_WORDS) | set(_TENS_WORDS) | set(_SCALE_WORDS) | {"hundred"}
_WORDS_RE = re.compile(r"[a-z]+")
_WORDS_ONLY_RE = re.compile(r"[A-Za-z]+(?:[\s-]+[A-Za-z]+)*")

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_RE = re.compile(
    r"([零〇一二两三四五六七八九十百]{1,4})"
    r"(?:[个只条人辆张本位米度元块次岁名颗棵把台层天年月秒倍瓶杯支朵间][\u4e00-\u9fff]{0,2})?"
)
_MATH_CHARS = frozenset("\\=^_/*+<>")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_PLAIN_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
# Why: "P1" or "x2" name things; only a number standing on its own is the answer.
_SENTENCE_NUMBER_RE = re.compile(r"(?:(?<![\w.-])-)?(?<![\w.])\d+(?:\.\d+)?")


def parse_number(text: str) -> float | None:
    """Return the single number that ``text`` is, or ``None``.

    Args:
        text: A cleaned answer such as ``\\frac{3}{4}``, ``x = 5``, ``12 cm^2`` or ``五``.
    """
    if len(text) > _MAX_CHARS:
        return None
    return _parse_cached(text)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> float | None:
    prepared = _prepare(text)
    if prepared is None:
        return None
    for reader in (_from_words, _from_chinese, evaluate):
        value = reader(prepared)
        if value is not None:
            return value
    return None


def _prepare(text: str) -> str | None:
    s = _THIN_THOUSANDS_RE.sub("", text.translate(_CHAR_MAP))
    s = _DROP_RE.sub(" ", s.replace("{,}", ","))
    if _MULTI_RE.search(s):
        return None
    pieces = [p for p in _APPROX_RE.split(s) if p.strip()]
    s = pieces[-1] if pieces else ""
    right = _after_equals(s)
    if right is None:
        return None
    s = _DEGREE_RE.sub(" ", right)
    s = _PERCENT_RE.sub(" ", s)
    s = _CURRENCY_RE.sub(" ", s)
    s = _X_TIMES_TEN_RE.sub(" \\\\times ", s)
    s = _SHORT_FRAC_RE.sub(r"\\\1{\2}{\3}", s)
    return _FILLER_RE.sub("", s.strip()).strip() or None


def _after_equals(s: str) -> str | None:
    """Keep what follows the last ``=``; ``x = 5, y = 3`` and ``x=5 or x=-5`` give None."""
    if "=" not in s:
        return s
    left, _, right = s.rpartition("=")
    if "=" in left and _LIST_WORD_RE.search(left.rpartition("=")[2]):
        return None
    return right if right.strip() else None


def _from_words(s: str) -> float | None:
    """English number words, optionally followed by one noun: ``three``, ``two chairs``."""
    words = _WORDS_RE.findall(s.lower())
    if not words or words[0] not in _NUMBER_WORDS or not _WORDS_ONLY_RE.fullmatch(s):
        return None
    if words[-1] not in _NUMBER_WORDS:
        words = words[:-1]
    words = [w for w in words if w != "and"]
    if not words or any(w not in _NUMBER_WORDS for w in words):
        return None
    total, current = 0, 0
    for word in words:
        if word in _SMALL_WORDS:
            current += _SMALL_WORDS[word]
        elif word in _TENS_WORDS:
            current += _TENS_WORDS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        else:
            total += (current or 1) * _SCALE_WORDS[word]
            current = 0
    return float(total + current)


def _from_chinese(s: str) -> float | None:
    """A small Chinese numeral, optionally with a measure word: ``五``, ``三个``, ``十二``."""
    match = _CN_RE.fullmatch(s)
    if match is None:
        return None
    total, current, previous_digit = 0, 0, False
    for char in match.group(1):
        if char in "零〇" and total:
            previous_digit = False
        elif char in _CN_DIGITS:
            if previous_digit:
                return None
            current, previous_digit = _CN_DIGITS[char], True
        else:
            total += (current or 1) * (10 if char == "十" else 100)
            current, previous_digit = 0, False
    return float(total + current)


def number_in_sentence(text: str) -> float | None:
    """The one number in a short sentence such as "There are 4 chairs.", else ``None``.

    Args:
        text: A cleaned answer that :func:`parse_number` could not read.
    """
    if len(text) > _MAX_SENTENCE_CHARS or any(char in text for char in _MATH_CHARS):
        return None
    s = _THOUSANDS_RE.sub("", text.translate(_CHAR_MAP))
    matches = _PLAIN_NUMBER_RE.findall(s) if not _MULTI_RE.search(s) else []
    if len(matches) != 1:
        return None
    match = _SENTENCE_NUMBER_RE.search(s)
    return float(match.group()) if match is not None else None
