"""The sizes and ``config.json`` of a generated M2 checkpoint; nothing here needs torch.

:class:`TinyModelSpec` holds every size of a checkpoint and :data:`PRESETS` names
three of them: ``tiny`` (the golden fixture's), ``small`` and ``7b-shapes`` (the real
M2-Reasoning-7B). :func:`build_spec` applies overrides to a preset and keeps the
dependent sizes consistent; :func:`build_config` turns a spec into ``config.json`` in
the official ``bailing_qwen2_5`` shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PRESETS",
    "TinyModelSpec",
    "build_config",
    "build_spec",
]


@dataclass(frozen=True)
class TinyModelSpec:
    """Every size of a generated checkpoint. ``vocab_size=None`` fits the tokenizer.

    Attributes mirror ``config.json``: the language model (``hidden_size`` …
    ``vocab_size``), the vision tower (``vision_*``, ``out_hidden_size``), the
    processor's ``max_pixels``, the BPE size before the special tokens
    (``bpe_vocab_size``) and the default shard size in MB (10**6 bytes).
    """

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int | None
    vision_hidden_size: int
    vision_depth: int
    vision_num_heads: int
    vision_intermediate_size: int
    out_hidden_size: int
    max_position_embeddings: int
    max_pixels: int
    bpe_vocab_size: int
    shard_size_mb: float

    @property
    def head_dim(self) -> int:
        """Per-head width of the language model."""
        return self.hidden_size // self.num_attention_heads

    @property
    def mrope_section(self) -> list[int]:
        """The (t, h, w) split of half the head width, Qwen2.5-VL's 16/24/24 at 128."""
        half = self.head_dim // 2
        t = half // 4
        h = (half - t) // 2
        return [t, h, half - t - h]

    @property
    def fullatt_block_indexes(self) -> list[int]:
        """Vision blocks with full attention: every ``depth // 4``-th, like 7/15/23/31 at 32."""
        step = max(2, self.vision_depth // 4)
        return [i for i in range(self.vision_depth) if (i + 1) % step == 0]


PRESETS: dict[str, TinyModelSpec] = {
    # The golden fixture's sizes.
    "tiny": TinyModelSpec(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=128, vocab_size=None, vision_hidden_size=32, vision_depth=2,
        vision_num_heads=2, vision_intermediate_size=48, out_hidden_size=40,
        max_position_embeddings=4096, max_pixels=50176, bpe_vocab_size=520, shard_size_mb=0.5,
    ),
    "small": TinyModelSpec(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
        intermediate_size=512, vocab_size=None, vision_hidden_size=128, vision_depth=4,
        vision_num_heads=4, vision_intermediate_size=256, out_hidden_size=192,
        max_position_embeddings=8192, max_pixels=200704, bpe_vocab_size=1024, shard_size_mb=4.0,
    ),
    # The real M2-Reasoning-7B sizes (about 8.3B parameters).
    "7b-shapes": TinyModelSpec(
        hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
        intermediate_size=18944, vocab_size=152064, vision_hidden_size=1280, vision_depth=32,
        vision_num_heads=16, vision_intermediate_size=3420, out_hidden_size=3584,
        max_position_embeddings=32768, max_pixels=12845056, bpe_vocab_size=1024,
        shard_size_mb=5000.0,
    ),
}  # fmt: skip


def build_spec(preset: str = "tiny", **overrides: Any) -> TinyModelSpec:
    """Return ``preset`` with ``overrides`` applied and dependent sizes kept consistent.

    Changing a width without its head count keeps the preset's head width (and the
    query/key-value ratio where it divides).

    Args:
        preset: A :data:`PRESETS` name.
        **overrides: :class:`TinyModelSpec` fields; None leaves the preset's value.

    Returns:
        The consistent sizes.

    Raises:
        ValueError: An unknown preset or size, or sizes the model cannot have.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    base = PRESETS[preset]
    known = {f.name for f in dataclasses.fields(TinyModelSpec)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown size(s): {', '.join(sorted(unknown))}")
    values = {k: v for k, v in overrides.items() if v is not None}
    if "hidden_size" in values and "num_attention_heads" not in values:
        heads = max(1, values["hidden_size"] // base.head_dim)
        values["num_attention_heads"] = heads
        if "num_key_value_heads" not in values:
            ratio = base.num_attention_heads // base.num_key_value_heads
            values["num_key_value_heads"] = heads // ratio if heads % ratio == 0 else heads
    if "vision_hidden_size" in values and "vision_num_heads" not in values:
        vision_head_dim = base.vision_hidden_size // base.vision_num_heads
        values["vision_num_heads"] = max(1, values["vision_hidden_size"] // vision_head_dim)
    spec = dataclasses.replace(base, **values)
    _validate(spec)
    return spec


def _validate(spec: TinyModelSpec) -> None:
    if spec.hidden_size % spec.num_attention_heads or spec.head_dim % 8:
        raise ValueError("hidden_size must be heads × a head width that is a multiple of 8")
    if spec.num_attention_heads % spec.num_key_value_heads:
        raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
    vision_head_dim, rest = divmod(spec.vision_hidden_size, spec.vision_num_heads)
    if rest or vision_head_dim % 4:
        raise ValueError("vision_hidden_size must be heads × a head width that is a multiple of 4")
    if min(spec.num_hidden_layers, spec.vision_depth, spec.intermediate_size) < 1:
        raise ValueError("layers, vision depth and intermediate size must be positive")
    if spec.max_pixels < 3136:
        raise ValueError("max_pixels must be at least 3136 (56 × 56)")


# --- config.json -----------------------------------------------------------------------------

# The keys transformers' PretrainedConfig writes into every sub-config; the official
# config.json has them, so the generated one does too.
_COMMON_SUBCONFIG: dict[str, Any] = {
    "_name_or_path": "", "add_cross_attention": False, "architectures": None,
    "bad_words_ids": None, "begin_suppress_tokens": None, "chunk_size_feed_forward": 0,
    "cross_attention_hidden_size": None, "decoder_start_token_id": None,
    "diversity_penalty": 0.0, "do_sample": False, "early_stopping": False,
    "encoder_no_repeat_ngram_size": 0, "exponential_decay_length_penalty": None,
    "finetuning_task": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
    "id2label": {"0": "LABEL_0", "1": "LABEL_1"}, "is_decoder": False,
    "is_encoder_decoder": False, "label2id": {"LABEL_0": 0, "LABEL_1": 1},
    "length_penalty": 1.0, "max_length": 20, "min_length": 0, "no_repeat_ngram_size": 0,
    "num_beam_groups": 1, "num_beams": 1, "num_return_sequences": 1,
    "output_attentions": False, "output_hidden_states": False, "output_scores": False,
    "prefix": None, "problem_type": None, "pruned_heads": {}, "remove_invalid_values": False,
    "repetition_penalty": 1.0, "return_dict": True, "return_dict_in_generate": False,
    "sep_token_id": None, "suppress_tokens": None, "task_specific_params": None,
    "temperature": 1.0, "tf_legacy_loss": False, "tie_encoder_decoder": False,
    "tokenizer_class": None, "top_k": 50, "top_p": 1.0, "torch_dtype": None,
    "torchscript": False, "typical_p": 1.0, "use_bfloat16": False,
}  # fmt: skip


def build_config(
    spec: TinyModelSpec, token_ids: dict[str, int], vocab_size: int, dtype: str
) -> dict[str, Any]:
    """Return ``config.json`` in the official ``bailing_qwen2_5`` shape for ``spec``.

    Args:
        spec: The model's sizes.
        token_ids: Special token → id, for the token ids the config names.
        vocab_size: The language model's vocabulary size.
        dtype: The ``torch_dtype`` recorded, e.g. ``float32``.

    Returns:
        The config as JSON-ready data, keys in the official order.
    """
    llm = {
        **_COMMON_SUBCONFIG,
        "attention_dropout": 0.0, "audio_id_shift": 1000000, "audio_vocab_size": 0,
        "bos_token_id": token_ids["<|endoftext|>"], "eos_token_id": token_ids["<|im_end|>"],
        "pad_token_id": token_ids["<|endoftext|>"], "hidden_act": "silu",
        "hidden_size": spec.hidden_size, "initializer_range": 0.02,
        "intermediate_size": spec.intermediate_size,
        "image_patch_token": token_ids["<imagePatch>"],
        "image_start_token": token_ids["<image>"],
        "video_patch_token": token_ids["<imagePatch>"],
        "video_start_token": token_ids["<video>"],
        "max_position_embeddings": spec.max_position_embeddings, "max_window_layers": 28,
        "model_type": "qwen2", "num_attention_heads": spec.num_attention_heads,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_key_value_heads": spec.num_key_value_heads, "rms_norm_eps": 1e-06,
        "rope_scaling": {"mrope_section": spec.mrope_section, "rope_type": "default",
                         "type": "default"},
        "rope_theta": 1000000.0, "sliding_window": spec.max_position_embeddings,
        "tie_word_embeddings": False, "use_cache": True, "use_llm_3drope": "m_rope",
        "use_sliding_window": False, "vocab_size": vocab_size,
    }  # fmt: skip
    vision = {
        **_COMMON_SUBCONFIG,
        "bos_token_id": None, "eos_token_id": None, "pad_token_id": None,
        "depth": spec.vision_depth, "fullatt_block_indexes": spec.fullatt_block_indexes,
        "hidden_act": "silu", "hidden_size": spec.vision_hidden_size, "in_channels": 3,
        "intermediate_size": spec.vision_intermediate_size, "model_type": "qwen2_5_vit",
        "num_heads": spec.vision_num_heads, "out_hidden_size": spec.out_hidden_size,
        "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
        "tie_word_embeddings": True, "tokens_per_second": 2, "window_size": 112,
    }  # fmt: skip
    config = {
        "architectures": ["Bailing_qwen2_5NativeForConditionalGeneration"],
        "audio_config": None,
        "llm_config": dict(sorted(llm.items())),
        "llm_type": "qwen2_5", "mlp_depths": 2, "model_type": "bailing_qwen2_5",
        "num_decoder_audio_token": 512, "num_decoder_image_token": 1024,
        "num_query_token_audio": 256, "num_query_token_image": 64,
        "num_query_token_video": 64, "select_layer": -1, "transformers_version": "4.49.0",
        "use_llm_lora": 0, "use_vit_lora": 0,
        "vision_config": dict(sorted(vision.items())),
        "vision_type": "qwen2_5_vit",
    }  # fmt: skip
    config["torch_dtype"] = dtype
    return config
