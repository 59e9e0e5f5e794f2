"""What callers may see of the server: model ids and messages without server paths.

A remote caller learns nothing from where the checkpoint lives, and a path can say a
lot (user names, mount points, the layout of the hub cache). The full detail goes to
the server's log; results and error messages carry:

- :func:`public_model_id`: the hub id, or for a local directory its final name;
- :func:`without_paths`: the text with every absolute path cut to its final name.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

__all__ = ["public_model_id", "without_paths"]

# An absolute POSIX path, a home-relative one or a Windows drive path: one or more
# components after a separator that follows no word, dot, colon or separator (so URLs,
# fractions such as 3/4 and "and/or" are left alone).
_ABSOLUTE_PATH = re.compile(
    r"""(?<![\w.:/\\~-])(?:~|[A-Za-z]:)?[/\\](?:[^\s/\\'"`]+[/\\])*([^\s/\\'"`]+)"""
)


@functools.lru_cache(maxsize=16)
def public_model_id(model: str) -> str:
    """The model as a caller may see it: a hub id unchanged, a local directory by name.

    Args:
        model: The configured model reference (``--model``): a hub id or a path.

    Example:
        >>> public_model_id("/srv/models/M2-Reasoning")
        'M2-Reasoning'
        >>> public_model_id("inclusionAI/M2-Reasoning")
        'inclusionAI/M2-Reasoning'
    """
    text = model.strip()
    path = Path(text).expanduser()
    # A hub id is "name" or "owner/name"; anything else that names a place is a path.
    local = (
        path.is_absolute()
        or text.startswith((".", "~"))
        or "\\" in text
        or text.count("/") > 1
        or path.is_dir()
    )
    if not local:
        return text
    name = path.resolve().name if text.startswith(".") else path.name
    return name or "local model"


def without_paths(text: str) -> str:
    """``text`` with each absolute path replaced by ``.../`` and its final name.

    Example:
        >>> without_paths("/home/ana/models/m2/config.json is missing")
        '.../config.json is missing'
    """
    return _ABSOLUTE_PATH.sub(lambda match: f".../{match.group(1)}", text)
