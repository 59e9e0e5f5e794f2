"""The two tools: names, descriptions and input models, shared by every adapter."""

from __future__ import annotations

from dataclasses import dataclass

from m2_tools.schemas import SpatialReasonInput, ToolName, VisualMathReasonInput

__all__ = ["TOOLS", "ToolSpec", "tool_spec"]


@dataclass(frozen=True)
class ToolSpec:
    """What an adapter needs to publish one tool.

    Attributes:
        name: The contract tool name.
        title: A short human title.
        description: Written for the calling model: when to use it and what comes back.
        input_model: The pydantic model of the arguments.
    """

    name: ToolName
    title: str
    description: str
    input_model: type[VisualMathReasonInput] | type[SpatialReasonInput]


_RESULT_HELP = (
    "Returns JSON: `answer` (cleaned final answer), `choice` (option letter when `choices` "
    "were given), `choice_text`, `value` (the answer as a number when it is one), "
    "`rationale` (the model's reasoning), and `status` — act on `ok`; `truncated` means "
    "raise `max_new_tokens`; `no_answer`/`ambiguous` mean rephrase or retry with "
    "`samples` > 1. Slow: one call runs a 7B vision-language model."
)

TOOLS: dict[ToolName, ToolSpec] = {
    "visual_math_reason": ToolSpec(
        name="visual_math_reason",
        title="Visual math reasoning (M2-Reasoning-7B)",
        description=(
            "Solve a math, geometry, chart-reading or logic problem, usually about a figure, "
            "chart, plot, table or diagram given in `images` (0-8 images; text-only works "
            "too). Pass multiple-choice options in `choices` to get an option letter back. "
            + _RESULT_HELP
        ),
        input_model=VisualMathReasonInput,
    ),
    "spatial_reason": ToolSpec(
        name="spatial_reason",
        title="Spatial reasoning about a scene (M2-Reasoning-7B)",
        description=(
            "Answer a question about the 3-D layout of a real scene: counting objects, relative "
            "position, depth (which is closer), distance, size, direction, routes and the order "
            "in which things appear. `images` holds up to 32 views of the scene or video frames in "
            "time order, or pass a `video` file and frames are sampled from it. " + _RESULT_HELP
        ),
        input_model=SpatialReasonInput,
    ),
}


def tool_spec(name: str) -> ToolSpec:
    """Return the spec of tool ``name``; raise ``KeyError`` for an unknown name."""
    return TOOLS[name]  # type: ignore[index]
