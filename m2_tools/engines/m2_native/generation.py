"""The decode loop: one running batch that rows join and leave at every step.

Each row keeps its own positions (its mRoPE positions for the prompt, then one more
per token from its rope delta), its own stop, limit, sampling generator, progress
callback and cancel. A newcomer is prefilled apart from the batch (see
:mod:`.prefill`), takes its first token from its own prefill logits, and is then
merged into the batch's KV cache (see :mod:`.kv_cache`); finished rows leave the cache
at once, so the rest stop paying for them. Batched greedy decoding gives the same
tokens as decoding each prompt alone, whenever the rows join.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from m2_tools.engines.m2_native.compiled import CompiledDecoder
from m2_tools.engines.m2_native.kv_cache import BatchCache
from m2_tools.engines.m2_native.modeling import M2Model
from m2_tools.engines.m2_native.prefill import prefill_together
from m2_tools.engines.m2_native.processor import PreparedPrompt
from m2_tools.engines.m2_native.sampling import choose_tokens, new_generator, sample_token

__all__ = [
    "DecodeOptions",
    "DecodeRow",
    "RowOutput",
    "RunningBatch",
    "generate_batch",
    "sample_token",
]

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
        should_stop: Polled like ``cancel``; True stops the row as cancelled.
    """

    max_new_tokens: int
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    on_token: Callable[[int], None] | None = None
    cancel: threading.Event | None = None
    should_stop: Callable[[], bool] | None = None


@dataclass
class RowOutput:
    """The tokens generated for one row (a final stop token included) and why it ended.

    ``failure`` is set when the model raised while this row was in a forward pass.
    """

    token_ids: list[int] = field(default_factory=list)
    finish_reason: FinishReason = "length"
    failure: BaseException | None = None


@dataclass(eq=False)
class DecodeRow:
    """One row on its way through the batch.

    ``claim`` is asked when the row's prefill starts: False means it was settled while
    waiting (cancelled) and is dropped silently. ``on_finish`` is called once when it ends.
    """

    options: DecodeOptions
    on_finish: Callable[[DecodeRow], None] | None = None
    claim: Callable[[], bool] | None = None
    output: RowOutput = field(default_factory=RowOutput)
    generator: torch.Generator | None = None
    finished: bool = False

    def __post_init__(self) -> None:
        if self.options.do_sample and self.generator is None:
            self.generator = new_generator(self.options.seed)

    def stopped(self) -> bool:
        """Whether the row was cancelled from outside."""
        o = self.options
        return (o.cancel is not None and o.cancel.is_set()) or (
            o.should_stop is not None and o.should_stop()
        )

    def start(self) -> bool:
        """Claim the row as its prefill starts; False drops it without ``on_finish``."""
        if self.finished:
            return False
        if self.claim is not None and not self.claim():
            self.finished = True
            return False
        return True

    def finish(self, reason: FinishReason, failure: BaseException | None = None) -> None:
        """End the row (once): set why, and tell ``on_finish``."""
        if self.finished:
            return
        self.finished = True
        self.output.finish_reason = reason
        self.output.failure = failure
        if self.on_finish is not None:
            self.on_finish(self)

    def record(self, token: int, stop_ids: Collection[int]) -> bool:
        """Append ``token``; end the row on a stop token, its limit or a cancel; True goes on."""
        self.output.token_ids.append(token)
        count = len(self.output.token_ids)
        if self.options.on_token is not None:
            try:
                self.options.on_token(count)
            except Exception:
                # A broken progress callback must not cost the other rows their answers.
                logger.exception("on_token callback failed")
        if token in stop_ids:
            self.finish("stop")
        elif count >= self.options.max_new_tokens:
            self.finish("length")
        elif self.stopped():
            self.finish("cancelled")
        return not self.finished


