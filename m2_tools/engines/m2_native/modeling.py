"""M2-Reasoning as a torch module built from transformers' Qwen2.5-VL blocks.

The module tree mirrors the checkpoint, so its state-dict keys are the
safetensors names with no renaming::

    M2Model
    ├── vision_model     Qwen2_5_VisionTransformerPretrainedModel (merger included)
    ├── linear_proj      Linear(out_hidden, H) → GELU → Linear(H, H)
    └── language_model
        ├── model        Qwen2_5_VLTextModel
        └── lm_head      Linear(H, vocab)

Image tokens are the merger output, projected by ``linear_proj`` and
L2-normalised per token, scattered into the ``<imagePatch>`` positions in order.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    Qwen2_5_VLTextConfig,
    Qwen2_5_VLTextModel,
    Qwen2_5_VLVisionConfig,
)
from transformers.cache_utils import DynamicCache
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VisionTransformerPretrainedModel,
)

from m2_tools.engines.m2_native.config import M2Config, RopeMode

__all__ = [
    "CACHE_ARGUMENT",
    "M2LanguageModel",
    "M2Model",
    "rope_positions",
    "text_config_for",
    "vision_config_for",
]


def _cache_argument() -> str:
    """The name under which this transformers' text model takes its KV cache.

    transformers 5.24 renamed ``past_key_values`` to ``cache`` (the old name warns, and
    goes in 5.40); earlier 5.x releases know only ``past_key_values``.
    """
    parameters = inspect.signature(Qwen2_5_VLTextModel.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


CACHE_ARGUMENT = _cache_argument()


def vision_config_for(
    config: M2Config, attn_implementation: str = "sdpa"
) -> Qwen2_5_VLVisionConfig:
    """The transformers vision config for an M2 checkpoint's sizes."""
    v = config.vision
    built = Qwen2_5_VLVisionConfig(
        depth=v.depth,
        hidden_size=v.hidden_size,
        hidden_act=v.hidden_act,
        intermediate_size=v.intermediate_size,
        num_heads=v.num_heads,
        in_channels=v.in_channels,
        patch_size=v.patch_size,
        spatial_merge_size=v.spatial_merge_size,
        temporal_patch_size=v.temporal_patch_size,
        tokens_per_second=v.tokens_per_second,
        window_size=v.window_size,
        out_hidden_size=v.out_hidden_size,
        fullatt_block_indexes=list(v.fullatt_block_indexes),
    )
    built._attn_implementation = attn_implementation
    return built


def text_config_for(config: M2Config, attn_implementation: str = "sdpa") -> Qwen2_5_VLTextConfig:
    """The transformers decoder config for an M2 checkpoint's sizes.

    In ``1d`` mode the checkpoint has no section; the three position axes are equal
    there, so one section spanning every frequency gives plain 1-D rotary positions.
    (transformers would otherwise assume the 7B's (16, 24, 24), which fails any other
    head size.)
    """
    t = config.text
    section = list(t.mrope_section) if t.mrope_section is not None else [t.head_dim // 2]
    built = Qwen2_5_VLTextConfig(
        vocab_size=t.vocab_size,
        hidden_size=t.hidden_size,
        intermediate_size=t.intermediate_size,
        num_hidden_layers=t.num_hidden_layers,
        num_attention_heads=t.num_attention_heads,
        num_key_value_heads=t.num_key_value_heads,
        hidden_act=t.hidden_act,
        max_position_embeddings=t.max_position_embeddings,
        rms_norm_eps=t.rms_norm_eps,
        use_sliding_window=t.use_sliding_window,
        sliding_window=t.sliding_window,
        max_window_layers=t.max_window_layers,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": t.rope_theta,
            "mrope_section": section,
        },
        pad_token_id=None,
        bos_token_id=None,
        eos_token_id=None,
    )
    built._attn_implementation = attn_implementation
    return built


class M2LanguageModel(nn.Module):
    """The decoder (``.model``) and its output head (``.lm_head``)."""

    def __init__(self, config: Qwen2_5_VLTextConfig, tie_word_embeddings: bool = False) -> None:
        super().__init__()
        self.model = Qwen2_5_VLTextModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight


