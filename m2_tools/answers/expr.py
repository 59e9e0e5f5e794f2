"""A small, safe evaluator for the numeric LaTeX that final answers are written in.

It reads one number written as a literal or a short expression: ``+ - * /``, ``^``,
``\\times``, ``\\cdot``, ``\\div``, ``\\frac``/``\\dfrac``/``\\tfrac``, ``\\sqrt``
(with an index), ``\\pi``, parentheses and braces, implicit products before
``\\sqrt``/``\\pi``/``\\frac``/``(``, and mixed numbers (``3 1/2``, ``3\\frac{1}{2}``).
A unit tail (``cm^2``, ``m/s``, ``个``) is allowed after the number. All arithmetic is
float arithmetic, and every failure, overflow included, gives ``None``.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

__all__ = ["evaluate"]

_TOKEN_RE = re.compile(
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])"
    r"|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<cmd>\\[A-Za-z]+)"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)",
    re.DOTALL,
)
_FRACS = frozenset({"\\frac", "\\dfrac", "\\tfrac", "\\cfrac"})
_TIMES = frozenset({"*", "\\times", "\\cdot", "\\ast"})
_DIVIDE = frozenset({"/", "\\div"})
_IMPLICIT = frozenset({"\\sqrt", "\\pi", "(", "pi", "sqrt"} | _FRACS)
_UNIT_SYMBOLS = frozenset("^/.(){}°'\"µΩ")
_MAX_DEPTH = 24


class _Token(NamedTuple):
    kind: str
    text: str
    spaced: bool


class _Fail(Exception):
    """Internal: the text is not one number."""


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    spaced = False
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup or "other"
        if kind == "space":
            spaced = True
            continue
        tokens.append(_Token(kind, match.group(), spaced))
        spaced = False
    return tokens


def _is_int_literal(token: _Token) -> bool:
    return token.kind == "num" and token.text.replace(",", "").isdigit()


class _Parser:
    """Recursive descent over the tokens; each rule returns ``(value, plain)``.

    ``plain`` is true for a bare literal such as ``3`` or ``-4``.
    """

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self, offset: int = 0) -> _Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise _Fail
        self.pos += 1
        return token

    def expect(self, text: str) -> None:
        if self.take().text != text:
            raise _Fail

    def expr(self) -> tuple[float, bool]:
        value, plain = self.term()
        while (token := self.peek()) is not None and token.text in ("+", "-"):
            self.pos += 1
            rhs, rhs_plain = self.term()
            # Why: "3-4" between two bare literals is a range, not the number -1.
            if plain and rhs_plain:
                raise _Fail
            value = value + rhs if token.text == "+" else value - rhs
            plain = False
        return value, plain

    def term(self) -> tuple[float, bool]:
        start = self.pos
        value, plain = self.unary()
        operand = self.tokens[start : self.pos]
        if _is_int_literal(operand[-1]) and all(t.text in ("+", "-") for t in operand[:-1]):
            value, plain = self._mixed(value, plain)
        while (token := self.peek()) is not None:
            if token.text in _TIMES or token.text in _DIVIDE:
                self.pos += 1
                rhs, _ = self.unary()
                if token.text in _TIMES:
                    value *= rhs
                elif rhs == 0:
                    raise _Fail
                else:
                    value /= rhs
            elif token.text.lower() in _IMPLICIT:
                saved = self.pos
                try:
                    rhs, _ = self.power()
                except _Fail:
                    self.pos = saved
                    break
                value *= rhs
            else:
                break
            plain = False
        return value, plain

    def _mixed(self, whole: float, plain: bool) -> tuple[float, bool]:
        """``3 1/2`` or ``3\\frac{1}{2}`` right after the integer ``whole``."""
        window = self.tokens[self.pos : self.pos + 7]
        texts = [t.text for t in window]
        if (
            len(window) == 7
            and texts[0] in _FRACS
            and texts[1::3] == ["{", "{"]
            and texts[3::3] == ["}", "}"]
            and _is_int_literal(window[2])
            and _is_int_literal(window[5])
        ):
            self.pos += 7
            return self._combine(whole, texts[2], texts[5])
        if (
            len(window) >= 3
            and window[0].spaced
            and _is_int_literal(window[0])
            and texts[1] == "/"
            and _is_int_literal(window[2])
        ):
            self.pos += 3
            return self._combine(whole, texts[0], texts[2])
        return whole, plain

    @staticmethod
    def _combine(whole: float, num: str, den: str) -> tuple[float, bool]:
        numerator, denominator = float(num.replace(",", "")), float(den.replace(",", ""))
        if not 0 < numerator < denominator:
            raise _Fail
        return whole + math.copysign(numerator / denominator, whole or 1.0), False

    def unary(self) -> tuple[float, bool]:
        token = self.peek()
        if token is not None and token.text in ("-", "+"):
            self.pos += 1
            value, plain = self.unary()
            return (-value if token.text == "-" else value), plain
        return self.power()

    def power(self) -> tuple[float, bool]:
        base, plain = self.atom()
        token = self.peek()
        if token is None or token.text != "^":
            return base, plain
        self.pos += 1
        exponent, _ = self.group() if self._at("{") else self.unary()
        return math.pow(base, exponent), False

    def _at(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.text == text

    def group(self) -> tuple[float, bool]:
        """``{expr}`` or a single atom, as LaTeX arguments are read."""
        if not self._at("{"):
            return self.atom()
        return self._bracketed("{", "}")

    def _bracketed(self, opening: str, closing: str) -> tuple[float, bool]:
        self.expect(opening)
        self.depth += 1
        try:
            if self.depth > _MAX_DEPTH:
                raise _Fail
            value, plain = self.expr()
            self.expect(closing)
        finally:
            self.depth -= 1
        return value, plain

    def atom(self) -> tuple[float, bool]:
        token = self.peek()
        if token is None:
            raise _Fail
        if token.kind == "num":
            self.pos += 1
            return float(token.text.replace(",", "")), True
        if token.text in ("(", "{"):
            value, _ = self._bracketed(token.text, ")" if token.text == "(" else "}")
            return value, False
        name = token.text.lstrip("\\").lower() if token.kind in ("cmd", "word") else ""
        self.pos += 1
        if name == "pi":
            return math.pi, False
        if name == "sqrt":
            return self._sqrt(), False
        if token.text in _FRACS:
            numerator, _ = self.group()
            denominator, _ = self.group()
            if denominator == 0:
                raise _Fail
            return numerator / denominator, False
        raise _Fail

    def _sqrt(self) -> float:
        index = 2.0
        if self._at("["):
            index, _ = self._bracketed("[", "]")
        radicand, _ = self.group()
        if radicand < 0 or index == 0:
            raise _Fail
        return math.pow(radicand, 1.0 / index)

    def unit_tail_only(self) -> bool:
        """True when what is left reads as a unit (``cm^2``, ``m^{-1}``, ``m/s``, ``个``)."""
        after_caret = False
        for token in self.tokens[self.pos :]:
            if token.text == "^" or (after_caret and token.text in ("{", "-")):
                after_caret = True
                continue
            if token.kind == "num" and not after_caret:
                return False
            if token.kind == "cmd" or (token.kind == "other" and not _unit_char(token.text)):
                return False
            after_caret = False
        return True


def _unit_char(char: str) -> bool:
    return char in _UNIT_SYMBOLS or "\u4e00" <= char <= "\u9fff"


def evaluate(text: str) -> float | None:
    """Return the one finite number ``text`` spells, or ``None``.

    Args:
        text: A short, already normalised answer such as ``2\\sqrt{3}`` or ``12 cm^2``.
    """
    parser = _Parser(_tokenize(text))
    if not parser.tokens:
        return None
    try:
        value, _ = parser.expr()
    except (_Fail, ArithmeticError, ValueError):
        return None
    if not parser.unit_tail_only() or not math.isfinite(value):
        return None
    return value
