"""Telling base64 text from other references: image payloads, and base64 of no image.

Bare base64 is recognised by what its first bytes decode to, which also keeps
``/9j/...`` (base64 JPEG) from being read as an absolute path. Text that named no
readable file but is plainly base64 is reported as such, not as a missing file.
"""

from __future__ import annotations

import base64
import binascii
import re

from m2_tools.intake.decode import has_image_magic

__all__ = [
    "BASE64_TEXT",
    "URLSAFE_TO_STANDARD",
    "WHITESPACE",
    "looks_like_base64_image",
    "reads_as_base64",
]

WHITESPACE = re.compile(r"\s+")
#: The standard and URL-safe alphabets, with padding.
BASE64_TEXT = re.compile(r"[A-Za-z0-9+/_-]*=*")
URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


def looks_like_base64_image(text: str) -> bool:
    """Whether ``text`` starts with base64 of an accepted format's signature."""
    head = WHITESPACE.sub("", text[:256])[:32].rstrip("=").translate(URLSAFE_TO_STANDARD)
    head = head[: len(head) // 4 * 4]
    if len(head) < 8:
        return False
    try:
        return has_image_magic(base64.b64decode(head, validate=True))
    except (binascii.Error, ValueError):
        return False


def reads_as_base64(text: str) -> bool:
    """Whether ``text``, which named no readable file, is base64 rather than a file name.

    It is when it is at least 12 characters of the base64 alphabet (no dot, so no file
    extension) with a length base64 can have. A leading ``/`` makes it a path.
    """
    compact = WHITESPACE.sub("", text)
    if len(compact) < 12 or compact.startswith("/") or not BASE64_TEXT.fullmatch(compact):
        return False
    body = compact.rstrip("=")
    if body != compact and len(compact) % 4:
        return False
    return len(body) % 4 != 1
