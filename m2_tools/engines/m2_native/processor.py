"""Prompt and image preparation, byte for byte as the official M2 processor does it.

Prompt (``official`` style)::

    <|im_start|>system\\n{system}<|im_end|>\\n
    <|im_start|>user\\n<image>…<image>{user_text}<|im_end|>\\n
    <|im_start|>assistant<|im_end|>\\n

Each ``<image>`` becomes ``<image>`` + N × ``<imagePatch>`` + ``</image>`` with
N = t·h·w / merge² from that image's own grid (the official code gets several
images wrong; this one expands each in order). Images are smart-resized to a
multiple of 28 first, then patched by transformers' ``Qwen2VLImageProcessorPil``
configured from the checkpoint's ``preprocessor_config.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image
from tokenizers import Tokenizer
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from m2_tools.engines.m2_native.config import M2Config
from m2_tools.engines.m2_native.modeling import rope_positions
from m2_tools.engines.m2_native.resize import (
    MAX_ASPECT_RATIO,
    MAX_PIXELS,
    MIN_PIXELS,
    fetch_resize,
    smart_resize,
)
from m2_tools.errors import InvalidArgument, ModelUnavailable

__all__ = [
    "MAX_ASPECT_RATIO",
    "M2Processor",
    "PreparedPrompt",
    "PromptStyle",
    "fetch_resize",
    "smart_resize",
]

PromptStyle = Literal["official", "chatml"]

_GENERATION_PROMPT: dict[str, str] = {
    "official": "<|im_start|>assistant<|im_end|>\n",
    "chatml": "<|im_start|>assistant\n",
}
_PROCESSOR_KEYS = (
    "do_convert_rgb", "do_normalize", "do_rescale", "do_resize", "image_mean", "image_std",
    "rescale_factor", "resample", "patch_size", "temporal_patch_size", "merge_size",
)  # fmt: skip


@dataclass(frozen=True)
class PreparedPrompt:
    """One request turned into model inputs.

    Attributes:
        input_ids: The prompt after ``<imagePatch>`` expansion, unpadded.
        position_ids: ``[3, L]`` rotary positions.
        rope_delta: Next position minus ``L``: decoding continues from ``L + rope_delta``.
        pixel_values: ``[Σ t·h·w, 1176]`` patches, or None without images.
        image_grid_thw: ``[n_images, 3]``, or None without images.
        image_sizes: Per image, the (width, height) the vision tower saw.
        image_tokens: Prompt tokens standing for images (``<imagePatch>`` count).
    """

    input_ids: list[int]
    position_ids: torch.Tensor
    rope_delta: int
    pixel_values: torch.Tensor | None
    image_grid_thw: torch.Tensor | None
    image_sizes: tuple[tuple[int, int], ...]
    image_tokens: int = 0


class M2Processor:
    """Builds model inputs for M2 from a system text, images and a user text.

    Args:
        checkpoint_dir: Holds ``tokenizer.json`` and ``preprocessor_config.json``.
        config: The parsed checkpoint config (token ids, merge size, rope mode).
        prompt_style: ``official`` (default) or ``chatml``.
        max_pixels: Server cap per image; it only lowers the checkpoint's own.
        max_total_pixels: Budget shared by all images of one prompt.

    Raises:
        ModelUnavailable: The tokenizer or preprocessor files are missing or
            disagree with the config's token ids.
    """

    def __init__(
        self,
        checkpoint_dir: str | Path,
        config: M2Config,
        *,
        prompt_style: PromptStyle = "official",
        max_pixels: int | None = None,
        max_total_pixels: int = 32 * 401_408,
    ) -> None:
        root = Path(checkpoint_dir)
        self.config = config
        self.prompt_style = prompt_style
        self.max_total_pixels = max_total_pixels
        try:
            self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
            pre = json.loads((root / "preprocessor_config.json").read_text(encoding="utf-8"))
        except Exception as exc:
            raise ModelUnavailable(f"cannot read the tokenizer or image processor: {exc}") from None
        size = pre.get("size") or {}
        self.min_pixels = int(pre.get("min_pixels") or size.get("shortest_edge") or MIN_PIXELS)
        own_max = int(pre.get("max_pixels") or size.get("longest_edge") or MAX_PIXELS)
        self.max_pixels = min(own_max, max_pixels) if max_pixels else own_max
        kwargs: dict[str, Any] = {k: pre[k] for k in _PROCESSOR_KEYS if k in pre}
        self.image_processor = Qwen2VLImageProcessorPil(
            min_pixels=self.min_pixels, max_pixels=self.max_pixels, **kwargs
        )
        self.image_end_id = self._token_id("</image>")
        self.pad_id = self._token_id("<|endoftext|>")
        self.stop_ids = (self._token_id("<|im_end|>"), self.pad_id)
        self._check_token("<imagePatch>", config.tokens.image_patch)
        self._check_token("<image>", config.tokens.image_start)
        if config.tokens.video_start is not None:
            self._check_token("<video>", config.tokens.video_start)

    def prompt_text(self, system_prompt: str, user_text: str, n_images: int) -> str:
        """The prompt before image expansion, exactly as the official processor writes it."""
        return self._head(system_prompt) + "<image>" * n_images + self._tail(user_text)

    def prepare(
        self,
        system_prompt: str,
        user_text: str,
        images: Sequence[Image.Image] = (),
        max_pixels: int | None = None,
    ) -> PreparedPrompt:
        """Tokenise one prompt and patch its images.

        Args:
            system_prompt: The system message text.
            user_text: The user turn's text, placed after the images.
            images: Images in prompt order.
            max_pixels: A per-request cap per image; it never raises the server's.

        Raises:
            InvalidArgument: An image's aspect ratio exceeds 200, or the text
                contains the ``<imagePatch>`` token.
        """
        pixel_values = grid = None
        sizes: tuple[tuple[int, int], ...] = ()
        counts: list[int] = []
        if images:
            pixel_values, grid = self._patch_images(images, max_pixels)
            patch = self.config.vision.patch_size
            sizes = tuple((int(w) * patch, int(h) * patch) for _, h, w in grid.tolist())
            merge = self.config.vision.spatial_merge_size**2
            counts = [int(n) // merge for n in grid.prod(-1).tolist()]
        head, tail = self._head(system_prompt), self._tail(user_text)
        if not counts:
            ids = self._encode(head + tail)
        else:
            ids = self._encode(head)
            tokens = self.config.tokens
            for n in counts:
                ids += [tokens.image_start, *([tokens.image_patch] * n), self.image_end_id]
            ids += self._encode(tail)
        grids = [tuple(g) for g in grid.tolist()] if grid is not None else []
        positions, delta = rope_positions(
            ids,
            grids,
            image_token_id=self.config.tokens.image_patch,
            spatial_merge_size=self.config.vision.spatial_merge_size,
            mode=self.config.rope_mode,
        )
        return PreparedPrompt(ids, positions, delta, pixel_values, grid, sizes, sum(counts))

    def decode(self, ids: Sequence[int]) -> str:
        """Token ids to text, special tokens kept."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def per_image_max_pixels(self, n_images: int, request_max: int | None = None) -> int:
        """The pixel cap for each of ``n_images`` images of one prompt."""
        cap = min(self.max_pixels, self.max_total_pixels // max(n_images, 1))
        if request_max is not None:
            cap = min(cap, request_max)
        return max(cap, self.min_pixels)

    def _patch_images(
        self, images: Sequence[Image.Image], request_max: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cap = self.per_image_max_pixels(len(images), request_max)
        resized = [fetch_resize(image) for image in images]
        out = self.image_processor(
            images=resized,
            size={"shortest_edge": self.min_pixels, "longest_edge": cap},
            return_tensors="pt",
        )
        return out["pixel_values"], out["image_grid_thw"]

    def _head(self, system_prompt: str) -> str:
        return f"<|im_start|>system\n{system_prompt}<|im_end|>\n<|im_start|>user\n"

    def _tail(self, user_text: str) -> str:
        return f"{user_text}<|im_end|>\n{_GENERATION_PROMPT[self.prompt_style]}"

    def _encode(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False).ids
        patch_ids = {self.config.tokens.image_patch, self.config.tokens.video_patch}
        if patch_ids.intersection(ids):
            raise InvalidArgument("the prompt text must not contain the <imagePatch> token")
        return ids

    def _token_id(self, token: str) -> int:
        found = self.tokenizer.token_to_id(token)
        if found is None:
            raise ModelUnavailable(f"the tokenizer has no {token} token")
        return int(found)

    def _check_token(self, token: str, expected: int) -> None:
        found = self._token_id(token)
        if found != expected:
            raise ModelUnavailable(
                f"config.json says {token} is token {expected}, but the tokenizer has it as {found}"
            )
