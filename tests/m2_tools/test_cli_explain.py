"""`m2-tools ask --explain` says in plain words what a result means, on stderr only."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from m2_tools import M2Reasoner
from m2_tools.answers import parsing
from m2_tools.cli import main
from m2_tools.cli.explain import FLAG_MEANINGS, explain_result
from m2_tools.testing import ScriptedEngine

ANSWERED = "<think>\nArea is d1*d2/2, so QS = 2*137.9/12.2.\n</think>\n<answer>\\boxed{C}</answer>"
CUT_OFF = "<think>\n" + " ".join(f"step{i}" for i in range(60))


def _items(text: str) -> list[str]:
    """The explanation's entries, each with its wrapped continuation lines joined."""
    items: list[str] = []
    for line in text.splitlines()[1:]:
        if line.startswith("    ") and items:
            items[-1] += " " + line.strip()
        else:
            items.append(line.strip())
    return items


def _about(text: str, field: str) -> str:
    return next(item for item in _items(text) if item.startswith(field))


def test_an_answered_choice_names_the_letter_its_text_and_the_value(
    make_reasoner: Callable[..., M2Reasoner],
) -> None:
    reasoner = make_reasoner(engine=ScriptedEngine(default=ANSWERED))
    result = reasoner.visual_math_reason(
        question="Find QS.", choices=["11.3", "22.4", "22.6", "25.6"]
    )

    text = explain_result(result)

    assert result.status == "ok"
    assert _about(text, 'status "ok"')
    assert "C ('22.6')" in _about(text, "choice")
    assert "22.6" in _about(text, "value")
    assert "null" not in text


def test_a_cut_off_result_says_why_its_fields_are_null_and_how_to_get_more(
    make_reasoner: Callable[..., M2Reasoner],
) -> None:
    reasoner = make_reasoner(engine=ScriptedEngine(default=CUT_OFF))
    result = reasoner.visual_math_reason(question="Find QS.", max_new_tokens=16)

    text = explain_result(result)

    assert (result.status, result.finish_reason) == ("truncated", "length")
    assert "--max-new-tokens" in _about(text, 'status "truncated"')
    null_item = next(item for item in _items(text) if "null" in item)
    for field in ("answer", "choice", "value"):
        assert field in null_item
    assert "cut short" in _about(text, "rationale")
    assert "16 new tokens" in _about(text, 'finish_reason "length"')


def test_every_flag_is_spelled_out(make_reasoner: Callable[..., M2Reasoner]) -> None:
    reasoner = make_reasoner(engine=ScriptedEngine(default=CUT_OFF))
    result = reasoner.visual_math_reason(question="Find QS.", max_new_tokens=16)

    flags_item = _about(explain_result(result), "flags")

    assert result.flags
    for flag in result.flags:
        assert f"{flag} ({FLAG_MEANINGS[flag]})" in flags_item


def test_knows_every_flag_the_parser_documents() -> None:
    documented = set(re.findall(r"^``([a-z_]+)``", parsing.__doc__ or "", re.MULTILINE))

    assert documented
    assert documented <= set(FLAG_MEANINGS)


def test_ask_keeps_stdout_for_the_json_and_explains_on_stderr(
    fixture_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "ask",
            "--model",
            str(fixture_dir / "checkpoint"),
            "--device",
            "cpu",
            "--max-new-tokens",
            "16",
            "--allow-dir",
            str(fixture_dir / "images"),
            "--image",
            str(fixture_dir / "images" / "rhombus.png"),
            "--question",
            "Find QS.",
            "--explain",
        ]
    )

    out, err = capsys.readouterr()
    result = json.loads(out)
    assert code == 0
    assert "How to read this result:" in err
    assert f'status "{result["status"]}"' in err
    assert f"{result['usage']['prompt_tokens']} prompt tokens" in err
    assert "355×231 as given" in err
