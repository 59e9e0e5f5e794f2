"""Image references to validated RGB images, under the server's security policy.

A reference is a string of one of these kinds, told apart in this order:

1. ``data:[<mime>][;base64],<payload>``: the mime type is ignored (the format is
   sniffed from the bytes); payloads without ``;base64`` are percent-decoded (up
   to 1 MiB of text, since percent-decoding is slow).
   ``image/png;base64,...`` without the ``data:`` prefix is tolerated too.
2. ``http://`` / ``https://``: fetched only when URLs are allowed, and only from
   public addresses (see :mod:`m2_tools.intake.url_fetch`).
3. ``file://`` URIs (no host, or ``localhost``): read as paths.
4. Any other ``scheme:`` prefix of two or more characters (``ftp:``, ``gopher:``,
   ``javascript:``...) is refused with ``url_not_allowed``. A relative file whose
   name contains a colon can be passed as ``./name:with:colons.png``.
5. Bare base64 of an image file (whitespace, the URL-safe alphabet and missing
   padding tolerated): recognised when its first bytes decode to the signature of
   an accepted format, which also keeps ``/9j/...`` (base64 JPEG) from being read
   as an absolute path.
6. Anything else is a filesystem path, absolute or relative to the working directory.
   When it names no readable file but is 12 or more characters of the base64 alphabet
   (so no dot, no file extension), it is reported as base64 of no accepted image
   (``image_unsupported``) rather than as a missing file.

Paths are read only inside the allowed directories, after resolving symlinks and
``..``, and only regular files (see :mod:`m2_tools.intake.local_files`).

Size is checked before any work: a reference longer than base64 of ``max_bytes``
(plus slack for line breaks) is refused at once, base64 is sized from its length
before it is decoded, and pixels are counted from the header before decoding.

Error codes: ``image_not_allowed`` (outside the allowed directories, local files
off, special files), ``image_not_found`` (missing, unreadable, directory),
``image_unsupported`` (unknown reference, bad base64, not an accepted format,
undecodable, aspect ratio beyond the limit), ``image_too_large`` (bytes or pixels),
``url_not_allowed`` and ``url_fetch_failed`` (URLs; a host in octal, hex or short
numeric form is ``url_not_allowed``), ``invalid_argument`` (empty, non-string or
unparsable URL, a ``file://`` URI encoding a NUL byte).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
from PIL import Image

from m2_tools.errors import (
    ImageNotAllowed,
    ImageNotFound,
    ImageTooLarge,
    ImageUnsupported,
    InvalidArgument,
    M2Error,
    UrlNotAllowed,
)
from m2_tools.intake.base64_text import (
    BASE64_TEXT,
    URLSAFE_TO_STANDARD,
    WHITESPACE,
    looks_like_base64_image,
    reads_as_base64,
)
from m2_tools.intake.decode import FORMAT_NAMES, decode_image
from m2_tools.intake.local_files import LocalFiles, file_uri_path
from m2_tools.intake.url_fetch import UrlFetcher

if TYPE_CHECKING:
    from m2_tools.settings import Settings

__all__ = ["ImageIntake", "LoadedImage"]

logger = logging.getLogger(__name__)

# Bounded repeats: an unbounded prefix pattern would scan a whole 20 MiB payload.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{1,31}):")
_MIME_BASE64 = re.compile(r"[\w.+-]{1,127}/[\w.+-]{1,127};base64,", re.ASCII)
_MAX_PATH_CHARS = 4096
_MAX_PERCENT_ENCODED = 2**20
_REFERENCE_KINDS = "an allowed file path, an http(s) URL, a data: URI or base64 image data"


@dataclass(frozen=True)
class LoadedImage:
    """One image reference, loaded and validated.

    Attributes:
        image: The picture in mode ``RGB``, EXIF orientation applied.
        source: The reference kind: ``path``, ``url`` or ``data``; ``video`` for a
            frame sampled from a video (see :mod:`m2_tools.intake.video`).
        width: Width as given (after the EXIF transpose).
        height: Height as given (after the EXIF transpose).
        digest: SHA-256 hex digest of the original bytes, usable as a cache key.
        timestamp_s: For a video frame, its time from the video's start; else None.
    """

    image: Image.Image
    source: Literal["path", "url", "data", "video"]
    width: int
    height: int
    digest: str
    timestamp_s: float | None = None


class ImageIntake:
    """Turns image references into :class:`LoadedImage` objects, enforcing the policy.

    Args:
        allowed_dirs: Directories local files may come from; empty refuses all paths.
        allow_urls: Whether http(s) URLs may be fetched.
        max_bytes: Largest encoded image accepted, from any source.
        max_pixels: Largest ``width * height``, checked before decoding.
        max_aspect_ratio: Largest ``long side / short side``.
        fetch_timeout_s: Deadline for one URL fetch, redirects included.
        max_redirects: Redirects followed per URL.
        transport: httpx transport for URL fetches (tests pass ``httpx.MockTransport``).
        resolver: ``(host, port) -> addresses`` used to vet URL hosts; defaults to
            ``socket.getaddrinfo``.
    """

    def __init__(
        self,
        allowed_dirs: Sequence[Path],
        allow_urls: bool,
        *,
        max_bytes: int = 20 * 2**20,
        max_pixels: int = 50_000_000,
        max_aspect_ratio: float = 200.0,
        fetch_timeout_s: float = 10.0,
        max_redirects: int = 3,
        transport: httpx.BaseTransport | None = None,
        resolver: Callable[[str, int], Sequence[str]] | None = None,
    ) -> None:
        # Kept for with_max_bytes: the same policy with another size limit.
        self._policy: dict[str, Any] = {
            "allowed_dirs": allowed_dirs, "allow_urls": allow_urls, "max_pixels": max_pixels,
            "max_aspect_ratio": max_aspect_ratio, "fetch_timeout_s": fetch_timeout_s,
            "max_redirects": max_redirects, "transport": transport, "resolver": resolver,
        }  # fmt: skip
        self._files = LocalFiles(allowed_dirs, max_bytes, f"pass {_REFERENCE_KINDS}")
        self._allow_urls = allow_urls
        self._max_bytes = max_bytes
        self._max_pixels = max_pixels
        self._max_aspect_ratio = max_aspect_ratio
        # Longest reference worth looking at: base64 of max_bytes, plus slack for line
        # breaks and a data: header. Anything longer is refused before any parsing.
        self._max_reference_chars = (max_bytes + 2) // 3 * 4 * 21 // 20 + 1024
        self._fetcher = UrlFetcher(
            max_bytes=max_bytes,
            timeout_s=fetch_timeout_s,
            max_redirects=max_redirects,
            transport=transport,
            resolver=resolver,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ImageIntake:
        """Build an intake from :class:`~m2_tools.settings.Settings`.

        Args:
            settings: Supplies the allowed directories (after their default rule) and
                ``allow_urls``.
            **kwargs: Further keyword arguments of :class:`ImageIntake`.
        """
        return cls(settings.effective_allowed_dirs(), settings.allow_urls, **kwargs)

    def with_max_bytes(self, max_bytes: int) -> ImageIntake:
        """This policy (directories, URLs, transport) with another size limit, e.g. for videos."""
        return ImageIntake(**self._policy, max_bytes=max_bytes)

    def load(self, ref: str) -> LoadedImage:
        """Load one image reference.

        Args:
            ref: A data URI, bare base64, http(s) URL, ``file://`` URI or path.

        Returns:
            The validated image.

        Raises:
            M2Error: An :class:`~m2_tools.errors.ImageError` subclass (or
                ``InvalidArgument``) whose message says what to change.
        """
        source, data, name = self.fetch(ref)
        image = decode_image(
            data, name=name, max_pixels=self._max_pixels, max_aspect_ratio=self._max_aspect_ratio
        )
        logger.debug("loaded %s (%s, %dx%d, %d bytes)", name, source, *image.size, len(data))
        return LoadedImage(
            image, source, image.width, image.height, hashlib.sha256(data).hexdigest()
        )

    def fetch(self, ref: str) -> tuple[Literal["path", "url", "data"], bytes, str]:
        """The bytes a reference names, under the policy and the size limit, not decoded.

        Returns:
            The reference kind, the bytes, and a payload-free name for messages.

        Raises:
            M2Error: As :meth:`load`, except for the decoding errors.
        """
        if not isinstance(ref, str):
            raise InvalidArgument("an image reference must be a string")
        text = ref.strip()
        if not text:
            raise InvalidArgument(f"an image reference is empty; pass {_REFERENCE_KINDS}")
        if len(text) > self._max_reference_chars:
            raise ImageTooLarge(
                f"an image reference of {len(text):,} characters exceeds the "
                f"{self._max_bytes / 2**20:g} MiB image limit"
            )
        if "\x00" in text:
            raise ImageUnsupported(
                f"an image reference contains a NUL byte; pass {_REFERENCE_KINDS}"
            )
        source, data, name = self._fetch_bytes(text)
        if len(data) > self._max_bytes:
            raise ImageTooLarge(f"{name} is {len(data):,} bytes, more than {self._limit_text()}")
        return source, data, name

    def load_all(self, refs: Sequence[str]) -> list[LoadedImage]:
        """Load several references in order.

        Raises:
            M2Error: The first failure, of the same type, its message prefixed with
                the failing position, e.g. ``images[2]: ...``.
        """
        loaded: list[LoadedImage] = []
        for index, ref in enumerate(refs):
            try:
                loaded.append(self.load(ref))
            except M2Error as exc:
                raise type(exc)(f"images[{index}]: {exc.message}") from exc
        return loaded

    def _fetch_bytes(self, text: str) -> tuple[Literal["path", "url", "data"], bytes, str]:
        scheme_match = _SCHEME.match(text)
        if scheme_match is None:
            if _MIME_BASE64.match(text):
                return (
                    "data",
                    self._decode_base64(text.partition(",")[2], "the data URI"),
                    "the data URI",
                )
            if looks_like_base64_image(text):
                return "data", self._decode_base64(text, "the base64 image"), "the base64 image"
            name = _describe(text)
            if len(text) > _MAX_PATH_CHARS:
                raise ImageUnsupported(
                    f"{name} is too long for a file path and is not base64 of a "
                    f"{FORMAT_NAMES} image"
                )
            return "path", self._read_path(text, name), name
        scheme = scheme_match.group(1).lower()
        if scheme == "data":
            return "data", self._data_uri(text), "the data URI"
        name = _describe(text)
        if scheme in ("http", "https"):
            if not self._allow_urls:
                raise UrlNotAllowed(
                    f"{name}: URL fetching is disabled on this server; send the image as "
                    "base64 or a data: URI instead"
                )
            return "url", self._fetcher.fetch(text, name), name
        if scheme == "file":
            return "path", self._files.read(file_uri_path(text, name), name), name
        raise UrlNotAllowed(
            f"{name} uses the unsupported scheme {scheme!r}; pass {_REFERENCE_KINDS} "
            "(prefix a relative file name containing ':' with './')"
        )

    def _read_path(self, text: str, name: str) -> bytes:
        try:
            return self._files.read(text, name)
        except (ImageNotFound, ImageNotAllowed):
            # Why: short base64 of something else is no missing file; say what it is.
            if reads_as_base64(text):
                raise ImageUnsupported(
                    f"{name} reads as base64, but not of a {FORMAT_NAMES} image (nor is it a "
                    "file this server can read)"
                ) from None
            raise

    def _data_uri(self, text: str) -> bytes:
        header, comma, payload = text[len("data:") :].partition(",")
        if not comma:
            raise ImageUnsupported("the data URI has no ',' before its payload")
        params = [p.strip().lower() for p in header.split(";")]
        if "base64" in params:
            return self._decode_base64(payload, "the data URI")
        # Percent-decoding runs a Python-level loop per escape; keep it for small images.
        if len(payload) > _MAX_PERCENT_ENCODED:
            raise ImageTooLarge(
                f"a percent-encoded data URI is limited to {_MAX_PERCENT_ENCODED // 2**20} MiB "
                "of text; encode the image with ;base64 instead"
            )
        return urllib.parse.unquote_to_bytes(payload)

    def _decode_base64(self, text: str, name: str) -> bytes:
        # The decoded size follows from the length, so oversized payloads are refused
        # before any pass over them; counting line breaks is far cheaper than a regex.
        spaces = sum(text.count(c) for c in " \t\r\n")
        if (len(text) - spaces) * 3 // 4 > self._max_bytes + 2:
            raise ImageTooLarge(f"{name} decodes to more than {self._limit_text()}")
        compact = "".join(text.split()).rstrip("=").translate(URLSAFE_TO_STANDARD)
        if len(compact) % 4 == 1:
            raise ImageUnsupported(f"{name} is not valid base64 (truncated)")
        try:
            return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ImageUnsupported(f"{name} is not valid base64") from None

    def _limit_text(self) -> str:
        return f"{self._max_bytes / 2**20:g} MiB, the image size limit"


def _describe(ref: str) -> str:
    """A short, payload-free way for messages to name ``ref``."""
    if len(ref) > 64 and BASE64_TEXT.fullmatch(WHITESPACE.sub("", ref[:4096])):
        return f"the {len(ref):,}-character reference"
    return repr(ref if len(ref) <= 80 else ref[:77] + "...")
