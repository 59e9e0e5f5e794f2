"""M2's official ``config.json`` (``model_type`` ``bailing_qwen2_5``), the way vLLM reads it.

vLLM finds decoder sizes and mRoPE through ``config.get_text_config()``, which looks for
``text_config``; M2 ships them as ``llm_config``. :class:`M2VllmConfig` parses the official
file and exposes ``text_config`` (a ``Qwen2_5_VLTextConfig``), ``vision_config`` (a
``Qwen2_5_VLVisionConfig``) and the multimodal token ids under Qwen2.5-VL's names.

:func:`parse_m2_config` refuses exactly what m2-tools' native engine refuses, with the same
messages: the plugin imports nothing from m2-tools, so the rules are repeated here and a
parity test pins them to the native ones.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import (
    Qwen2_5_VLConfig,
    Qwen2_5_VLTextConfig,
    Qwen2_5_VLVisionConfig,
)

__all__ = ["MODEL_TYPE", "M2ConfigError", "M2VllmConfig", "ParsedM2Config", "parse_m2_config"]

MODEL_TYPE = "bailing_qwen2_5"
_DEFAULT_SECTION = (16, 24, 24)
_FULLATT_DEFAULT = (7, 15, 23, 31)


class M2ConfigError(ValueError):
    """The checkpoint's ``config.json`` is not an M2 config this plugin can serve."""


@dataclass(frozen=True)
class ParsedM2Config:
    """The fields of an M2 ``config.json`` that serving needs.

    Attributes:
        text: Keyword arguments for ``Qwen2_5_VLTextConfig``.
        vision: Keyword arguments for ``Qwen2_5_VLVisionConfig``.
        image_patch_token: ``<imagePatch>`` id.
        image_start_token: ``<image>`` id.
        video_patch_token: ``llm_config.video_patch_token``, if any.
        video_start_token: ``llm_config.video_start_token``, if any.
        rope_mode: ``m_rope`` (3-D positions) or ``1d``.
        projector_depth: Linear layers in ``linear_proj`` (``mlp_depths``).
    """

    text: dict[str, Any]
    vision: dict[str, Any]
    image_patch_token: int
    image_start_token: int
    video_patch_token: int | None
    video_start_token: int | None
    rope_mode: str
    projector_depth: int


