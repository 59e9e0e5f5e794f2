"""The deliberate differences from the official pipeline are written down for users.

Each difference is tested where it lives: compositing, EXIF and 16-bit scaling in
tests/m2_tools/intake/test_images.py, the stop tokens in the native engine's tests.
This checks that the README's fidelity paragraph and docs/mcp.md name all four.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

DIFFERENCES = {
    "transparency": "composited onto white",
    "orientation": "EXIF rotation is applied",
    "bit depth": "16-bit PNGs are rescaled",
    "stop tokens": "also stops at `<|endoftext|>`",
}


def _fidelity_paragraph() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("**Native engine on current transformers.**")
    return readme[start : readme.index("\n- **", start)]


def _fidelity_section() -> str:
    docs = (REPO / "docs" / "mcp.md").read_text(encoding="utf-8")
    return docs.split("## Fidelity to the official pipeline", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("where", ["README", "docs/mcp.md"])
@pytest.mark.parametrize("difference", sorted(DIFFERENCES))
def test_each_deliberate_difference_is_documented(where: str, difference: str) -> None:
    text = _fidelity_paragraph() if where == "README" else _fidelity_section()

    assert DIFFERENCES[difference] in " ".join(text.split())
