"""Prefill: prompts through the vision tower and the decoder, apart from the running batch.

Short prompts that arrive together are prefilled in one left-padded pass (one vision
pass for all their images); a prompt longer than the step budget is prefilled alone in
chunks, one chunk per engine step, so the running rows never wait for more than one
chunk. Either way the result is a :class:`~.kv_cache.BatchCache` with one row per
prompt, each row's next position and the logits of its last prompt token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers.cache_utils import DynamicCache

from m2_tools.engines.m2_native.kv_cache import BatchCache
from m2_tools.engines.m2_native.modeling import M2Model
from m2_tools.engines.m2_native.processor import PreparedPrompt

__all__ = ["ChunkedPrefill", "image_embeds", "prefill_together"]


def prefill_together(
    model: M2Model, prompts: Sequence[PreparedPrompt], pad_id: int
) -> tuple[BatchCache, list[int], torch.Tensor]:
    """Prefill ``prompts`` in one left-padded pass.

    Returns:
        Their cache (one row per prompt), next positions and last-token logits ``[n, V]``.
    """
    device = model.language_model.lm_head.weight.device
    ids, positions, mask, next_pos = _left_pad(prompts, pad_id, device)
    cache = DynamicCache()
    logits = model(ids, positions, mask, cache, image_embeds(model, prompts, device))[:, -1]
    return BatchCache(cache, mask), next_pos, logits


class ChunkedPrefill:
    """One long prompt, prefilled ``chunk`` tokens per :meth:`advance`.

    Args:
        model: The loaded model.
        prompt: The prepared prompt.
        chunk: Prompt tokens per pass.
    """

    def __init__(self, model: M2Model, prompt: PreparedPrompt, chunk: int) -> None:
        self.model = model
        self.prompt = prompt
        self.chunk = max(1, chunk)
        self.device = model.language_model.lm_head.weight.device
        self.done_tokens = 0
        self.cache = BatchCache(
            DynamicCache(), torch.zeros((1, 0), dtype=torch.long, device=self.device)
        )
        self.logits: torch.Tensor | None = None
        self._embeds: torch.Tensor | None = None
        self._embeds_used = 0

    @property
    def next_pos(self) -> int:
        """Where decoding continues: prompt length plus the rope delta."""
        return len(self.prompt.input_ids) + self.prompt.rope_delta

    @property
    def finished(self) -> bool:
        """Whether the whole prompt is in the cache (and :attr:`logits` is set)."""
        return self.logits is not None

    def advance(self) -> bool:
        """Prefill the next chunk; True when the prompt is done."""
        prompt, start = self.prompt, self.done_tokens
        if start == 0 and prompt.pixel_values is not None:
            self._embeds = image_embeds(self.model, [prompt], self.device)
        end = min(start + self.chunk, len(prompt.input_ids))
        ids = torch.tensor([prompt.input_ids[start:end]], device=self.device)
        positions = prompt.position_ids[:, start:end].unsqueeze(1).to(self.device)
        mask = torch.ones((1, end), dtype=torch.long, device=self.device)
        embeds = None
        if self._embeds is not None:
            patches = int((ids == self.model.config.tokens.image_patch).sum())
            embeds = self._embeds[self._embeds_used : self._embeds_used + patches]
            self._embeds_used += patches
        logits = self.model(ids, positions, mask, self.cache.cache, embeds)[:, -1]
        self.cache.mask = mask
        self.done_tokens = end
        if end == len(prompt.input_ids):
            self.logits = logits
            self._embeds = None
        return self.finished


def image_embeds(
    model: M2Model, prompts: Sequence[PreparedPrompt], device: torch.device
) -> torch.Tensor | None:
    """Image tokens of every prompt, in order, from one vision-tower pass."""
    with_images = [p for p in prompts if p.pixel_values is not None]
    if not with_images:
        return None
    pixels = torch.cat([p.pixel_values for p in with_images if p.pixel_values is not None])
    grids = torch.cat([p.image_grid_thw for p in with_images if p.image_grid_thw is not None])
    return model.embed_images(pixels.to(device), grids.to(device))


def _left_pad(
    prompts: Sequence[PreparedPrompt], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Left-pad the rows; return ids, ``[3, B, L]`` positions, mask and next positions."""
    width = max(len(p.input_ids) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    # Padding slots get position 1 (as transformers does); they are masked out anyway.
    positions = torch.ones((3, len(prompts), width), dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    next_pos: list[int] = []
    for row, prompt in enumerate(prompts):
        n = len(prompt.input_ids)
        ids[row, width - n :] = torch.tensor(prompt.input_ids)
        positions[:, row, width - n :] = prompt.position_ids
        mask[row, width - n :] = 1
        next_pos.append(n + prompt.rope_delta)
    return ids.to(device), positions.to(device), mask.to(device), next_pos