def load_m2_config(checkpoint_dir: str) -> ParsedM2Config:
    """Read and check ``config.json`` in ``checkpoint_dir``.

    Raises:
        M2ConfigError: The file is missing, not JSON, or not a servable M2 config.
    """
    path = os.path.join(checkpoint_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except FileNotFoundError:
        raise M2ConfigError(f"{path} is missing: not a model checkpoint directory") from None
    except (OSError, ValueError) as exc:
        raise M2ConfigError(f"{path} could not be read as JSON: {exc}") from None
    return parse_m2_config(raw, source=path)


def parse_m2_config(raw: Any, source: str = "config.json") -> ParsedM2Config:
    """Parse and check the decoded ``config.json`` of an M2 checkpoint.

    Raises:
        M2ConfigError: A field is missing or malformed, the model type is not
            ``bailing_qwen2_5``, or ``use_llm_3drope`` has an unknown value.
    """
    if not isinstance(raw, dict):
        raise M2ConfigError(f"{source}: expected a JSON object")
    model_type = raw.get("model_type")
    if model_type != MODEL_TYPE:
        raise M2ConfigError(
            f"{source}: model_type is {model_type!r}, expected {MODEL_TYPE!r} (M2-Reasoning)"
        )
    llm = _section(raw, "llm_config", source)
    vis = _section(raw, "vision_config", source)
    try:
        text = _text_fields(llm)
        vision = _vision_fields(vis)
        tokens = (
            int(llm["image_patch_token"]),
            int(llm["image_start_token"]),
            _optional_int(llm.get("video_patch_token")),
            _optional_int(llm.get("video_start_token")),
        )
        depth = int(raw.get("mlp_depths", 2))
    except KeyError as exc:
        raise M2ConfigError(f"{source}: required field {exc.args[0]!r} is missing") from None
    except (TypeError, ValueError) as exc:
        raise M2ConfigError(f"{source}: malformed field: {exc}") from None
    if depth < 1:
        raise M2ConfigError(f"{source}: mlp_depths must be at least 1, not {depth}")
    section = text["rope_parameters"]["mrope_section"]
    head_half = text["hidden_size"] // text["num_attention_heads"] // 2
    if sum(section) != head_half:
        raise M2ConfigError(
            f"{source}: rope_scaling.mrope_section {list(section)} must sum to "
            f"head_dim/2 = {head_half}"
        )
    return ParsedM2Config(
        text=text,
        vision=vision,
        image_patch_token=tokens[0],
        image_start_token=tokens[1],
        video_patch_token=tokens[2],
        video_start_token=tokens[3],
        rope_mode=_rope_mode(llm.get("use_llm_3drope"), source),
        projector_depth=depth,
    )


def _section(raw: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    value = raw.get(name)
    if not isinstance(value, dict):
        raise M2ConfigError(f"{source}: {name} is missing or not an object")
    return value


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _rope_mode(value: Any, source: str) -> str:
    # The published code compares against the string "m_rope"; False turns it off.
    if value == "m_rope":
        return "m_rope"
    if value is False:
        return "1d"
    raise M2ConfigError(
        f"{source}: llm_config.use_llm_3drope is {value!r}; this engine supports "
        "'m_rope' (3-D positions) and false (1-D positions)"
    )


def _text_fields(llm: dict[str, Any]) -> dict[str, Any]:
    hidden = int(llm["hidden_size"])
    heads = int(llm["num_attention_heads"])
    if heads <= 0 or hidden % heads:
        raise ValueError(f"hidden_size {hidden} is not divisible by num_attention_heads {heads}")
    rope_scaling = llm.get("rope_scaling") or {}
    section = [int(s) for s in rope_scaling.get("mrope_section", _DEFAULT_SECTION)]
    use_sliding = bool(llm.get("use_sliding_window", False))
    return {
        "vocab_size": int(llm["vocab_size"]),
        "hidden_size": hidden,
        "intermediate_size": int(llm["intermediate_size"]),
        "num_hidden_layers": int(llm["num_hidden_layers"]),
        "num_attention_heads": heads,
        "num_key_value_heads": int(llm.get("num_key_value_heads") or heads),
        "max_position_embeddings": int(llm.get("max_position_embeddings", 32768)),
        "rms_norm_eps": float(llm.get("rms_norm_eps", 1e-6)),
        "hidden_act": str(llm.get("hidden_act", "silu")),
        "use_sliding_window": use_sliding,
        "sliding_window": int(llm["sliding_window"]) if use_sliding else None,
        "max_window_layers": int(llm.get("max_window_layers", 28)),
        "tie_word_embeddings": bool(llm.get("tie_word_embeddings", False)),
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": float(llm.get("rope_theta", 1_000_000.0)),
            "mrope_section": section,
        },
    }


def _vision_fields(vis: dict[str, Any]) -> dict[str, Any]:
    hidden = int(vis["hidden_size"])
    heads = int(vis["num_heads"])
    if heads <= 0 or hidden % heads:
        raise ValueError(f"vision hidden_size {hidden} is not divisible by num_heads {heads}")
    return {
        "depth": int(vis["depth"]),
        "hidden_size": hidden,
        "intermediate_size": int(vis["intermediate_size"]),
        "num_heads": heads,
        "out_hidden_size": int(vis["out_hidden_size"]),
        "in_channels": int(vis.get("in_channels", 3)),
        "patch_size": int(vis.get("patch_size", 14)),
        "temporal_patch_size": int(vis.get("temporal_patch_size", 2)),
        "spatial_merge_size": int(vis.get("spatial_merge_size", 2)),
        "window_size": int(vis.get("window_size", 112)),
        "tokens_per_second": int(vis.get("tokens_per_second", 2)),
        "fullatt_block_indexes": [
            int(i) for i in vis.get("fullatt_block_indexes", _FULLATT_DEFAULT)
        ],
        "hidden_act": str(vis.get("hidden_act", "silu")),
    }


class M2VllmConfig(Qwen2_5_VLConfig):
    """M2's ``config.json`` as a Qwen2.5-VL config, which vLLM's Qwen2.5-VL code reads.

    Built from the official file, it keeps ``llm_config`` and ``mlp_depths`` as given and
    adds ``text_config``, ``vision_config``, ``image_token_id`` (``<imagePatch>``),
    ``vision_start_token_id`` (``<image>``), ``video_token_id`` and ``rope_mode``
    (``m_rope`` or ``1d``, from ``llm_config.use_llm_3drope``).

    Raises:
        M2ConfigError: ``llm_config`` is given but is not a servable M2 config.
    """

    model_type = MODEL_TYPE

    llm_config: dict | None = None  # type: ignore[type-arg]
    mlp_depths: int = 2
    rope_mode: str = "m_rope"

    def __post_init__(self, **kwargs: Any) -> None:
        if self.llm_config is not None:
            vision = self.vision_config
            raw_vision = vision.to_dict() if hasattr(vision, "to_dict") else vision
            parsed = parse_m2_config(
                {
                    "model_type": MODEL_TYPE,
                    "llm_config": self.llm_config,
                    "vision_config": raw_vision,
                    "mlp_depths": self.mlp_depths,
                }
            )
            self.text_config = Qwen2_5_VLTextConfig(
                **parsed.text, bos_token_id=None, eos_token_id=None, pad_token_id=None
            )
            self.vision_config = Qwen2_5_VLVisionConfig(**parsed.vision)
            self.image_token_id = parsed.image_patch_token
            self.vision_start_token_id = parsed.image_start_token
            self.video_token_id = (
                parsed.video_patch_token
                if parsed.video_patch_token is not None
                else parsed.image_patch_token
            )
            self.rope_mode = parsed.rope_mode
            self.tie_word_embeddings = bool(parsed.text["tie_word_embeddings"])
        super().__post_init__(**kwargs)