class M2Model(nn.Module):
    """The M2-Reasoning network: vision tower, projector and decoder.

    Args:
        config: The parsed checkpoint config.
        attn_implementation: Decoder attention (``sdpa``, ``eager`` or
            ``flash_attention_2``); the vision tower uses it too unless it is eager.
    """

    def __init__(self, config: M2Config, attn_implementation: str = "sdpa") -> None:
        super().__init__()
        self.config = config
        vision_attn = "sdpa" if attn_implementation == "eager" else attn_implementation
        self.vision_model = Qwen2_5_VisionTransformerPretrainedModel(
            vision_config_for(config, vision_attn)
        )
        hidden = config.text.hidden_size
        layers: list[nn.Module] = [nn.Linear(config.vision.out_hidden_size, hidden)]
        for _ in range(1, config.projector_depth):
            layers += [nn.GELU(), nn.Linear(hidden, hidden)]
        self.linear_proj = nn.Sequential(*layers)
        self.language_model = M2LanguageModel(
            text_config_for(config, attn_implementation), config.text.tie_word_embeddings
        )

    def embed_images(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        """Image tokens for the decoder: ``[Σ t·h·w / merge², H]``, unit norm per token.

        Args:
            pixel_values: ``[Σ t·h·w, C·T·P·P]`` patches from the image processor.
            grid_thw: ``[n_images, 3]`` patch grids, in prompt order.
        """
        vision_dtype = self.vision_model.patch_embed.proj.weight.dtype
        out = self.vision_model(pixel_values.to(vision_dtype), grid_thw=grid_thw)
        embeds = self.linear_proj(out.pooler_output)
        # Normalise in float32: bf16 sums of squares lose the unit norm the decoder expects.
        return F.normalize(embeds.float(), dim=-1).to(embeds.dtype)

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        past_key_values: DynamicCache | None = None,
        image_embeds: torch.Tensor | None = None,
        logits_to_keep: int = 1,
    ) -> torch.Tensor:
        """Run the decoder and return the logits of the last ``logits_to_keep`` positions.

        Args:
            input_ids: ``[B, L]`` token ids (left-padded).
            position_ids: ``[3, B, L]`` rotary positions.
            attention_mask: ``[B, past + L]``: 1 for real tokens, 0 for padding.
            past_key_values: The KV cache, extended in place.
            image_embeds: Rows for the ``<imagePatch>`` tokens of ``input_ids``, in order.
            logits_to_keep: Trailing positions to project to the vocabulary (0: all).
        """
        decoder = self.language_model.model
        embeds = decoder.embed_tokens(input_ids)
        if image_embeds is not None and image_embeds.numel():
            mask = input_ids == self.config.tokens.image_patch
            slots = int(mask.sum())
            if slots != image_embeds.shape[0]:
                raise ValueError(
                    f"{slots} <imagePatch> tokens, {image_embeds.shape[0]} image tokens"
                )
            embeds = embeds.masked_scatter(mask.unsqueeze(-1), image_embeds.to(embeds.dtype))
        hidden = decoder(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=past_key_values is not None,
            **{CACHE_ARGUMENT: past_key_values},
        ).last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits: torch.Tensor = self.language_model.lm_head(hidden)
        return logits.float()


def rope_positions(
    input_ids: Sequence[int],
    image_grids: Sequence[tuple[int, int, int]],
    *,
    image_token_id: int,
    spatial_merge_size: int,
    mode: RopeMode = "m_rope",
) -> tuple[torch.Tensor, int]:
    """Rotary positions of one unpadded prompt, as Qwen2.5-VL's ``get_rope_index`` makes them.

    Text tokens count up by one on all three axes. Each image's
    ``t·h·w / merge²`` tokens take (temporal, row, column) positions offset by
    the position reached, and the text after it continues from that offset plus
    the larger merged side.

    Args:
        input_ids: The prompt after ``<imagePatch>`` expansion.
        image_grids: Each image's ``(t, h, w)`` patch grid, in prompt order.
        image_token_id: The ``<imagePatch>`` id.
        spatial_merge_size: Patches merged per side into one token.
        mode: ``m_rope``, or ``1d`` for plain positions on all axes.

    Returns:
        ``[3, L]`` positions and the rope delta (next position minus ``L``), which
        continues the positions during decoding.
    """
    length = len(input_ids)
    if mode == "1d" or not image_grids:
        return torch.arange(length).expand(3, -1).clone(), 0
    ids = torch.as_tensor(list(input_ids))
    pieces: list[torch.Tensor] = []
    grids = iter(image_grids)
    pos = index = 0
    patch_indices = (ids == image_token_id).nonzero().flatten().tolist()
    cursor = 0
    while cursor < len(patch_indices):
        start = patch_indices[cursor]
        if start > index:
            pieces.append(torch.arange(pos, pos + start - index).expand(3, -1))
            pos += start - index
        t, h, w = next(grids)
        gh, gw = h // spatial_merge_size, w // spatial_merge_size
        count = t * gh * gw
        tt, hh, ww = torch.meshgrid(
            torch.arange(t), torch.arange(gh), torch.arange(gw), indexing="ij"
        )
        pieces.append(torch.stack([tt, hh, ww]).reshape(3, -1) + pos)
        pos += max(gh, gw)
        index = start + count
        cursor += count
    if index < length:
        pieces.append(torch.arange(pos, pos + length - index).expand(3, -1))
    positions = torch.cat(pieces, dim=1)
    return positions, int(positions.max()) + 1 - length
