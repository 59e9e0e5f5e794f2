"""Answers: from the model's completion to the fields an agent acts on.

- :mod:`.parsing`: ``parse_response(text, choices)`` → :class:`ParsedAnswer` (the rules in
  ``docs/parsing.md``), built from :mod:`.text` (tags, boxes, cleaning), :mod:`.numbers`
  (a number from an answer), :mod:`.expr` (safe arithmetic) and :mod:`.choices` (mapping
  an answer onto the options);
- :mod:`.voting`: the majority over ``samples > 1`` parsed answers.
"""

from m2_tools.answers.parsing import ParsedAnswer, Status, normalize_vote_key, parse_response
from m2_tools.answers.voting import vote

__all__ = ["ParsedAnswer", "Status", "normalize_vote_key", "parse_response", "vote"]
