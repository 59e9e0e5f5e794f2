"""Random M2 models straight in memory, and prompts for them: no checkpoint on disk.

:func:`build_random_model` allocates :class:`M2Model` at any
:mod:`~m2_tools.engines.m2_native.tiny.spec` size on any device and fills it like a
generated checkpoint; :func:`synthetic_prompt` makes a tool-call-shaped prompt for it
without a tokenizer. Benchmarks and shape tests use them where the 7B shapes would
take minutes to write and read back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from m2_tools.engines.m2_native.tiny.spec import build_config, build_spec
from m2_tools.engines.m2_native.tiny.tokenizer import (
    M2_ADDED_TOKENS,
    QWEN_SPECIAL_TOKENS,
    official_token_ids,
)
from m2_tools.engines.m2_native.tiny.weights import init_random_weights_

if TYPE_CHECKING:
    from m2_tools.engines.m2_native.config import M2Config
    from m2_tools.engines.m2_native.modeling import M2Model
    from m2_tools.engines.m2_native.processor import PreparedPrompt

__all__ = ["build_random_model", "synthetic_prompt"]


def build_random_model(
    preset: str = "7b-shapes",
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    init_std: float = 0.02,
    attn_implementation: str = "sdpa",
    **overrides: Any,
) -> M2Model:
    """Build :class:`M2Model` with random weights straight on ``device``: no checkpoint on disk.

    The 7B shapes take about 16.6 GB in bfloat16 this way. Token ids are the
    official ones when the vocabulary holds them, else its last ids.

    Args:
        preset: A :data:`~m2_tools.engines.m2_native.tiny.spec.PRESETS` name;
            ``overrides`` change its sizes.
        device: Where the parameters are allocated.
        dtype: Parameter dtype.
        seed: Seed of the random weights.
        init_std: Standard deviation of the random weights.
        attn_implementation: ``sdpa``, ``eager`` or ``flash_attention_2``.
        **overrides: :class:`~m2_tools.engines.m2_native.tiny.spec.TinyModelSpec` fields.

    Returns:
        The model in eval mode, without gradients.
    """
    # Imported here: modeling loads transformers, which make-tiny-model (re-exporting
    # this module) never needs.
    from m2_tools.engines.m2_native.config import parse_config
    from m2_tools.engines.m2_native.modeling import M2Model

    spec = build_spec(preset, **overrides)
    vocab = spec.vocab_size or 576
    specials = [*QWEN_SPECIAL_TOKENS, *M2_ADDED_TOKENS]
    ids = official_token_ids()
    if vocab <= max(ids.values()):
        ids = {token: vocab - len(specials) + i for i, token in enumerate(specials)}
    config = parse_config(build_config(spec, ids, vocab, str(dtype).removeprefix("torch.")))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # allocate in the target dtype: no float32 copy on the way
    try:
        with torch.device(device):
            model = M2Model(config, attn_implementation)
    finally:
        torch.set_default_dtype(previous)
    init_random_weights_(model, std=init_std, seed=seed)
    return model.eval().requires_grad_(False)


def synthetic_prompt(
    config: M2Config,
    *,
    image_size: tuple[int, int] | None = (800, 600),
    question_tokens: int = 100,
    system_tokens: int = 64,
    seed: int = 0,
) -> PreparedPrompt:
    """A prompt shaped like a tool call, without a tokenizer: text, one image, question.

    Text ids are random ordinary tokens; the image is random patches of the grid
    a ``width × height`` picture gets after the smart resize.

    Args:
        config: The model config (token ids, vision sizes, rope mode).
        image_size: ``(width, height)`` of the image, or None for a text-only prompt.
        question_tokens: Text tokens after the image.
        system_tokens: Text tokens before the image.
        seed: Seed of the random ids and pixels.

    Returns:
        The prompt, as :class:`~m2_tools.engines.m2_native.processor.M2Processor` would
        prepare it.
    """
    # Imported here, like in build_random_model: both load transformers.
    from m2_tools.engines.m2_native.modeling import rope_positions
    from m2_tools.engines.m2_native.processor import PreparedPrompt, smart_resize

    generator = torch.Generator().manual_seed(seed)
    tokens, vision = config.tokens, config.vision
    # Ids below the special-token block (35 ids below <imagePatch> in the official vocabulary).
    text_high = max(2, tokens.image_patch - 35)

    def text(n: int) -> list[int]:
        return torch.randint(0, text_high, (n,), generator=generator).tolist()

    ids = text(system_tokens)
    pixels = grid = None
    sizes: tuple[tuple[int, int], ...] = ()
    count = 0
    if image_size is not None:
        height, width = smart_resize(image_size[1], image_size[0])
        gh, gw = height // vision.patch_size, width // vision.patch_size
        patch = vision.in_channels * vision.temporal_patch_size * vision.patch_size**2
        pixels = torch.randn((gh * gw, patch), generator=generator)
        grid = torch.tensor([[1, gh, gw]])
        count = gh * gw // vision.spatial_merge_size**2
        # </image> follows <image> in the official token order.
        ids += [tokens.image_start, *[tokens.image_patch] * count, tokens.image_start + 1]
        sizes = ((width, height),)
    ids += text(question_tokens)
    positions, delta = rope_positions(
        ids,
        [(1, int(grid[0, 1]), int(grid[0, 2]))] if grid is not None else [],
        image_token_id=tokens.image_patch,
        spatial_merge_size=vision.spatial_merge_size,
        mode=config.rope_mode,
    )
    return PreparedPrompt(ids, positions, delta, pixels, grid, sizes, count)
