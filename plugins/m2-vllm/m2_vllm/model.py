"""M2-Reasoning on vLLM: vLLM's Qwen2.5-VL model with M2's projector and L2 normalisation.

The subclass reuses vLLM's vision tower, Qwen2 decoder and mRoPE. What M2 adds:

- ``linear_proj``: ``Linear(out_hidden, H)`` then (``mlp_depths`` - 1) × (GELU, ``Linear(H, H)``)
  on the merger's output, then each image token is L2-normalised (in float32). Under tensor
  parallelism the linears alternate column- and row-parallel, so no step needs a gather;
  when the encoder runs data-parallel they are replicated, like the tower.
- The projector runs on every encoder path: the eager one and the encoder CUDA-graph one,
  which call the vision tower directly.
- Pixels are normalised by the processor, never again on the device.
- ``use_llm_3drope: false`` checkpoints get 1-D positions on all three axes.
- Weights: ``vision_model.`` → ``visual.``; ``linear_proj.*`` and ``language_model.*`` stay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from m2_vllm import alias_pil_image_processor

alias_pil_image_processor()

from vllm.config import VllmConfig  # noqa: E402
from vllm.model_executor.layers.linear import (  # noqa: E402
    ColumnParallelLinear,
    RowParallelLinear,
)
from vllm.model_executor.models.qwen2_5_vl import (  # noqa: E402
    Qwen2_5_VLForConditionalGeneration,
)
from vllm.model_executor.models.utils import (  # noqa: E402
    AutoWeightsLoader,
    WeightsMapper,
    maybe_prefix,
)
from vllm.multimodal import MULTIMODAL_REGISTRY  # noqa: E402

from m2_vllm.processing import (  # noqa: E402
    IMAGE_PLACEHOLDER,
    M2DummyInputsBuilder,
    M2MultiModalProcessor,
    M2ProcessingInfo,
)

__all__ = ["ARCHITECTURE", "M2ForConditionalGeneration", "M2Projector"]

#: The architecture name in the official ``config.json``.
ARCHITECTURE = "Bailing_qwen2_5NativeForConditionalGeneration"


class M2Projector(nn.ModuleList):
    """``linear_proj``: the projector from the merger's width to the decoder's, unit norm out.

    Its children are numbered as in the checkpoint (``0``, ``2``, … are linears, the odd
    ones GELU), so the official weights load by name.

    Args:
        in_size: The merger's output width (``vision_config.out_hidden_size``).
        hidden: The decoder's width.
        depth: Linear layers (``mlp_depths``).
        disable_tp: Replicate the weights (the encoder runs data-parallel).
        quant_config: vLLM's quantization config, if any.
        prefix: The module's name in the model.
    """

    def __init__(
        self,
        in_size: int,
        hidden: int,
        depth: int,
        *,
        disable_tp: bool = False,
        quant_config: Any = None,
        prefix: str = "linear_proj",
    ) -> None:
        layers: list[nn.Module] = []
        for k in range(depth):
            name = f"{prefix}.{len(layers)}"
            width = in_size if k == 0 else hidden
            if k % 2 == 0:
                # The last column-parallel layer gathers: the output must be whole.
                layers.append(
                    ColumnParallelLinear(
                        width, hidden, bias=True, gather_output=k == depth - 1,
                        quant_config=quant_config, prefix=name, return_bias=False,
                        disable_tp=disable_tp,
                    )
                )  # fmt: skip
            else:
                layers.append(
                    RowParallelLinear(
                        width, hidden, bias=True, input_is_parallel=True,
                        quant_config=quant_config, prefix=name, return_bias=False,
                        disable_tp=disable_tp,
                    )
                )  # fmt: skip
            if k < depth - 1:
                layers.append(nn.GELU())
        super().__init__(layers)

    def forward(self, merged: torch.Tensor) -> torch.Tensor:
        """Project merged vision tokens ``[N, out_hidden]`` to unit-norm rows ``[N, H]``."""
        hidden = merged
        for layer in self:
            hidden = layer(hidden)
        # Normalise in float32: bf16 sums of squares lose the unit norm the decoder expects.
        return F.normalize(hidden.float(), dim=-1).to(hidden.dtype)


@MULTIMODAL_REGISTRY.register_processor(
    M2MultiModalProcessor, info=M2ProcessingInfo, dummy_inputs=M2DummyInputsBuilder
)
class M2ForConditionalGeneration(Qwen2_5_VLForConditionalGeneration):
    """M2-Reasoning-7B (``Bailing_qwen2_5NativeForConditionalGeneration``) for vLLM."""

    # The processor normalises pixels (transformers' PIL backend); on-device normalisation
    # would do it a second time.
    supports_mm_device_do_normalize = False

    hf_to_vllm_mapper = WeightsMapper(orig_to_new_prefix={"vision_model.": "visual."})

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__(vllm_config=vllm_config, prefix=prefix)
        config = self.config
        self.linear_proj = M2Projector(
            config.vision_config.out_hidden_size,
            config.text_config.hidden_size,
            int(config.mlp_depths),
            disable_tp=self.use_data_parallel,
            quant_config=getattr(self, "quant_config", None),
            prefix=maybe_prefix(prefix, "linear_proj"),
        )

    @classmethod
    def get_placeholder_str(cls, modality: str, i: int) -> str | None:
        """``<image><imagePatch></image>`` per image; M2 takes no video."""
        if modality.startswith("image"):
            return IMAGE_PLACEHOLDER
        raise ValueError("M2 on vLLM takes images only (send video frames as images)")

    def get_mrope_input_positions(
        self, input_tokens: list[int], mm_features: list[Any]
    ) -> tuple[torch.Tensor, int]:
        """3-D positions as Qwen2.5-VL's ``get_rope_index``, or 1-D ones on all three axes."""
        if getattr(self.config, "rope_mode", "m_rope") == "1d":
            return torch.arange(len(input_tokens)).expand(3, -1).clone(), 0
        return super().get_mrope_input_positions(input_tokens, mm_features)

    def _process_image_input(self, image_input: Any) -> tuple[torch.Tensor, ...]:
        merged = super()._process_image_input(image_input)
        sizes = [int(t.shape[0]) for t in merged]
        return self.linear_proj(torch.cat(merged)).split(sizes)

    def encoder_eager_forward(self, mm_kwargs: dict[str, Any], path: str = "default") -> Any:
        """The encoder path the CUDA-graph runner uses outside graphs: tower, then projector."""
        return self.linear_proj(super().encoder_eager_forward(mm_kwargs, path))

    def encoder_cudagraph_forward(self, values: dict[str, Any], path: str = "default") -> Any:
        """The captured encoder path: tower, then projector."""
        return self.linear_proj(super().encoder_cudagraph_forward(values, path))

    def get_encoder_cudagraph_config(self) -> Any:
        """The parent's config, with output buffers as wide as the projector's output."""
        config = super().get_encoder_cudagraph_config()
        return dataclasses.replace(config, out_hidden_size=self.config.text_config.hidden_size)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        """Load the official safetensors names (see the module docstring)."""
        loader = AutoWeightsLoader(self)
        return loader.load_weights(weights, mapper=self.hf_to_vllm_mapper)
