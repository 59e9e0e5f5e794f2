"""Bytes to a validated RGB image: format sniffing, size limits, EXIF, pixel modes.

The format is read from the content only (``Image.open`` on a byte buffer with the
allowed ``formats``), never from a name. Pixel limits are checked on the header
size before any pixel is decoded; Pillow's own decompression-bomb check still runs
inside ``Image.open`` for headers beyond its global limit, and its warning is
turned into an error *locally* (see :func:`decode_image`), so the process-wide
``Image.MAX_IMAGE_PIXELS`` is never touched. Because ``warnings.catch_warnings``
swaps process-global state, decodes are serialised by a lock; the pixel cap keeps
each one short.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import warnings
from typing import cast

from PIL import Image, ImageOps, UnidentifiedImageError

from m2_tools.errors import ImageError, ImageTooLarge, ImageUnsupported

__all__ = ["FORMATS", "FORMAT_NAMES", "decode_image", "has_image_magic"]

logger = logging.getLogger(__name__)

#: Pillow format names accepted, in the order they are tried.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
#: The same, as messages name them.
FORMAT_NAMES = "PNG, JPEG, WebP, GIF, BMP or TIFF"

_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
    b"MM\x00+",
)
# "BM" alone is too weak a signature for telling base64 from a file name, so the
# DIB header length that follows it must be one of the real ones too.
_BMP_INFO_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WHITE = (255, 255, 255, 255)

# warnings.catch_warnings swaps process-global state; serialising our own use of it
# keeps two intake threads from restoring each other's filters out of order.
_WARNINGS_GUARD = threading.Lock()


def has_image_magic(prefix: bytes) -> bool:
    """Return whether ``prefix`` starts like a file of one of the accepted formats."""
    if prefix.startswith(_SIGNATURES):
        return True
    if prefix[:4] == b"RIFF" and prefix[8:12] == b"WEBP":
        return True
    return (
        prefix[:2] == b"BM"
        and len(prefix) >= 18
        and int.from_bytes(prefix[14:18], "little") in _BMP_INFO_SIZES
    )


def decode_image(
    data: bytes, *, name: str, max_pixels: int, max_aspect_ratio: float
) -> Image.Image:
    """Decode ``data`` into an upright ``RGB`` image.

    Args:
        data: The image file's bytes.
        name: How error messages refer to the image (never the bytes themselves).
        max_pixels: Largest ``width * height`` accepted, checked before decoding.
        max_aspect_ratio: Largest ``long side / short side`` accepted.

    Returns:
        A new ``RGB`` image (first frame, EXIF orientation applied, transparency
        composited on white), independent of ``data``.

    Raises:
        ImageUnsupported: Not an accepted format, undecodable, or extreme aspect ratio.
        ImageTooLarge: More pixels than ``max_pixels``.
    """
    with _WARNINGS_GUARD, warnings.catch_warnings(record=True) as caught:
        # Pillow warns about odd metadata in hostile files; those are logged, not
        # surfaced, while its decompression-bomb warning must stop the decode.
        warnings.simplefilter("always")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _decode(data, name, max_pixels, max_aspect_ratio)
        finally:
            for record in caught:
                logger.debug("Pillow warned while decoding %s: %s", name, record.message)


def _decode(data: bytes, name: str, max_pixels: int, max_aspect_ratio: float) -> Image.Image:
    too_large = ImageTooLarge(f"{name} is larger than the {max_pixels / 1e6:g}-megapixel limit")
    undecodable = ImageUnsupported(f"{name} could not be decoded (corrupt or truncated image)")
    try:
        opened = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_large from None
    except UnidentifiedImageError:
        raise ImageUnsupported(f"{name} is not a {FORMAT_NAMES} image") from None
    except Exception as exc:  # hostile headers make Pillow raise almost anything
        logger.debug("cannot open %s: %s: %s", name, type(exc).__name__, exc)
        raise undecodable from None
    with opened:
        _check_geometry(opened.size, name, max_pixels, max_aspect_ratio)
        try:
            opened.load()
            upright = _apply_orientation(opened, name)
            return _to_rgb(upright, name)
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise too_large from None
        except Exception as exc:
            logger.debug("cannot decode %s: %s: %s", name, type(exc).__name__, exc)
            raise undecodable from None


def _check_geometry(
    size: tuple[int, int], name: str, max_pixels: int, max_aspect_ratio: float
) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageUnsupported(f"{name} has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{name} is {width}×{height} ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {max_pixels / 1e6:g} megapixels"
        )
    ratio = max(width, height) / min(width, height)
    if ratio > max_aspect_ratio:
        # The model's resize rule cannot represent such strips, so this is a format
        # limit rather than a size limit.
        raise ImageUnsupported(
            f"{name} has aspect ratio {ratio:.4g}:1 ({width}×{height}), which exceeds "
            f"{max_aspect_ratio:g}:1; crop or pad it"
        )


def _apply_orientation(image: Image.Image, name: str) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception as exc:
        # A broken EXIF block should not cost the caller a readable picture.
        logger.debug("ignoring unreadable EXIF orientation of %s: %s", name, exc)
        return image.copy()


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    if image.mode.startswith("I;16"):
        image = _to_8bit(image.convert("I"), name, sixteen_bit=True)
    elif image.mode in ("I", "F"):
        image = _to_8bit(image, name, sixteen_bit=False)
    if image.mode == "RGB":
        return image
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError:
        raise ImageUnsupported(
            f"{name} uses pixel mode {image.mode}, which is not supported"
        ) from None


def _to_8bit(image: Image.Image, name: str, *, sixteen_bit: bool) -> Image.Image:
    """Map a 16/32-bit integer or float single-channel image onto 0..255 (``L``).

    Known 16-bit data is scaled by 255/65535. Otherwise the range is guessed from
    the extrema: floats in 0..1, integers in 0..255 or 0..65535, else min-max
    stretched. Converting directly would clip everything above 255 to white.
    """
    low, high = cast("tuple[float, float]", image.getextrema())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ImageUnsupported(f"{name} has non-finite pixel values")
    if sixteen_bit or (low >= 0 and 255 < high <= 65535 and image.mode == "I"):
        scale, offset = 255 / 65535, 0.0
    elif image.mode == "F" and low >= 0 and high <= 1:
        scale, offset = 255.0, 0.0
    elif low >= 0 and high <= 255:
        scale, offset = 1.0, 0.0
    else:
        scale = 255 / (high - low) if high > low else 0.0
        offset = -low * scale
    # Pillow truncates when it stores I/F values; the extra half rounds to nearest.
    return image.point(lambda value: value * scale + offset + 0.5).convert("L")
