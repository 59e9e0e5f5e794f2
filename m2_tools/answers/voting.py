"""Self-consistency: sampled answers vote, and the majority wins."""

from __future__ import annotations

import collections
from collections.abc import Sequence

from m2_tools.answers.parsing import ParsedAnswer, normalize_vote_key

__all__ = ["vote"]


def vote(parsed: Sequence[ParsedAnswer]) -> tuple[int, dict[str, int], float]:
    """Majority vote over samples: (index of the first winning sample, votes, confidence)."""
    keys = [normalize_vote_key(answer) for answer in parsed]
    votes = collections.Counter(key for key in keys if key is not None)
    if not votes:
        return 0, {}, 0.0
    best_count = max(votes.values())
    # Why: ties go to the answer that appeared first, so the vote is deterministic.
    winner = next(key for key in keys if key is not None and votes[key] == best_count)
    return keys.index(winner), dict(votes), best_count / len(parsed)
