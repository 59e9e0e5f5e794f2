"""Keeping stdout for the protocol when serving on stdio.

The SDK's stdio transport already guards the wire while it serves: it writes the
protocol through a private duplicate of fd 1 and points fd 1 at stderr. This module
covers the time around that, from the start of ``serve`` (imports, settings, building
the server) to its end (shutdown), so stray output from Python, C code or child
processes lands on stderr at every moment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

__all__ = ["StdoutGuard"]


class StdoutGuard:
    """Points fd 1 (and so ``sys.stdout``) at stderr, keeping the real stdout aside.

    Use :meth:`handed_to_transport` around the SDK's stdio transport, which claims
    fd 1 the moment it starts.
    """

    def __init__(self) -> None:
        self._wire: int | None = None

    def __enter__(self) -> StdoutGuard:
        sys.stdout.flush()
        self._wire = os.dup(1)
        os.dup2(2, 1)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._wire is not None
        sys.stdout.flush()
        os.dup2(self._wire, 1)
        os.close(self._wire)
        self._wire = None

    @contextmanager
    def handed_to_transport(self) -> Iterator[None]:
        """Give the real stdout back to fd 1 for the SDK's transport to claim, then divert again."""
        assert self._wire is not None, "enter the guard first"
        sys.stdout.flush()
        os.dup2(self._wire, 1)
        try:
            yield
        finally:
            os.dup2(2, 1)
