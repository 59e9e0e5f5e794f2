"""Qwen's image pre-resize rule, shared by the native processor and the OpenAI engine.

It imports neither torch nor transformers, so an engine that only sends images to a server
(:mod:`m2_tools.engines.openai_compat`) prepares them exactly as the native engine does.
"""

from __future__ import annotations

import math

from PIL import Image

from m2_tools.errors import InvalidArgument

__all__ = [
    "MAX_ASPECT_RATIO",
    "MAX_PIXELS",
    "MIN_PIXELS",
    "RESIZE_FACTOR",
    "fetch_resize",
    "smart_resize",
]

#: The Qwen pre-resize rule's constants (qwen-vl-utils ``fetch_image``).
RESIZE_FACTOR = 28
MIN_PIXELS = 4 * 28 * 28
MAX_PIXELS = 16384 * 28 * 28
MAX_ASPECT_RATIO = 200


def _round(n: float, factor: int) -> int:
    return round(n / factor) * factor


def smart_resize(
    height: int,
    width: int,
    factor: int = RESIZE_FACTOR,
    min_pixels: int = MIN_PIXELS,
    max_pixels: int = MAX_PIXELS,
) -> tuple[int, int]:
    """Qwen's resize rule: sides divisible by ``factor``, area within bounds, aspect kept.

    Returns:
        ``(height, width)``.

    Raises:
        InvalidArgument: The aspect ratio exceeds 200.
    """
    if min(height, width) <= 0 or max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise InvalidArgument(
            f"image of {width}x{height} pixels: the aspect ratio must be at most {MAX_ASPECT_RATIO}"
        )
    h_bar = max(factor, _round(height, factor))
    w_bar = max(factor, _round(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def fetch_resize(image: Image.Image) -> Image.Image:
    """Convert to RGB and pre-resize with the smart-resize rule (PIL's default bicubic)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent diagrams would turn black-on-black with a plain convert.
        rgba = image.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.split()[3])
    else:
        rgb = image.convert("RGB")
    height, width = smart_resize(rgb.height, rgb.width)
    return rgb.resize((width, height))
