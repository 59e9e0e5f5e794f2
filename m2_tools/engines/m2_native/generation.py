"""The decode loop: several prompts in one left-padded batch, with a KV cache.

Each row keeps its own positions (its mRoPE positions for the prompt, then one
more per token from its rope delta), its own stop, limit, sampling generator,
progress callback and cancel event. When rows finish they are dropped from the
batch and the cache, so the rest stop paying for them. Batched greedy decoding
gives the same tokens as decoding each prompt alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from transformers.cache_utils import DynamicCache

from m2_tools.engines.m2_native.modeling import M2Model
from m2_tools.engines.m2_native.processor import PreparedPrompt

__all__ = ["DecodeOptions", "RowOutput", "generate_batch", "sample_token"]

logger = logging.getLogger(__name__)

FinishReason = Literal["stop", "length", "cancelled"]


@dataclass
class DecodeOptions:
    """How one row is decoded.

    Attributes:
        max_new_tokens: Token limit, the stop token included.
        do_sample: Sample instead of taking the most likely token.
        temperature: Sampling temperature; 0 or less means greedy.
        top_p: Nucleus mass kept when sampling.
        seed: Seed of this row's own generator, for reproducible samples.
        on_token: Called with the number of tokens generated after each one.
        cancel: When set, the row stops before its next token.
    """

    max_new_tokens: int
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    on_token: Callable[[int], None] | None = None
    cancel: threading.Event | None = None


@dataclass
class RowOutput:
    """The tokens generated for one row (a final stop token included) and why it ended."""

    token_ids: list[int] = field(default_factory=list)
    finish_reason: FinishReason = "length"


def sample_token(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator
) -> int:
    """Draw one token id from ``logits`` (``[V]``) with temperature and nucleus filtering.

    Sampling runs on the CPU in float32 so that a seed gives the same draw on any device.
    """
    probs = torch.softmax(logits.detach().to("cpu", torch.float32) / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        # Keep the smallest prefix whose mass reaches top_p (always at least one token).
        outside = sorted_probs.cumsum(0) - sorted_probs >= top_p
        sorted_probs[outside] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.inference_mode()
def generate_batch(
    model: M2Model,
    prompts: Sequence[PreparedPrompt],
    options: Sequence[DecodeOptions],
    *,
    stop_ids: Collection[int],
    pad_id: int,
) -> list[RowOutput]:
    """Decode several prepared prompts together.

    Args:
        model: The loaded model.
        prompts: One prepared prompt per row.
        options: One set of decode options per row.
        stop_ids: Tokens that end a row (kept as its last token); empty to never stop.
        pad_id: Token used for left padding (masked out).

    Returns:
        One :class:`RowOutput` per row, in order.
    """
    device = model.language_model.lm_head.weight.device
    outputs = [RowOutput() for _ in prompts]
    generators = [_generator(o.seed) if o.do_sample else None for o in options]
    live = [i for i, o in enumerate(options) if not _finished_early(o, outputs[i])]
    if not live:
        return outputs
    cache = DynamicCache()
    input_ids, positions, mask, next_pos = _left_pad([prompts[i] for i in live], pad_id, device)
    image_embeds = _image_embeds(model, [prompts[i] for i in live], device)
    logits = model(input_ids, positions, mask, cache, image_embeds)[:, -1]
    while True:
        keep: list[int] = []
        tokens: list[int] = []
        greedy = logits.argmax(-1).tolist()  # one device sync for all greedy rows
        for slot, row in enumerate(live):
            generator, opts = generators[row], options[row]
            if generator is None or opts.temperature <= 0:
                token = greedy[slot]
            else:
                token = sample_token(logits[slot], opts.temperature, opts.top_p, generator)
            if _record(outputs[row], token, opts, stop_ids):
                keep.append(slot)
                tokens.append(token)
        if not keep:
            return outputs
        if len(keep) < len(live):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, next_pos = mask[index], next_pos[index]
            live = [live[slot] for slot in keep]
        step_ids = torch.tensor(tokens, device=device).unsqueeze(1)
        mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=1)
        step_pos = next_pos.view(1, -1, 1).expand(3, -1, 1)
        logits = model(step_ids, step_pos, mask, cache)[:, -1]
        next_pos = next_pos + 1


def _record(out: RowOutput, token: int, options: DecodeOptions, stop_ids: Collection[int]) -> bool:
    """Append ``token`` to the row; return whether the row goes on."""
    out.token_ids.append(token)
    _notify(options, len(out.token_ids))
    if token in stop_ids:
        out.finish_reason = "stop"
    elif len(out.token_ids) >= options.max_new_tokens:
        out.finish_reason = "length"
    elif _cancelled(options):
        out.finish_reason = "cancelled"
    else:
        return True
    return False


def _finished_early(options: DecodeOptions, out: RowOutput) -> bool:
    if _cancelled(options):
        out.finish_reason = "cancelled"
        return True
    if options.max_new_tokens <= 0:
        out.finish_reason = "length"
        return True
    return False


def _cancelled(options: DecodeOptions) -> bool:
    return options.cancel is not None and options.cancel.is_set()


def _notify(options: DecodeOptions, count: int) -> None:
    if options.on_token is None:
        return
    try:
        options.on_token(count)
    except Exception:
        # A broken progress callback must not cost the other rows their answers.
        logger.exception("on_token callback failed")


def _generator(seed: int | None) -> torch.Generator:
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def _left_pad(
    prompts: Sequence[PreparedPrompt], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pad the rows; return ids, ``[3, B, L]`` positions, mask and next positions."""
    width = max(len(p.input_ids) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    # Padding slots get position 1 (as transformers does); they are masked out anyway.
    positions = torch.ones((3, len(prompts), width), dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    next_pos = torch.empty(len(prompts), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        n = len(prompt.input_ids)
        ids[row, width - n :] = torch.tensor(prompt.input_ids)
        positions[:, row, width - n :] = prompt.position_ids
        mask[row, width - n :] = 1
        next_pos[row] = n + prompt.rope_delta
    return ids.to(device), positions.to(device), mask.to(device), next_pos.to(device)


def _image_embeds(
    model: M2Model, prompts: Sequence[PreparedPrompt], device: torch.device
) -> torch.Tensor | None:
    """Image tokens of every row, in row order, from one vision-tower pass."""
    with_images = [p for p in prompts if p.pixel_values is not None]
    if not with_images:
        return None
    pixels = torch.cat([p.pixel_values for p in with_images if p.pixel_values is not None])
    grids = torch.cat([p.image_grid_thw for p in with_images if p.image_grid_thw is not None])
    return model.embed_images(pixels.to(device), grids.to(device))
