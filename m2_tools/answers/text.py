"""Text-level steps of answer parsing: normalising, boxes, cleaning and conclusions.

Every pattern here is linear or bounded: the parser must stay fast on 100 KB of
adversarial text.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = [
    "Box",
    "clean_answer",
    "conclusion",
    "find_boxes",
    "normalise",
    "remove_boxes",
    "unwrap_box",
]

_INVISIBLE_RE = re.compile("[\ufeff\u200b\u200c\u200d\u2060\u200e\u200f\u00ad]")
_END_TOKEN = r"<\|(?:im_end|endoftext|eot_id|end)\|>"
_END_OF_TURN_RE = re.compile(_END_TOKEN)
_LEADING_END_RE = re.compile(rf"^(?:\s|{_END_TOKEN})+")
_SPECIAL_TOKEN_RE = re.compile(r"<\|[^|<>\n]{1,40}\|>")
_TAG_RE = re.compile(r"<\s{0,8}(/?)\s{0,8}(think|answer)\s{0,8}>", re.IGNORECASE)

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])\s*")
_BARE_BOX_ARG_RE = re.compile(r"[^\s${}\\<>,;]+")
_BRACE_RE = re.compile(r"\\.|[{}]", re.DOTALL)
_MAX_BOX_NESTING = 4

_MATH_DELIMS_RE = re.compile(r"(?<!\\)\$|\\[()\[\]]")
_WRAPPER_RE = re.compile(
    r"\\(?:text|textbf|textit|textrm|texttt|textsf|mathrm|mathbf|mathit|mathsf|mathtt|mathbb"
    r"|operatorname|mbox|emph|bm|boldsymbol|underline)\s*\{([^{}]*)\}"
)
_SPACING_RE = re.compile(r"\\[,;: ]|\\(?:quad|qquad|displaystyle)(?![A-Za-z])")
_THIN_THOUSANDS_RE = re.compile(r"(?<=\d)\\[,!](?=\d{3}(?!\d))")
_LEFT_RIGHT_RE = re.compile(r"\\(?:left|right)(?![A-Za-z])\s*")
_WHITESPACE_RE = re.compile(r"\s+")
_LEAD_IN_RE = re.compile(
    r"^(?:(?:so|thus|therefore|hence|finally)\b[,:]?\s*"
    r"|(?:the\s+)?(?:final\s+|correct\s+|right\s+|best\s+)?answer\b\s*"
    r"(?:is\b|should\s+be\b|would\s+be\b|will\s+be\b|=)?\s*[:：]?\s*"
    r"|(?:the\s+)?(?:correct\s+|right\s+|best\s+)?(?:option|choice)s?\b\s*(?:is\b|are\b)?\s*[:：]?\s*"
    r"|(?:最终|正确)?答案\s*(?:是|为|應為|应为|应该是)?\s*[:：]?\s*"
    r"|(?:故|所以|因此|则|应)?选(?:择|项)?\s*[:：]?\s*)",
    re.IGNORECASE,
)
_TRAILING = " \t\n.,;:!?。，；：！？、"
_QUOTE_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’", "`": "`"}
_CONCLUSION_RE = re.compile(
    r"\b(?:(?:final|correct|right|best)\s+answer|the\s+answer|answer)\**\s*"
    r"(?:is\b|should\s+be\b|would\s+be\b|will\s+be\b|[:：=])\s*[:：]?"
    r"|\bfinal\s+answer\b\**[ \t]*(?=\n)"
    r"|\b(?:correct|right|best)\s+(?:option|choice)\s*(?:is\b|[:：])\s*[:：]?"
    r"|答案\s*(?:是|为|应为|應為|[:：])\s*[:：]?"
    r"|(?:故|所以|因此|则|应)选",
    re.IGNORECASE,
)
_MARKUP = " \t\n*#_>-"
_SENTENCE_END_RE = re.compile(r"[.!?]\s+(?=[A-Z])|[。！？]")
_BARE_LABEL_RE = re.compile(r"\(?[A-Z]\)?")


class Box(NamedTuple):
    """One ``\\boxed{…}``: its content, whether it closed, and where it lies."""

    content: str
    closed: bool
    start: int
    end: int


def normalise(text: str) -> tuple[str, bool]:
    """Return the text with line ends, invisibles, chat tokens and tags made canonical.

    Args:
        text: The raw completion.

    Returns:
        The normalised text, and whether an end-of-turn token was seen.
    """
    s = _INVISIBLE_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    ended = False
    s = _LEADING_END_RE.sub("", s)
    # Why: a turn ends at its first end token; text after it is not this answer.
    end = _END_OF_TURN_RE.search(s)
    if end is not None:
        s, ended = s[: end.start()], True
    s = _SPECIAL_TOKEN_RE.sub("", s)
    s = _TAG_RE.sub(lambda m: f"<{m.group(1)}{m.group(2).lower()}>", s)
    return s.strip(), ended


def find_boxes(text: str) -> list[Box]:
    """Every ``\\boxed{…}``/``\\fbox{…}``/``\\boxed 7`` in order; nested ones stay inside.

    Args:
        text: The answer span.
    """
    boxes: list[Box] = []
    pos = 0
    while (match := _BOX_RE.search(text, pos)) is not None:
        start = match.end()
        if text.startswith("{", start):
            close = _closing_brace(text, start)
            if close < 0:
                boxes.append(Box(text[start + 1 :], False, match.start(), len(text)))
                break
            boxes.append(Box(text[start + 1 : close], True, match.start(), close + 1))
            pos = close + 1
            continue
        bare = _BARE_BOX_ARG_RE.match(text, start)
        if bare is not None:
            boxes.append(Box(bare.group(), True, match.start(), bare.end()))
        pos = max(start, match.start() + 1)
    return boxes


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for match in _BRACE_RE.finditer(text, start):
        char = match.group()
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return match.start()
    return -1


def unwrap_box(content: str) -> str:
    """Unwrap ``\\boxed{\\boxed{5}}``: the last non-empty inner box, a few levels deep.

    Args:
        content: A box's content.
    """
    for _ in range(_MAX_BOX_NESTING):
        inner = [box for box in find_boxes(content) if box.content.strip()]
        if not inner:
            break
        content = inner[-1].content
    return content


def remove_boxes(text: str, boxes: list[Box]) -> str:
    """``text`` without the given boxes (used when every box is empty).

    Args:
        text: The span the boxes were found in.
        boxes: Boxes of ``text``, in order.
    """
    kept, pos = [], 0
    for box in boxes:
        kept.append(text[pos : box.start])
        pos = box.end
    kept.append(text[pos:])
    return " ".join(kept)


def clean_answer(raw: str) -> str:
    """Unwrap math delimiters, ``\\text{}`` and bold; strip lead-ins and trailing punctuation.

    Args:
        raw: A box's content or an answer span.
    """
    s = _MATH_DELIMS_RE.sub(" ", raw).replace("\\$", "$")
    for _ in range(4):
        unwrapped = _WRAPPER_RE.sub(r"\1", s)
        if unwrapped == s:
            break
        s = unwrapped
    s = _THIN_THOUSANDS_RE.sub(",", s.replace("{,}", ",")).replace("**", " ").replace("__", " ")
    s = _LEFT_RIGHT_RE.sub("", _SPACING_RE.sub(" ", s.replace("\\!", "")))
    s = _WHITESPACE_RE.sub(" ", s).strip()
    for _ in range(3):
        stripped = _LEAD_IN_RE.sub("", s, count=1).strip(" *_").rstrip(_TRAILING)
        if len(stripped) > 1 and _QUOTE_PAIRS.get(stripped[0]) == stripped[-1]:
            stripped = stripped[1:-1].strip()
        if stripped == s:
            break
        s = stripped
    return s


def conclusion(text: str) -> tuple[str, bool] | None:
    """What follows the last "the answer is" / "Answer:" / 答案是 in ``text``.

    Args:
        text: An answer span without a box.

    Returns:
        The concluding text (first line, first sentence) and whether text before the
        phrase was dropped; ``None`` when no phrase is followed by anything.
    """
    for match in reversed(list(_CONCLUSION_RE.finditer(text))):
        rest = text[match.end() :].strip()
        line = rest.split("\n", 1)[0]
        answer = _first_sentence(line).strip()
        if answer:
            return answer, bool(text[: match.start()].strip(_MARKUP))
    return None


def _first_sentence(line: str) -> str:
    for match in _SENTENCE_END_RE.finditer(line):
        head = line[: match.start()].strip().strip("*")
        # Why: "C. Blue box" is an option label and its text, not two sentences.
        if not _BARE_LABEL_RE.fullmatch(head):
            return head
    return line
