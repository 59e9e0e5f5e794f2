"""The running batch's KV cache: rows join, leave and share prefixes between decode steps.

transformers' ``DynamicCache`` keeps, per decoder layer, keys and values of shape
``[batch, kv_heads, length, head_dim]``; next to it the engine keeps the attention mask
``[batch, length]`` (1 for a real token, 0 for padding). Every row is left-padded to the
common length, so a decode step appends one column for all rows. The operations here
work on those tensors directly, the same way on every transformers release the project
supports (5.20 up): :class:`BatchCache` wraps one ``DynamicCache`` and its mask.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache

__all__ = ["BatchCache"]


class BatchCache:
    """One ``DynamicCache`` and its attention mask, for the rows of a batch in order.

    Args:
        cache: A cache filled by a forward pass (or empty).
        mask: ``[batch, length]`` attention mask matching the cache.
    """

    def __init__(self, cache: DynamicCache, mask: torch.Tensor) -> None:
        self.cache = cache
        self.mask = mask

    @property
    def rows(self) -> int:
        """Rows in the batch."""
        return int(self.mask.shape[0])

    @property
    def length(self) -> int:
        """Cached positions per row, padding included."""
        return int(self.mask.shape[1])

    def _layers(self) -> list[object]:
        return [layer for layer in self.cache.layers if getattr(layer, "is_initialized", False)]

    def _map(self, fn: object) -> None:
        for layer in self._layers():
            layer.keys = fn(layer.keys)  # type: ignore[attr-defined, operator]
            layer.values = fn(layer.values)  # type: ignore[attr-defined, operator]

    def select(self, index: list[int]) -> None:
        """Keep the rows at ``index`` (in that order), then drop all-padding columns."""
        at = torch.tensor(index, device=self.mask.device)
        self._map(lambda t: t.index_select(0, at))
        self.mask = self.mask.index_select(0, at)
        self.trim()

    def repeat(self, counts: list[int]) -> BatchCache:
        """A new cache whose row ``i`` is repeated ``counts[i]`` times (shared prefixes)."""
        at = torch.repeat_interleave(
            torch.arange(len(counts), device=self.mask.device),
            torch.tensor(counts, device=self.mask.device),
        )
        cache = DynamicCache()
        copy = BatchCache(cache, self.mask.index_select(0, at))
        pairs = [(layer.keys, layer.values) for layer in self._layers()]  # type: ignore[attr-defined]
        for layer_idx, (keys, values) in enumerate(pairs):
            cache.update(keys.index_select(0, at), values.index_select(0, at), layer_idx)
        return copy

    def trim(self) -> None:
        """Drop leading columns that are padding in every row (rows that left held them)."""
        if self.rows == 0:
            return
        used = self.mask.any(0).nonzero()
        first = int(used[0]) if used.numel() else self.length
        if first > 0:
            self._map(lambda t: t[:, :, first:])
            self.mask = self.mask[:, first:]

    def merge(self, other: BatchCache) -> None:
        """Append ``other``'s rows after this batch's, left-padding the shorter side."""
        width = max(self.length, other.length)
        mine, theirs = self._layers(), other._layers()
        if len(mine) != len(theirs):
            raise ValueError(f"caches of {len(mine)} and {len(theirs)} layers cannot merge")
        for layer, new in zip(mine, theirs, strict=True):
            for name in ("keys", "values"):
                a, b = getattr(layer, name), getattr(new, name)
                setattr(layer, name, torch.cat([_left_pad(a, width), _left_pad(b, width)]))
        self.mask = torch.cat([_left_pad_mask(self.mask, width), _left_pad_mask(other.mask, width)])

    def extend_mask(self) -> None:
        """One more real column for every row (before a decode step)."""
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.rows, 1)], dim=1)


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - tensor.shape[2]
    if missing == 0:
        return tensor
    pad = tensor.new_zeros(tensor.shape[0], tensor.shape[1], missing, tensor.shape[3])
    return torch.cat([pad, tensor], dim=2)


def _left_pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - mask.shape[1]
    if missing == 0:
        return mask
    return torch.cat([mask.new_zeros(mask.shape[0], missing), mask], dim=1)
