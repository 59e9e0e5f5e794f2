"""m2-tools: M2-Reasoning-7B visual math and spatial reasoning as structured tools.

The core knows nothing of MCP or LangChain; ``mcp_server`` and
``integrations.langchain`` are thin adapters over :class:`M2Reasoner`.
Importing this package does not import torch: the model loads lazily.
"""

from m2_tools.answers.parsing import ParsedAnswer, parse_response
from m2_tools.catalog import TOOLS, ToolSpec
from m2_tools.errors import (
    Busy,
    Cancelled,
    ImageError,
    ImageNotAllowed,
    ImageNotFound,
    ImageTooLarge,
    ImageUnsupported,
    InternalError,
    InvalidArgument,
    M2Error,
    ModelLoading,
    ModelUnavailable,
    RequestTimeout,
    UrlFetchFailed,
    UrlNotAllowed,
)
from m2_tools.reasoner import M2Reasoner
from m2_tools.schemas import (
    ImageInfo,
    M2Result,
    ModelInfo,
    ServiceStatus,
    SpatialReasonInput,
    Timings,
    Usage,
    VisualMathReasonInput,
)
from m2_tools.serving.progress import ProgressEvent
from m2_tools.settings import Settings

__version__ = "0.1.0"

__all__ = [
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
    "UrlFetchFailed",
    "UrlNotAllowed",
    "Usage",
    "VisualMathReasonInput",
    "__version__",
    "parse_response",
]
