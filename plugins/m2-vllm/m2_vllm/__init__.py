"""m2-vllm: M2-Reasoning-7B (``bailing_qwen2_5``) on vLLM, as a vLLM general plugin.

vLLM calls :func:`register` in every process (entry point group ``vllm.general_plugins``).
It registers M2's config class with transformers' ``AutoConfig`` and the architecture
``Bailing_qwen2_5NativeForConditionalGeneration`` with vLLM's model registry, lazily: the
model module (and torch) load only when vLLM builds the model.

Modules: :mod:`m2_vllm.config` (the official ``config.json``), :mod:`m2_vllm.processing`
(prompt expansion and images), :mod:`m2_vllm.model` (the network), :mod:`m2_vllm.serve`
(the ``m2-vllm serve`` command). Nothing here imports m2-tools.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys

__all__ = ["VLLM_VERSION", "__version__", "alias_pil_image_processor", "register"]

__version__ = "0.1.0"
#: The one vLLM release this plugin is built and parity-tested against.
VLLM_VERSION = "0.32.0"

logger = logging.getLogger(__name__)

_TORCHVISION_PROCESSOR = "transformers.models.qwen2_vl.image_processing_qwen2_vl"
_PIL_PROCESSOR = "transformers.models.qwen2_vl.image_processing_pil_qwen2_vl"


def alias_pil_image_processor() -> None:
    """Let vLLM's Qwen2-VL code import ``smart_resize`` on installs without torchvision.

    vLLM imports it from transformers' torchvision-backed image processor module, which fails
    to import where torchvision is missing or broken (the CPU install). The PIL module has the
    same function; it stands in for the other one only when that one cannot load.
    """
    if _TORCHVISION_PROCESSOR in sys.modules:
        return
    try:
        importlib.import_module(_TORCHVISION_PROCESSOR)
    except (ImportError, OSError, RuntimeError):
        sys.modules[_TORCHVISION_PROCESSOR] = importlib.import_module(_PIL_PROCESSOR)
        logger.debug("using transformers' PIL image processor in place of torchvision's")


def register() -> None:
    """Register M2 with transformers and vLLM (called by vLLM's plugin loader)."""
    from transformers import AutoConfig
    from vllm import ModelRegistry

    from m2_vllm.config import MODEL_TYPE, M2VllmConfig

    alias_pil_image_processor()
    with contextlib.suppress(ValueError):  # already registered in this process
        AutoConfig.register(MODEL_TYPE, M2VllmConfig)
    architecture = "Bailing_qwen2_5NativeForConditionalGeneration"
    if architecture not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(architecture, "m2_vllm.model:M2ForConditionalGeneration")
