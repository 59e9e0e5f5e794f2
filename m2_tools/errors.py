"""The one error tree of m2-tools.

Every failure a caller can see is an :class:`M2Error` carrying the contract
``code`` and whether a retry may succeed (``retryable``). Adapters translate it:
the MCP server into an error result, LangChain into a ``ToolException``; both
carry :meth:`M2Error.to_json`.

::

    M2Error
    ├── InvalidArgument        invalid_argument      not retryable
    ├── ImageError
    │   ├── ImageNotFound      image_not_found       not retryable
    │   ├── ImageNotAllowed    image_not_allowed     not retryable
    │   ├── ImageUnsupported   image_unsupported     not retryable
    │   ├── ImageTooLarge      image_too_large       not retryable
    │   ├── UrlNotAllowed      url_not_allowed       not retryable
    │   └── UrlFetchFailed     url_fetch_failed      retryable
    ├── ModelLoading           model_loading         retryable
    ├── ModelUnavailable       model_unavailable     not retryable
    ├── Busy                   busy                  retryable
    ├── RequestTimeout         timeout               retryable
    ├── Cancelled              cancelled             not retryable
    └── InternalError          internal              not retryable

Messages tell the caller what to change. They never carry file contents,
secrets or stack traces.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "Busy",
    "Cancelled",
    "ImageError",
    "ImageNotAllowed",
    "ImageNotFound",
    "ImageTooLarge",
    "ImageUnsupported",
    "InternalError",
    "InvalidArgument",
    "M2Error",
    "ModelLoading",
    "ModelUnavailable",
    "RequestTimeout",
    "UrlFetchFailed",
    "UrlNotAllowed",
    "error_from_payload",
]


class M2Error(Exception):
    """Base of every error a tool call can end in.

    Attributes:
        code: The contract error code.
        retryable: Whether the same call may succeed later.
        message: A caller-facing explanation of what to change.
    """

    code: ClassVar[str] = "internal"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """Return the contract error payload ``{"error": {...}}``."""
        return {"error": {"code": self.code, "message": self.message, "retryable": self.retryable}}

    def to_json(self) -> str:
        """Return :meth:`to_dict` as compact JSON text."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidArgument(M2Error):
    """A tool argument is missing, malformed or out of range."""

    code = "invalid_argument"

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> InvalidArgument:
        """Summarise schema errors by field, never echoing the (possibly huge) input."""
        parts = []
        for error in exc.errors(include_url=False, include_input=False)[:5]:
            where = ".".join(str(part) for part in error["loc"]) or "arguments"
            parts.append(f"{where}: {error['msg']}")
        detail = "; ".join(parts) or "the arguments do not match the tool's schema"
        return cls(f"invalid arguments: {detail}")


class ImageError(M2Error):
    """Base of the errors about one image reference."""

    code = "image_unsupported"


class ImageNotFound(ImageError):
    """A path or ``file://`` reference names no readable file."""

    code = "image_not_found"


class ImageNotAllowed(ImageError):
    """A path lies outside the allowed directories, or local files are off."""

    code = "image_not_allowed"


class ImageUnsupported(ImageError):
    """Not a supported image: unknown format, undecodable bytes or an aspect ratio above 200."""

    code = "image_unsupported"


class ImageTooLarge(ImageError):
    """The image exceeds the byte or decoded-pixel limits."""

    code = "image_too_large"


class UrlNotAllowed(ImageError):
    """URL fetching is off, or the URL points to a non-public address or scheme."""

    code = "url_not_allowed"


class UrlFetchFailed(ImageError):
    """A permitted URL could not be fetched (network error, HTTP error, time-out)."""

    code = "url_fetch_failed"
    retryable = True


class ModelLoading(M2Error):
    """The model is still loading; retry shortly."""

    code = "model_loading"
    retryable = True


class ModelUnavailable(M2Error):
    """The model cannot be loaded; the message says why."""

    code = "model_unavailable"


class Busy(M2Error):
    """The request queue is full; retry shortly."""

    code = "busy"
    retryable = True


class RequestTimeout(M2Error):
    """The request did not finish within its time limit."""

    code = "timeout"
    retryable = True


class Cancelled(M2Error):
    """The request was cancelled by its caller."""

    code = "cancelled"


class InternalError(M2Error):
    """An unexpected failure; details are logged on the server, not returned."""

    code = "internal"


_BY_CODE: dict[str, type[M2Error]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        ImageNotFound,
        ImageNotAllowed,
        ImageUnsupported,
        ImageTooLarge,
        UrlNotAllowed,
        UrlFetchFailed,
        ModelLoading,
        ModelUnavailable,
        Busy,
        RequestTimeout,
        Cancelled,
        InternalError,
    )
}


def error_from_payload(payload: dict[str, Any]) -> M2Error:
    """Rebuild an :class:`M2Error` from a contract payload ``{"error": {...}}``.

    Unknown codes become :class:`InternalError`.
    """
    body = payload.get("error", {}) if isinstance(payload, dict) else {}
    cls = _BY_CODE.get(str(body.get("code")), InternalError)
    return cls(str(body.get("message", "")))