class RunningBatch:
    """The rows being decoded together, their KV cache and their next positions.

    Args:
        model: The loaded model.
        stop_ids: Tokens that end a row (kept as its last token).
        fast: The compiled decoder for a lone row (``M2_COMPILE``), or None.
    """

    def __init__(
        self, model: M2Model, stop_ids: Collection[int], fast: CompiledDecoder | None = None
    ) -> None:
        self.model = model
        self.stop_ids = frozenset(stop_ids)
        self.device = model.language_model.lm_head.weight.device
        self.fast = fast
        self.rows: list[DecodeRow] = []
        self.cache: BatchCache | None = None
        self.next_pos = torch.empty(0, dtype=torch.long, device=self.device)

    def __len__(self) -> int:
        return len(self.rows)

    def join(
        self,
        rows: Sequence[DecodeRow],
        cache: BatchCache,
        next_pos: Sequence[int],
        logits: torch.Tensor,
    ) -> None:
        """Give newcomers their first token from ``logits`` (``[n, V]``), then merge them.

        Rows that end on that first token never enter the batch.
        """
        first = _choose(logits, rows)
        keep = [i for i, row in enumerate(rows) if row.record(first[i], self.stop_ids)]
        if not keep:
            return
        if len(keep) < len(rows):
            cache.select(keep)
        positions = torch.tensor([next_pos[i] for i in keep], dtype=torch.long, device=self.device)
        self._leave_fast()
        if self.cache is None or not self.rows:
            self.cache = cache
        else:
            self.cache.merge(cache)
        self.rows.extend(rows[i] for i in keep)
        self.next_pos = torch.cat([self.next_pos, positions])

    def drop_stopped(self) -> None:
        """Rows cancelled from outside leave, as ``cancelled``, before the next step."""
        stopped = [row for row in self.rows if row.finished or row.stopped()]
        for row in stopped:
            row.finish("cancelled")
        if stopped:
            self._keep([i for i, row in enumerate(self.rows) if not row.finished])

    def decode(self, alone: bool = False) -> None:
        """One token for every row; rows that end leave the batch.

        Args:
            alone: No other row waits, so a lone row may take the compiled path.
        """
        if not self.rows:
            return
        if alone and self.fast is not None and len(self.rows) == 1:
            logits = self._fast_logits(self.fast)
        else:
            self._leave_fast()
            assert self.cache is not None
            ids = torch.tensor([row.output.token_ids[-1] for row in self.rows], device=self.device)
            self.cache.extend_mask()
            positions = self.next_pos.view(1, -1, 1).expand(3, -1, 1)
            logits = self.model(ids.unsqueeze(1), positions, self.cache.mask, self.cache.cache)
            logits = logits[:, -1]
        self.next_pos = self.next_pos + 1
        tokens = _choose(logits, self.rows)
        keep = [i for i, row in enumerate(self.rows) if row.record(tokens[i], self.stop_ids)]
        if len(keep) < len(self.rows):
            self._keep(keep)

    def fail_all(self, failure: BaseException) -> None:
        """End every row as failed (the batch's forward pass raised) and empty the batch."""
        for row in self.rows:
            row.finish("cancelled", failure)
        self._keep([])

    def _fast_logits(self, fast: CompiledDecoder) -> torch.Tensor:
        row = self.rows[0]
        if not fast.active:
            assert self.cache is not None
            fast.enter(self.cache, row.options.max_new_tokens - len(row.output.token_ids))
            self.cache = None
        return fast.step(row.output.token_ids[-1], int(self.next_pos[0]))

    def _leave_fast(self) -> None:
        if self.fast is not None and self.fast.active:
            self.cache = self.fast.leave()

    def _keep(self, index: list[int]) -> None:
        if self.fast is not None and self.fast.active and not index:
            self.fast.release()
        self._leave_fast()
        self.rows = [self.rows[i] for i in index]
        if not index:
            self.cache = None
            self.next_pos = self.next_pos[:0]
            return
        assert self.cache is not None
        self.cache.select(index)
        self.next_pos = self.next_pos[torch.tensor(index, device=self.device)]


@torch.inference_mode()
def generate_batch(
    model: M2Model,
    prompts: Sequence[PreparedPrompt],
    options: Sequence[DecodeOptions],
    *,
    stop_ids: Collection[int],
    pad_id: int,
) -> list[RowOutput]:
    """Decode several prepared prompts together: one prefill of all, then the decode loop.

    Args:
        model: The loaded model.
        prompts: One prepared prompt per row.
        options: One set of decode options per row.
        stop_ids: Tokens that end a row (kept as its last token); empty to never stop.
        pad_id: Token used for left padding (masked out).

    Returns:
        One :class:`RowOutput` per row, in order.
    """
    rows = [DecodeRow(o) for o in options]
    live = [i for i, row in enumerate(rows) if not _finished_early(row)]
    batch = RunningBatch(model, stop_ids)
    if live:
        cache, next_pos, logits = prefill_together(model, [prompts[i] for i in live], pad_id)
        batch.join([rows[i] for i in live], cache, next_pos, logits)
    while batch.rows:
        batch.decode()
    return [row.output for row in rows]


def _finished_early(row: DecodeRow) -> bool:
    if row.stopped():
        row.finish("cancelled")
    elif row.options.max_new_tokens <= 0:
        row.finish("length")
    return row.finished


def _choose(logits: torch.Tensor, rows: Sequence[DecodeRow]) -> list[int]:
    settings = [(row.options.temperature, row.options.top_p) for row in rows]
    return choose_tokens(logits, [row.generator for row in rows], settings)
