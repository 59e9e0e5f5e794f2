"""M2's prompt and image processing inside vLLM, with no remote code.

Prompt: each image is written ``<image><imagePatch></image>`` (:data:`IMAGE_PLACEHOLDER`), and
its ``<imagePatch>`` becomes N of them, N = t·h·w / merge²: ``<image>`` + N × ``<imagePatch>``
+ ``</image>``, exactly the official expansion, each image in order.

Images: converted to RGB (transparency over white), pre-resized with Qwen's smart-resize rule,
then patched by transformers' PIL-backed ``Qwen2VLImageProcessorPil`` configured from the
checkpoint's ``preprocessor_config.json``. A request's ``mm_processor_kwargs`` may set
``max_pixels`` (only lowering the checkpoint's limit) and ``min_pixels``.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from m2_vllm import alias_pil_image_processor

alias_pil_image_processor()

from PIL import Image  # noqa: E402
from transformers import BatchFeature  # noqa: E402
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (  # noqa: E402
    Qwen2VLImageProcessorPil,
)
from vllm.model_executor.models.qwen2_5_vl import (  # noqa: E402
    Qwen2_5_VLMultiModalProcessor,
    Qwen2_5_VLProcessingInfo,
)
from vllm.model_executor.models.qwen2_vl import Qwen2VLDummyInputsBuilder  # noqa: E402
from vllm.multimodal.processing import (  # noqa: E402
    PromptReplacement,
    PromptUpdate,
)

from m2_vllm.config import M2VllmConfig  # noqa: E402

__all__ = [
    "IMAGE_PLACEHOLDER",
    "M2DummyInputsBuilder",
    "M2ImageProcessor",
    "M2MultiModalProcessor",
    "M2ProcessingInfo",
    "fetch_resize",
    "smart_resize",
]

#: What a prompt carries per image before expansion (the chat placeholder too).
IMAGE_PLACEHOLDER = "<image><imagePatch></image>"
RESIZE_FACTOR = 28
MIN_PIXELS = 4 * 28 * 28
MAX_PIXELS = 16384 * 28 * 28
MAX_ASPECT_RATIO = 200
_PROCESSOR_KEYS = (
    "do_convert_rgb", "do_normalize", "do_rescale", "do_resize", "image_mean", "image_std",
    "rescale_factor", "resample", "patch_size", "temporal_patch_size", "merge_size",
)  # fmt: skip
_REQUEST_KEYS = {"min_pixels", "max_pixels", "size", "do_normalize", "do_rescale"}


def smart_resize(
    height: int,
    width: int,
    factor: int = RESIZE_FACTOR,
    min_pixels: int = MIN_PIXELS,
    max_pixels: int = MAX_PIXELS,
) -> tuple[int, int]:
    """Qwen's resize rule (as m2-tools' native engine applies it): ``(height, width)``.

    Raises:
        ValueError: The aspect ratio exceeds 200.
    """
    if min(height, width) <= 0 or max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"image of {width}x{height} pixels: the aspect ratio must be at most {MAX_ASPECT_RATIO}"
        )
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
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
    """RGB (transparency composited over white), pre-resized with :func:`smart_resize`."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.split()[3])
    else:
        rgb = image.convert("RGB")
    height, width = smart_resize(rgb.height, rgb.width)
    return rgb.resize((width, height))


