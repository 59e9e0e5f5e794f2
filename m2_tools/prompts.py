"""The M2-Reasoning system prompt and the user turn, exactly as the model was trained."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["OPTION_LETTERS", "SYSTEM_PROMPT", "build_user_text"]

#: The README's system prompt, used verbatim by every tool.
SYSTEM_PROMPT = (
    "You are a helpful assistant. When the user asks a question, your response must include "
    "two parts: first, the reasoning process enclosed in <think>...</think> tags, then the "
    "final answer enclosed in <answer>...</answer> tags. The critical answer or key result "
    "should be placed within \\boxed{}."
)

OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def build_user_text(question: str, choices: Sequence[str] | None = None) -> str:
    """Return the user turn's text item: ``"\\nQuestion:\\n\\n" + question`` then ``A. …`` lines.

    Args:
        question: The question, verbatim.
        choices: Option texts, labelled A, B, C, … in order.
    """
    text = "\nQuestion:\n\n" + question
    for letter, option in zip(OPTION_LETTERS, choices or (), strict=False):
        text += f"\n{letter}. {option}"
    return text
