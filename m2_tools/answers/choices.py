"""Mapping a cleaned answer to option letters (the ``choice`` of docs/parsing.md, step 6).

Order: letter lists, a leading letter, the exact option text, an equal numeric
value, then a unique whole-word option text inside the answer. There is no
nearest-option guessing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from m2_tools.answers.numbers import number_in_sentence, parse_number
from m2_tools.answers.text import clean_answer
from m2_tools.prompts import OPTION_LETTERS

__all__ = ["ChoiceMatch", "choose_option"]

_MAX_LIST_CHARS = 80
_MAX_CACHED_CHARS = 500
_LIST_SPLIT_RE = re.compile(r"\s*(?:[,，、;；/&]|\band\b|和|与|及)\s*|\s+")
_LIST_ITEM_RE = re.compile(r"[(\[（]?([A-Z])[)\]）]?\.?")
_LETTER_RUN_RE = re.compile(r"[A-Z]{2,26}")
_PAREN_LABEL_RE = re.compile(r"[(\[（]\s*([A-Za-z])\s*[)\]）]\s*[.:：、]?\s*(.*)", re.DOTALL)
_SEP_LABEL_RE = re.compile(r"([A-Z])\s*(?:[.)）:：、．]\s*(.*)|$)", re.DOTALL)
_SPACE_LABEL_RE = re.compile(r"([A-Z])\s+(.+)", re.DOTALL)
# Why: a capital letter then a verb ("B is closer") is a label; "A ball ..." is an article.
_LABEL_VERB_RE = re.compile(
    r"(?:is|are|was|were|seems|appears|would|should|will|has|because|since)\b", re.IGNORECASE
)
_LOWER_LETTERS = OPTION_LETTERS.lower()
_WORD_JOINER_RE = re.compile(r"(?<=[^\W\d_])[-_](?=[^\W\d_])")
_OWN_LABEL_RE = re.compile(r"(?:\(([A-Z])\)|([A-Z])[.):：])\s*")
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


@dataclass(frozen=True)
class ChoiceMatch:
    """The chosen option(s) and the part of the answer left for reading a number."""

    letters: str | None
    index: int | None
    rest: str
    flags: tuple[str, ...] = ()
    option_value: float | None = None


class _Option(NamedTuple):
    key: str
    words: str
    value: float | None


def _option(text: str) -> _Option:
    # Why: options repeat across calls and samples; a huge answer must not pin the cache.
    return _cached_option(text) if len(text) <= _MAX_CACHED_CHARS else _read_option(text)


@lru_cache(maxsize=512)
def _cached_option(text: str) -> _Option:
    return _read_option(text)


def _read_option(text: str) -> _Option:
    cleaned = clean_answer(text)
    words = _words(cleaned)
    return _Option(words.replace(" ", ""), words, parse_number(cleaned))


def _words(text: str) -> str:
    """Lower case, ``front-left`` read as ``front left``, whitespace collapsed."""
    return " ".join(_WORD_JOINER_RE.sub(" ", text.lower()).split())


def _without_own_labels(choices: Sequence[str]) -> list[str]:
    """Drop ``A. `` / ``(B)`` labels when the caller wrote every option with its own letter."""
    texts = list(choices[: len(OPTION_LETTERS)])
    labels = [_OWN_LABEL_RE.match(text) for text in texts]
    stripped = [
        text[m.end() :]
        for i, (text, m) in enumerate(zip(texts, labels, strict=True))
        if m and (m.group(1) or m.group(2)) == OPTION_LETTERS[i]
    ]
    return stripped if texts and len(stripped) == len(texts) else texts


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def choose_option(answer: str, choices: Sequence[str]) -> ChoiceMatch:
    """Map ``answer`` to option letters.

    Args:
        answer: The cleaned answer.
        choices: Option texts, labelled A, B, C, … (may be empty).
    """
    options = [_option(text) for text in _without_own_labels(choices)]
    same_text = _same_text(answer, options)
    exact = _unique(same_text)
    letters = _letter_list(answer, len(options), allow_run=not same_text)
    if letters is not None and len(letters) > 1:
        if options and any(OPTION_LETTERS.index(letter) >= len(options) for letter in letters):
            return ChoiceMatch(None, None, "", ("letter_out_of_range",))
        return ChoiceMatch(",".join(letters), None, "")
    label = (letters[0], "") if letters else _leading_label(answer, options)
    if label is not None:
        return _labelled(*label, options, exact)
    if not options:
        return ChoiceMatch(None, None, answer)
    index = exact
    if index is None:
        index = _numeric(answer, options)
    if index is None:
        index = _whole_word(answer, options)
    if index is None:
        return ChoiceMatch(None, None, answer, ("no_choice",))
    return ChoiceMatch(OPTION_LETTERS[index], index, answer, (), options[index].value)


def _labelled(letter: str, rest: str, options: list[_Option], exact: int | None) -> ChoiceMatch:
    index = OPTION_LETTERS.index(letter.upper())
    if not options:
        return ChoiceMatch(None if rest else letter, None, rest)
    if index >= len(options):
        if exact is not None:
            return ChoiceMatch(OPTION_LETTERS[exact], exact, "", (), options[exact].value)
        return ChoiceMatch(None, None, rest, ("letter_out_of_range",))
    flags = ("letter_value_conflict",) if rest and _conflicts(rest, index, options) else ()
    return ChoiceMatch(OPTION_LETTERS[index], index, rest, flags, options[index].value)


def _letter_list(answer: str, count: int, *, allow_run: bool) -> list[str] | None:
    """``A, C`` / ``A and C`` / ``(A)(C)`` (and ``AC`` when options are known)."""
    if len(answer) > _MAX_LIST_CHARS:
        return None
    parts = [p for p in _LIST_SPLIT_RE.split(answer.replace(")(", ") (")) if p]
    items = [_LIST_ITEM_RE.fullmatch(part) for part in parts]
    if len(parts) > 1 and all(items):
        return sorted({item.group(1) for item in items if item is not None})
    if not (allow_run and count > 1 and _LETTER_RUN_RE.fullmatch(answer)):
        return None
    in_range = all(OPTION_LETTERS.index(c) < count for c in answer)
    return sorted(answer) if in_range and len(set(answer)) == len(answer) else None


def _leading_label(answer: str, options: list[_Option]) -> tuple[str, str] | None:
    """``C``, ``(C)``, ``C.``, ``C. 22.6``, ``C) …``, ``C: …``, or ``B is closer``."""
    if options and len(answer) == 1 and answer in _LOWER_LETTERS:
        return answer.upper(), ""
    paren = _PAREN_LABEL_RE.fullmatch(answer)
    if paren is not None and (paren.group(1).isupper() or options):
        return paren.group(1).upper(), paren.group(2).strip()
    separated = _SEP_LABEL_RE.fullmatch(answer)
    if separated is not None:
        return separated.group(1), (separated.group(2) or "").strip()
    spaced = _SPACE_LABEL_RE.fullmatch(answer)
    if spaced is None or not options:
        return None
    letter, rest = spaced.group(1), spaced.group(2).strip()
    index = OPTION_LETTERS.index(letter)
    if _LABEL_VERB_RE.match(rest) or (index < len(options) and _matches(rest, options[index])):
        return letter, rest
    return None


def _matches(text: str, option: _Option) -> bool:
    candidate = _option(text)
    if candidate.key and candidate.key == option.key:
        return True
    return (
        candidate.value is not None
        and option.value is not None
        and _same(candidate.value, option.value)
    )


def _conflicts(rest: str, index: int, options: list[_Option]) -> bool:
    """True when the text after the letter names another option or another value."""
    if _matches(rest, options[index]):
        return False
    value = _option(rest).value
    if value is None:
        value = number_in_sentence(rest)
    own = options[index].value
    if value is not None and own is not None:
        return not _same(value, own)
    others = [o for i, o in enumerate(options) if i != index]
    return any(_matches(rest, other) for other in others) or (
        value is not None and any(o.value is not None and _same(value, o.value) for o in others)
    )


def _unique(indices: list[int]) -> int | None:
    return indices[0] if len(indices) == 1 else None


def _same_text(answer: str, options: list[_Option]) -> list[int]:
    key = _option(answer).key
    return [i for i, o in enumerate(options) if key and o.key == key]


def _numeric(answer: str, options: list[_Option]) -> int | None:
    value = parse_number(answer)
    if value is None:
        value = number_in_sentence(answer)
    if value is None:
        return None
    return _unique(
        [i for i, o in enumerate(options) if o.value is not None and _same(o.value, value)]
    )


def _whole_word(answer: str, options: list[_Option]) -> int | None:
    """The one option whose text appears as whole words in the answer."""
    text = _words(answer)
    hits = [
        (i, o.words)
        for i, o in enumerate(options)
        if len(o.words) > 1 and o.value is None and _contains_words(text, o.words)
    ]
    # Why: "the red box" names option "red box", not also option "red".
    kept = [
        i for i, words in hits if not any(w != words and _contains_words(w, words) for _, w in hits)
    ]
    return _unique(kept)


def _contains_words(text: str, words: str) -> bool:
    if _CJK_RE.search(words):
        return words in text
    start = text.find(words)
    while start >= 0:
        end = start + len(words)
        before_ok = start == 0 or not (text[start - 1].isalnum() and words[0].isalnum())
        after_ok = end == len(text) or not (text[end].isalnum() and words[-1].isalnum())
        if before_ok and after_ok:
            return True
        start = text.find(words, start + 1)
    return False