@functools.lru_cache(maxsize=8)
def _preprocessor_config(model_dir: str) -> dict[str, Any]:
    path = os.path.join(model_dir, "preprocessor_config.json")
    with open(path, encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


class M2ImageProcessor:
    """The processor vLLM calls on a request's images (text is tokenised by vLLM itself).

    Args:
        preprocessor: The checkpoint's ``preprocessor_config.json``.
        server_max_pixels: A server-wide cap (``--mm-processor-kwargs``) below the checkpoint's.
    """

    image_token = IMAGE_PLACEHOLDER

    def __init__(self, preprocessor: Mapping[str, Any], server_max_pixels: int | None = None):
        size = preprocessor.get("size") or {}
        self.min_pixels = int(
            preprocessor.get("min_pixels") or size.get("shortest_edge") or MIN_PIXELS
        )
        own_max = int(preprocessor.get("max_pixels") or size.get("longest_edge") or MAX_PIXELS)
        self.max_pixels = min(own_max, server_max_pixels) if server_max_pixels else own_max
        kwargs = {k: preprocessor[k] for k in _PROCESSOR_KEYS if k in preprocessor}
        self.image_processor = Qwen2VLImageProcessorPil(
            min_pixels=self.min_pixels, max_pixels=self.max_pixels, **kwargs
        )

    def limits(self, min_pixels: int | None, max_pixels: int | None) -> tuple[int, int]:
        """A request's (min, max) pixels per image: its max only lowers the server's."""
        cap = self.max_pixels if max_pixels is None else min(self.max_pixels, int(max_pixels))
        floor = self.min_pixels if min_pixels is None else int(min_pixels)
        return min(floor, cap), cap

    def __call__(
        self,
        images: Sequence[Image.Image] | Image.Image | None = None,
        *,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        size: Mapping[str, int] | None = None,
        do_normalize: bool | None = None,
        do_rescale: bool | None = None,
        return_tensors: str = "pt",
        **_ignored: Any,
    ) -> BatchFeature:
        """Patch ``images``: ``pixel_values`` [Σ t·h·w, C·T·P·P] and ``image_grid_thw``."""
        if images is None:
            return BatchFeature({})
        items = [images] if isinstance(images, Image.Image) else list(images)
        size = size or {}
        floor, cap = self.limits(
            min_pixels if min_pixels is not None else size.get("shortest_edge"),
            max_pixels if max_pixels is not None else size.get("longest_edge"),
        )
        flags = {
            k: v
            for k, v in (("do_normalize", do_normalize), ("do_rescale", do_rescale))
            if v is not None
        }
        out = self.image_processor(
            images=[fetch_resize(image) for image in items],
            size={"shortest_edge": floor, "longest_edge": cap},
            return_tensors=return_tensors,
            **flags,
        )
        return BatchFeature(
            {"pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}
        )


class M2ProcessingInfo(Qwen2_5_VLProcessingInfo):
    """What vLLM needs to know about M2's processing: config, processor, limits."""

    def get_hf_config(self) -> M2VllmConfig:
        """The M2 config (a Qwen2.5-VL config)."""
        return self.ctx.get_hf_config(M2VllmConfig)

    def get_hf_processor(self, **kwargs: object) -> M2ImageProcessor:  # type: ignore[override]
        """The image processor, from the checkpoint's own ``preprocessor_config.json``."""
        merged = self.ctx.get_mm_config().mm_processor_kwargs or {}
        server_max = merged.get("max_pixels")
        return _processor(self.ctx.model_config.model, server_max)

    def get_image_processor(self, **kwargs: object) -> Qwen2VLImageProcessorPil:
        """The transformers image processor behind :class:`M2ImageProcessor`."""
        return self.get_hf_processor(**kwargs).image_processor

    def get_supported_mm_processor_kwargs(self) -> dict[str, set[str]]:
        """M2's processor is not a ``ProcessorMixin``, so its kwargs are declared here."""
        return {"text_kwargs": set(), "images_kwargs": set(_REQUEST_KEYS)}

    def get_supported_mm_limits(self) -> Mapping[str, int | None]:
        """Images only: M2 takes video as sampled frames, which callers send as images."""
        return {"image": None}

    def get_mm_max_tokens_per_item(
        self, seq_len: int, mm_counts: Mapping[str, int]
    ) -> Mapping[str, int]:
        """The largest image's token count, for vLLM's memory profiling."""
        return {"image": self.get_max_image_tokens()}


@functools.lru_cache(maxsize=8)
def _processor(model_dir: str, server_max_pixels: int | None) -> M2ImageProcessor:
    return M2ImageProcessor(_preprocessor_config(model_dir), server_max_pixels)


class M2DummyInputsBuilder(Qwen2VLDummyInputsBuilder):
    """Profiling inputs: placeholders and the largest images."""

    def get_dummy_text(self, mm_counts: Mapping[str, int]) -> str:
        """One placeholder per image."""
        return IMAGE_PLACEHOLDER * mm_counts.get("image", 0)

    def get_dummy_mm_data(
        self, seq_len: int, mm_counts: Mapping[str, int], mm_options: Any
    ) -> dict[str, Any]:
        """The largest images the processor keeps at full size."""
        width, height = self.info.get_image_size_with_most_features()
        return {
            "image": self._get_dummy_images(
                width=width,
                height=height,
                num_images=mm_counts.get("image", 0),
                overrides=mm_options.get("image") if mm_options else None,
            )
        }


class M2MultiModalProcessor(Qwen2_5_VLMultiModalProcessor):
    """Expands each image's ``<imagePatch>`` to the image's token count, in order."""

    def _get_mm_fields_config(self, hf_inputs: BatchFeature, hf_processor_mm_kwargs: Any) -> Any:
        fields = dict(super()._get_mm_fields_config(hf_inputs, hf_processor_mm_kwargs))
        return {k: v for k, v in fields.items() if k in ("pixel_values", "image_grid_thw")}

    def _get_prompt_updates(
        self, mm_items: Any, hf_processor_mm_kwargs: Mapping[str, Any], out_mm_kwargs: Any
    ) -> Sequence[PromptUpdate]:
        config = self.info.get_hf_config()
        patch = config.image_token_id
        merge = config.vision_config.spatial_merge_size**2

        def expansion(item_idx: int) -> list[int]:
            grid = out_mm_kwargs["image"][item_idx]["image_grid_thw"].data
            return [patch] * (int(grid.prod()) // merge)

        # Why only <imagePatch>: vLLM places an image's positions from the start of its
        # replacement, so <image> and </image> must stay outside it, as text tokens.
        return [PromptReplacement(modality="image", target=[patch], replacement=expansion)]
