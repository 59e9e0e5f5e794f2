"""Choosing each row's next token: greedy, or drawn with the row's own seeded generator."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["choose_tokens", "new_generator", "sample_token"]


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


def choose_tokens(
    logits: torch.Tensor,
    generators: Sequence[torch.Generator | None],
    settings: Sequence[tuple[float, float]],
) -> list[int]:
    """Each row's next token from its logits row: greedy, or drawn with its own generator.

    Args:
        logits: ``[rows, V]``.
        generators: Per row, its generator; None decodes greedily.
        settings: Per row, its (temperature, top_p); a temperature of 0 or less is greedy.
    """
    greedy = logits.argmax(-1).tolist()  # one device sync for all greedy rows
    tokens: list[int] = []
    for slot, (generator, (temperature, top_p)) in enumerate(
        zip(generators, settings, strict=True)
    ):
        if generator is None or temperature <= 0:
            tokens.append(int(greedy[slot]))
        else:
            tokens.append(sample_token(logits[slot], temperature, top_p, generator))
    return tokens


def new_generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with ``seed``, or from the OS when None."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator
