"""Engines: the native M2 model and the scripted test engine behind one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from m2_tools.engines.base import (
    Engine,
    EngineInfo,
    GenerationRequest,
    GenerationResult,
    LoadProgress,
    TokenCallback,
)

if TYPE_CHECKING:
    from m2_tools.settings import Settings

__all__ = [
    "Engine",
    "EngineInfo",
    "GenerationRequest",
    "GenerationResult",
    "LoadProgress",
    "TokenCallback",
    "create_engine",
]


def create_engine(settings: Settings) -> Engine:
    """Build the default engine for ``settings`` without loading it (torch is imported here).

    Raises:
        ModelUnavailable: The model cannot be found locally nor downloaded.
    """
    if settings.engine == "openai":
        from m2_tools.engines.openai_compat import OpenAICompatibleEngine

        return OpenAICompatibleEngine(settings)
    from m2_tools.engines.m2_native.checkpoint import resolve_checkpoint

    # Why: a missing model fails in milliseconds here, not after the multi-second torch import.
    resolve_checkpoint(settings.model)
    from m2_tools.engines.m2_native import M2NativeEngine

    return M2NativeEngine(settings)
