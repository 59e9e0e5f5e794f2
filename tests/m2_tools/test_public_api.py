"""The public surface: __all__ pinned, and the core imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import m2_tools

EXPECTED_ALL = {
    "TOOLS",
    "Busy",
    "Cancelled",
    "ImageError",
    "ImageInfo",
    "ImageNotAllowed",
    "ImageNotFound",
    "ImageTooLarge",
    "ImageUnsupported",
    "InternalError",
    "InvalidArgument",
    "M2Error",
    "M2Reasoner",
    "M2Result",
    "ModelInfo",
    "ModelLoading",
    "ModelUnavailable",
    "ParsedAnswer",
    "ProgressEvent",
    "RequestTimeout",
    "ServiceStatus",
    "Settings",
    "SpatialReasonInput",
    "Timings",
    "ToolSpec",
    "Usage",
    "UrlFetchFailed",
    "UrlNotAllowed",
    "VisualMathReasonInput",
    "__version__",
    "parse_response",
}


def test_all_is_pinned() -> None:
    assert set(m2_tools.__all__) == EXPECTED_ALL
    for name in m2_tools.__all__:
        assert hasattr(m2_tools, name)


def test_importing_the_core_loads_neither_torch_nor_adapters() -> None:
    code = (
        "import sys, m2_tools, m2_tools.testing, m2_tools.reasoner;"
        "heavy = [m for m in ('torch', 'transformers', 'mcp', 'langchain_core', 'langchain')"
        " if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == ""


def test_tool_catalog_names_the_two_contract_tools() -> None:
    assert set(m2_tools.TOOLS) == {"visual_math_reason", "spatial_reason"}
    for name, spec in m2_tools.TOOLS.items():
        assert spec.name == name
        assert spec.description


def test_every_schema_field_is_described_for_the_calling_agent() -> None:
    models = [m2_tools.VisualMathReasonInput, m2_tools.SpatialReasonInput, m2_tools.M2Result]
    for model in models:
        for name, field in model.model_fields.items():
            if name in {"model", "usage", "timings_ms"}:
                continue
            assert field.description, f"{model.__name__}.{name} has no description"


def test_input_defaults_follow_the_contract() -> None:
    vmr = m2_tools.VisualMathReasonInput(question="q")
    spatial = m2_tools.SpatialReasonInput(question="q", images=["a.png"])

    assert (vmr.max_new_tokens, vmr.samples, vmr.include_raw, vmr.images) == (4096, 1, False, [])
    assert spatial.max_new_tokens == 2048
