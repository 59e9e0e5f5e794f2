"""Read image files from the allowed directories only (the path half of image intake).

A path is resolved (symlinks and ``..``) and must lie inside an allowed directory; a
path that spells ``..`` must also lie inside *lexically*, so a caller cannot probe
symlinks outside through ``inside/../../outside/link/../..``. The allowed-ness check
comes before any existence test, so refusals never reveal whether a file exists
outside. Only regular files are read, never directories, FIFOs or devices; the type
is checked with ``stat`` before opening (opening some devices has side effects) and
again with ``fstat`` on the open descriptor, which is opened without following a
final symlink. The residual race (a directory component inside an allowed directory
swapped for a symlink between check and open) needs local write access and is out
of scope.
"""

from __future__ import annotations

import errno
import os
import stat
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from m2_tools.errors import (
    ImageNotAllowed,
    ImageNotFound,
    ImageTooLarge,
    ImageUnsupported,
    InvalidArgument,
    M2Error,
    UrlNotAllowed,
)

__all__ = ["LocalFiles", "file_uri_path"]

_MAX_PATH_CHARS = 4096
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def file_uri_path(uri: str, name: str) -> str:
    """Return the local path a ``file://`` URI names.

    Raises:
        UrlNotAllowed: The URI names a remote host.
        InvalidArgument: The URI's path is not absolute, or encodes a NUL byte (``%00``).
    """
    parts = urllib.parse.urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise UrlNotAllowed(f"{name} names a remote host; file:// URIs must be local (file:///...)")
    path = urllib.parse.unquote(parts.path)
    if "\x00" in path:
        # Why: no file name holds a NUL; left in, it would surface as an odd OS error.
        raise InvalidArgument(f"{name} encodes a NUL byte (%00), which no file path can hold")
    if not path.startswith("/"):
        raise InvalidArgument(f"{name} is not an absolute file:// URI (use file:///abs/path)")
    return path


class LocalFiles:
    """Reads regular files that lie inside the allowed directories.

    Args:
        allowed_dirs: The directories; empty refuses every path.
        max_bytes: Largest file accepted.
        hint: Appended to "not found" messages: what else the caller may pass.
    """

    def __init__(self, allowed_dirs: Sequence[Path], max_bytes: int, hint: str) -> None:
        self._roots = tuple(Path(d).expanduser().resolve() for d in allowed_dirs)
        self._max_bytes = max_bytes
        self._hint = hint

    def read(self, raw: str, name: str) -> bytes:
        """Return the bytes of the file ``raw`` (absolute, or relative to the working dir).

        Args:
            raw: The path as the caller gave it.
            name: How messages refer to it; never the resolved path.

        Raises:
            ImageNotAllowed: Local files are off, the path is outside, or not a regular file.
            ImageNotFound: The file is missing, unreadable or a directory.
            ImageTooLarge: The file is larger than ``max_bytes``.
        """
        if not self._roots:
            raise ImageNotAllowed(
                f"{name} was read as a file path, but local files are disabled on this "
                "server (start it with --allow-dir DIR); send the image as base64, a "
                "data: URI or an http(s) URL instead"
            )
        if len(raw) > _MAX_PATH_CHARS:
            raise ImageUnsupported(f"{name} is not a recognised image reference; {self._hint}")
        path = Path(raw)
        if not path.is_absolute():
            path = Path.cwd() / path
        fd = self._open(self._allowed_target(path, name), name)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _not_regular(info.st_mode, name)
            if info.st_size > self._max_bytes:
                raise ImageTooLarge(
                    f"{name} is {info.st_size:,} bytes, more than {self._limit_text()}"
                )
            return _read_at_most(fd, self._max_bytes + 1)
        except OSError:
            raise ImageNotFound(f"{name} cannot be read") from None
        finally:
            os.close(fd)

    def _allowed_target(self, path: Path, name: str) -> Path:
        """The resolved path, if it lies inside an allowed directory."""
        lexical = Path(os.path.normpath(path))
        lexical_ok = ".." not in path.parts or self._inside(lexical)
        try:
            resolved: Path | None = path.resolve(strict=False)
        except ValueError:  # an embedded NUL: no such file can exist
            raise InvalidArgument(
                f"{name} contains a NUL byte, which no file path can hold"
            ) from None
        except (OSError, RuntimeError):
            # Symlink loops: only worth explaining when the caller may look there.
            if lexical_ok and self._inside(lexical):
                raise ImageNotFound(f"{name} cannot be resolved (symbolic link loop)") from None
            resolved = None
        if resolved is None or not lexical_ok or not self._inside(resolved):
            # Why: the directories are not named, so remote callers learn no server paths.
            raise ImageNotAllowed(
                f"{name} (read as a file path) is outside the directories this server reads "
                "images from (its --allow-dir / M2_ALLOWED_DIRS); move the image there, or send "
                "it as base64, a data: URI or an http(s) URL"
            )
        return resolved

    def _inside(self, path: Path) -> bool:
        return any(path.is_relative_to(root) for root in self._roots)

    def _open(self, resolved: Path, name: str) -> int:
        try:
            before_open = os.stat(resolved).st_mode
            if not stat.S_ISREG(before_open):
                raise _not_regular(before_open, name)
            return os.open(resolved, _OPEN_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise ImageNotFound(
                f"{name} does not exist (relative paths start at the server's working "
                f"directory); {self._hint}"
            ) from None
        except PermissionError:
            raise ImageNotFound(f"{name} exists but cannot be read (permission denied)") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ImageNotAllowed(f"{name} turned into a symbolic link; refused") from None
            raise ImageNotFound(f"{name} cannot be opened") from None

    def _limit_text(self) -> str:
        return f"{self._max_bytes / 2**20:g} MiB, the image size limit"


def _not_regular(mode: int, name: str) -> M2Error:
    if stat.S_ISDIR(mode):
        return ImageNotFound(f"{name} is a directory, not an image file")
    return ImageNotAllowed(f"{name} is not a regular file (device, FIFO or socket); refused")


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = os.read(fd, min(1 << 20, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
