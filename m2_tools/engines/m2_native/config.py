"""Typed view of an M2 checkpoint's ``config.json`` (``model_type`` ``bailing_qwen2_5``).

transformers does not know this model type and the config has no ``auto_map``, so
the sizes are read here, by hand, into small frozen dataclasses. Nothing is ever
executed from the checkpoint. Every size the model needs comes from the file;
the only defaults are those of the published Qwen2.5-VL architecture for fields
that older exports omit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from m2_tools.errors import ModelUnavailable

__all__ = [
    "MODEL_TYPE",
    "M2Config",
    "RopeMode",
    "SpecialTokenIds",
    "TextConfig",
    "VisionConfig",
    "load_config",
    "parse_config",
]

MODEL_TYPE = "bailing_qwen2_5"

#: ``m_rope``: 3-D multimodal rotary positions; ``1d``: plain positions on all three axes.
RopeMode = Literal["m_rope", "1d"]


@dataclass(frozen=True)
class VisionConfig:
    """Sizes of the Qwen2.5-VL vision tower (merger included)."""

    depth: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    out_hidden_size: int
    in_channels: int = 3
    patch_size: int = 14
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    window_size: int = 112
    tokens_per_second: int = 2
    fullatt_block_indexes: tuple[int, ...] = (7, 15, 23, 31)
    hidden_act: str = "silu"


@dataclass(frozen=True)
class TextConfig:
    """Sizes of the Qwen2.5 decoder.

    ``mrope_section`` splits the rotary frequencies over the (temporal, row, column)
    axes in ``m_rope`` mode; in ``1d`` mode it is None: the three axes carry the same
    positions, so there is nothing to split.
    """

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int
    mrope_section: tuple[int, ...] | None
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    hidden_act: str = "silu"
    use_sliding_window: bool = False
    sliding_window: int | None = None
    max_window_layers: int = 28
    tie_word_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads


@dataclass(frozen=True)
class SpecialTokenIds:
    """The multimodal token ids the model reads from ``llm_config``."""

    image_patch: int
    image_start: int
    video_patch: int | None = None
    video_start: int | None = None


@dataclass(frozen=True)
class M2Config:
    """Everything the native engine needs from ``config.json``.

    Attributes:
        vision: The vision tower's sizes.
        text: The decoder's sizes.
        tokens: Multimodal token ids from ``llm_config``.
        rope_mode: ``m_rope`` (3-D positions) or ``1d``.
        projector_depth: Linear layers in ``linear_proj`` (``mlp_depths``).
        torch_dtype: The dtype the checkpoint declares, if any.
    """

    vision: VisionConfig
    text: TextConfig
    tokens: SpecialTokenIds
    rope_mode: RopeMode
    projector_depth: int = 2
    torch_dtype: str | None = None


def load_config(checkpoint_dir: str | Path) -> M2Config:
    """Read and parse ``config.json`` from a checkpoint directory.

    Raises:
        ModelUnavailable: The file is missing, not JSON, or not an M2 config.
    """
    path = Path(checkpoint_dir) / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelUnavailable(f"{path} is missing: not a model checkpoint directory") from None
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"{path} could not be read as JSON: {exc}") from None
    return parse_config(raw, source=str(path))


def parse_config(raw: Any, source: str = "config.json") -> M2Config:
    """Parse the raw ``config.json`` mapping of an M2 checkpoint.

    Args:
        raw: The decoded JSON.
        source: Where it came from, for error messages.

    Raises:
        ModelUnavailable: A field is missing or malformed, the model type is not
            ``bailing_qwen2_5``, or ``use_llm_3drope`` has an unknown value.
    """
    if not isinstance(raw, dict):
        raise ModelUnavailable(f"{source}: expected a JSON object")
    model_type = raw.get("model_type")
    if model_type != MODEL_TYPE:
        raise ModelUnavailable(
            f"{source}: model_type is {model_type!r}, expected {MODEL_TYPE!r} (M2-Reasoning)"
        )
    llm = _section(raw, "llm_config", source)
    vis = _section(raw, "vision_config", source)
    rope_mode = _rope_mode(llm.get("use_llm_3drope"), source)
    try:
        text = _parse_text(llm, rope_mode, source)
        vision = _parse_vision(vis)
        tokens = SpecialTokenIds(
            image_patch=int(llm["image_patch_token"]),
            image_start=int(llm["image_start_token"]),
            video_patch=_optional_int(llm.get("video_patch_token")),
            video_start=_optional_int(llm.get("video_start_token")),
        )
        projector_depth = int(raw.get("mlp_depths", 2))
    except KeyError as exc:
        raise ModelUnavailable(f"{source}: required field {exc.args[0]!r} is missing") from None
    except (TypeError, ValueError) as exc:
        raise ModelUnavailable(f"{source}: malformed field: {exc}") from None
    if projector_depth < 1:
        raise ModelUnavailable(f"{source}: mlp_depths must be at least 1, not {projector_depth}")
    head_half = text.head_dim // 2
    if text.mrope_section is not None and sum(text.mrope_section) != head_half:
        raise ModelUnavailable(
            f"{source}: rope_scaling.mrope_section {list(text.mrope_section)} must sum to "
            f"head_dim/2 = {head_half}"
        )
    dtype = raw.get("torch_dtype") or llm.get("torch_dtype")
    return M2Config(
        vision=vision,
        text=text,
        tokens=tokens,
        rope_mode=rope_mode,
        projector_depth=projector_depth,
        torch_dtype=str(dtype) if dtype else None,
    )


def _section(raw: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    value = raw.get(name)
    if not isinstance(value, dict):
        raise ModelUnavailable(f"{source}: {name} is missing or not an object")
    return value


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _rope_mode(value: Any, source: str) -> RopeMode:
    # The published code compares against the string "m_rope"; False turns it off.
    # Anything else (True, a missing key, another scheme) has no known meaning.
    if value == "m_rope":
        return "m_rope"
    if value is False:
        return "1d"
    raise ModelUnavailable(
        f"{source}: llm_config.use_llm_3drope is {value!r}; this engine supports "
        "'m_rope' (3-D positions) and false (1-D positions)"
    )


def _mrope_section(llm: dict[str, Any], mode: RopeMode, source: str) -> tuple[int, ...] | None:
    """The section of ``rope_scaling``: required for ``m_rope``, unused in ``1d`` mode.

    There is no default: the published (16, 24, 24) fits only the 7B's head size.
    """
    if mode == "1d":
        return None
    rope_scaling = llm.get("rope_scaling")
    section = rope_scaling.get("mrope_section") if isinstance(rope_scaling, dict) else None
    if section is None:
        raise ModelUnavailable(
            f"{source}: llm_config.use_llm_3drope is 'm_rope' but rope_scaling.mrope_section "
            "is missing; 3-D positions need it (its parts sum to head_dim/2)"
        )
    return tuple(int(part) for part in section)


def _parse_text(llm: dict[str, Any], mode: RopeMode, source: str) -> TextConfig:
    hidden = int(llm["hidden_size"])
    heads = int(llm["num_attention_heads"])
    if heads <= 0 or hidden % heads:
        raise ValueError(f"hidden_size {hidden} is not divisible by num_attention_heads {heads}")
    section = _mrope_section(llm, mode, source)
    use_sliding = bool(llm.get("use_sliding_window", False))
    return TextConfig(
        vocab_size=int(llm["vocab_size"]),
        hidden_size=hidden,
        intermediate_size=int(llm["intermediate_size"]),
        num_hidden_layers=int(llm["num_hidden_layers"]),
        num_attention_heads=heads,
        num_key_value_heads=int(llm.get("num_key_value_heads") or heads),
        max_position_embeddings=int(llm.get("max_position_embeddings", 32768)),
        mrope_section=section,
        rope_theta=float(llm.get("rope_theta", 1_000_000.0)),
        rms_norm_eps=float(llm.get("rms_norm_eps", 1e-6)),
        hidden_act=str(llm.get("hidden_act", "silu")),
        use_sliding_window=use_sliding,
        sliding_window=int(llm["sliding_window"]) if use_sliding else None,
        max_window_layers=int(llm.get("max_window_layers", 28)),
        tie_word_embeddings=bool(llm.get("tie_word_embeddings", False)),
    )


def _parse_vision(vis: dict[str, Any]) -> VisionConfig:
    hidden = int(vis["hidden_size"])
    heads = int(vis["num_heads"])
    if heads <= 0 or hidden % heads:
        raise ValueError(f"vision hidden_size {hidden} is not divisible by num_heads {heads}")
    return VisionConfig(
        depth=int(vis["depth"]),
        hidden_size=hidden,
        intermediate_size=int(vis["intermediate_size"]),
        num_heads=heads,
        out_hidden_size=int(vis["out_hidden_size"]),
        in_channels=int(vis.get("in_channels", 3)),
        patch_size=int(vis.get("patch_size", 14)),
        temporal_patch_size=int(vis.get("temporal_patch_size", 2)),
        spatial_merge_size=int(vis.get("spatial_merge_size", 2)),
        window_size=int(vis.get("window_size", 112)),
        tokens_per_second=int(vis.get("tokens_per_second", 2)),
        fullatt_block_indexes=tuple(
            int(i) for i in vis.get("fullatt_block_indexes", (7, 15, 23, 31))
        ),
        hidden_act=str(vis.get("hidden_act", "silu")),
    )
