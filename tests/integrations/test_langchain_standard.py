"""LangChain's standard tool suites, run offline against the scripted engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from integrations.langchain import SpatialReasonTool, VisualMathReasonTool
from m2_tools import M2Reasoner

IMAGES_DIR = Path(__file__).parents[1] / "fixtures" / "m2-tiny-reference" / "images"

VISUAL_MATH_EXAMPLE = {
    "question": "The rhombus has diagonals 6 and 8. What is its side length?",
    "images": [str(IMAGES_DIR / "rhombus.png")],
    "max_new_tokens": 64,
}
SPATIAL_EXAMPLE = {
    "question": "Which object is closer to the camera?",
    "images": [str(IMAGES_DIR / "scene.jpg")],
    "choices": ["the chair", "the box"],
}


class _ScriptedReasonerParams:
    """Hands each standard test a fresh scripted reasoner (the ``reasoner`` fixture)."""

    _reasoner: M2Reasoner

    @pytest.fixture(autouse=True)
    def _use_scripted_reasoner(self, reasoner: M2Reasoner) -> None:
        self._reasoner = reasoner

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"reasoner": self._reasoner}


class TestVisualMathReasonToolUnit(_ScriptedReasonerParams, ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return VisualMathReasonTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return VISUAL_MATH_EXAMPLE


class TestVisualMathReasonToolIntegration(_ScriptedReasonerParams, ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return VisualMathReasonTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return VISUAL_MATH_EXAMPLE


class TestSpatialReasonToolUnit(_ScriptedReasonerParams, ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return SpatialReasonTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return SPATIAL_EXAMPLE


class TestSpatialReasonToolIntegration(_ScriptedReasonerParams, ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return SpatialReasonTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return SPATIAL_EXAMPLE
