"""Random-weight M2 checkpoints in the official ``bailing_qwen2_5`` layout, at any size.

``m2-tools make-tiny-model DIR`` (or :func:`make_tiny_model`) writes what a model
directory on the hub holds: ``config.json`` in the official nested shape,
sharded safetensors with ``model.safetensors.index.json``, a small byte-level BPE
tokenizer with the Qwen2 pre-tokenizer split and the M2 special tokens in their
official order, and the processor files. The weights are seeded random tensors
written tensor by tensor, so even the ``7b-shapes`` preset (about 16.6 GB in
bfloat16) never needs the whole model in memory.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import logging
import math
import os
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import torch

if TYPE_CHECKING:
    from m2_tools.engines.m2_native.config import M2Config
    from m2_tools.engines.m2_native.modeling import M2Model
    from m2_tools.engines.m2_native.processor import PreparedPrompt

__all__ = [
    "HELP",
    "M2_ADDED_TOKENS",
    "PRESETS",
    "QWEN_SPECIAL_TOKENS",
    "TinyModelSpec",
    "add_arguments",
    "build_config",
    "build_random_model",
    "build_spec",
    "init_random_weights_",
    "make_tiny_model",
    "official_token_ids",
    "run",
    "synthetic_prompt",
    "weight_shapes",
]

logger = logging.getLogger(__name__)

HELP = "Write a tiny random-weight checkpoint in the official layout."

#: Qwen2.5's own special tokens, first after the BPE vocabulary.
QWEN_SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
#: M2's added tokens, in the official order (151665 onwards in the real tokenizer).
M2_ADDED_TOKENS: tuple[str, ...] = (
    "[item]", "<html>", "</html>", "<body>", "</body>", "<table>", "</table>",
    "<tr>", "</tr>", "<td>", "</td>", "<think>", "</think>",
    "<imagePatch>", "<image>", "</image>", "<video>", "</video>",
    "<gen_imagePatch>", "<gen_image>", "</gen_image>", "<imageHere>",
    "<end_of_chunk>", "<end_of_audio>", "<audioPatch>", "<audio>", "</audio>",
    "<gen_audioPatch>", "<gen_audio>", "</gen_audio>", "<audioHere>",
)  # fmt: skip

_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_DTYPES: dict[str, tuple[torch.dtype, str]] = {
    "float32": (torch.float32, "F32"),
    "bfloat16": (torch.bfloat16, "BF16"),
}
_CHUNK_ELEMENTS = 1 << 23  # rows of big tensors are drawn in ~32 MB pieces
_PROGRESS_MIN_BYTES = 256 * 10**6


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
    query/key-value ratio where it divides). Raises ``ValueError`` on sizes the
    model cannot have.
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


# --- tokenizer -------------------------------------------------------------------------------

_CORPUS_SENTENCES: tuple[str, ...] = (
    "You are a helpful assistant. When the user asks a question, your response must include",
    "two parts: first, the reasoning process enclosed in tags, then the final answer enclosed",
    "in tags. The critical answer or key result should be placed within \\boxed{}.",
    "Question: Rhombus QRST has an area of 137.9 square meters. If RT is 12.2 meters, find QS.",
    "The area of a rhombus is half the product of its diagonals, so QS = 2 × 137.9 / 12.2.",
    "In triangle ABC, the angle at B is a right angle and AB = 3, BC = 4. Find the length of AC.",
    "By the Pythagorean theorem, the hypotenuse is the square root of the sum of the squares.",
    "The circle has radius 5 and its center is the point O. What is the circumference?",
    "The perimeter of the rectangle is the sum of its sides; its area is length times width.",
    "Find the value of x such that 2x + 7 = 19. Subtract 7 from both sides and divide by 2.",
    "The slope of the line through the points (1, 2) and (3, 8) is the change in y over x.",
    "The bar chart shows the number of students in each class. Which class has the most?",
    "According to the graph, the function increases from 0 to 4 and then decreases.",
    "The probability of drawing a red ball is the number of red balls divided by the total.",
    "How many chairs are in the room? Count each chair once, even if it appears in two views.",
    "Which object is closer to the camera, the table or the sofa? The table is in front.",
    "The lamp is to the left of the bed, and the window is behind the desk.",
    "Measuring from the door, the distance to the refrigerator is about three meters.",
    "If I stand by the sink facing the oven, is the fridge on my left, my right, or behind me?",
    "What is the order in which the objects first appear in the video: chair, stool, tv, bin?",
    "The height of the cabinet is larger than the width of the door, so it is the biggest.",
    "Let us think step by step. First, compute the angle. Then compare the sides.",
    "The sum of the interior angles of a polygon with n sides is (n - 2) × 180 degrees.",
    "The volume of a cylinder is the area of its base times its height; the base is a circle.",
    "The mean of the data set is the total divided by the count; the median is the middle.",
    "The triangle is isosceles, so the two base angles are equal and each measures 70 degrees.",
    "A square has four equal sides and four right angles; its diagonal is side times root two.",
    "The answer is B because the shaded region covers one quarter of the whole figure.",
)

_CORPUS_WORDS = (
    "triangle square circle rectangle rhombus angle side length width height area volume "
    "perimeter radius diameter point line segment degree meter chair table sofa bed lamp door "
    "window room camera left right front behind above below near far between distance count "
    "answer question value equation function graph chart number total sum product ratio "
    "system user assistant think reason step first then therefore option choose"
)


def _training_corpus() -> Iterator[str]:
    """A small built-in corpus of math and spatial text (deterministic)."""
    yield from _CORPUS_SENTENCES
    words = _CORPUS_WORDS.split()
    for i, word in enumerate(words):
        other = words[(i * 7 + 3) % len(words)]
        yield f"The {word} is {i + 2} units from the {other}; what is the {word} of the {other}?"
        yield f"Options: A. {i}.5 B. {2 * i + 1} C. {word} D. none of the above. Answer: {other}."
        yield f"user\nQuestion:\n\nWhere is the {word}?\nassistant\nThe {word} is {other}."


def _build_tokenizer(bpe_vocab_size: int) -> Any:
    """Train the byte-level BPE and add the Qwen and M2 special tokens after it, in order."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(list(_training_corpus()), trainer=trainer)
    specials = [*QWEN_SPECIAL_TOKENS, *M2_ADDED_TOKENS]
    tokenizer.add_special_tokens(
        [
            AddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False)
            for t in specials
        ]
    )
    return tokenizer


def _write_json(path: Path, data: Any, *, newline: bool = True, **kwargs: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, **kwargs)
    path.write_text(text + ("\n" if newline else ""), encoding="utf-8")


def _write_tokenizer_files(out: Path, tokenizer: Any) -> dict[str, int]:
    """Write every tokenizer file the official checkpoint has; return token → id of the specials."""
    tokenizer.save(str(out / "tokenizer.json"), pretty=True)
    model = json.loads(tokenizer.to_str())["model"]
    vocab: dict[str, int] = model["vocab"]
    _write_json(
        out / "vocab.json",
        dict(sorted(vocab.items(), key=lambda kv: kv[1])),
        newline=False,
        separators=(",", ":"),
    )
    merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    (out / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{m}\n" for m in merges), encoding="utf-8"
    )
    ids = {t: tokenizer.token_to_id(t) for t in (*QWEN_SPECIAL_TOKENS, *M2_ADDED_TOKENS)}
    flags = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
    _write_json(out / "added_tokens.json", ids, indent=2, sort_keys=True)
    _write_json(
        out / "special_tokens_map.json",
        {
            "eos_token": {"content": "<|im_end|>", **flags},
            "pad_token": {"content": "<|endoftext|>", **flags},
        },
        indent=2,
    )
    decoder = {str(i): {"content": t, **flags, "special": True} for t, i in ids.items()}
    config = {
        "added_tokens_decoder": decoder,
        "bos_token": None,
        "chat_template": _CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "extra_special_tokens": {},
        "model_max_length": int(1e30),
        "pad_token": "<|endoftext|>",
        "processor_class": "Bailing_qwen2_5Processor",
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    _write_json(out / "tokenizer_config.json", config, indent=2)
    return ids


# --- config and processor files --------------------------------------------------------------

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
    """Return ``config.json`` in the official ``bailing_qwen2_5`` shape for ``spec``."""
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


def _write_processor_files(out: Path, spec: TinyModelSpec) -> None:
    min_pixels = 3136
    _write_json(
        out / "preprocessor_config.json",
        {
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_processor_type": "Qwen2VLImageProcessor",
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "max_pixels": spec.max_pixels,
            "merge_size": 2,
            "min_pixels": min_pixels,
            "patch_size": 14,
            "processor_class": "Bailing_qwen2_5Processor",
            "resample": 3,
            "rescale_factor": 1 / 255,
            "size": {"longest_edge": spec.max_pixels, "shortest_edge": min_pixels},
            "temporal_patch_size": 2,
        },
        indent=2,
    )
    _write_json(
        out / "processor_config.json",
        {
            "audio_token": "<audio>",
            "image_token": "<image>",
            "processor_class": "Bailing_qwen2_5Processor",
            "video_token": "<video>",
        },
        indent=2,
    )
    _write_json(out / "chat_template.json", {"chat_template": _CHAT_TEMPLATE}, indent=2)
    _write_json(
        out / "generation_config.json",
        {"_from_model_config": True, "transformers_version": "4.49.0"},
        indent=2,
        newline=False,
    )


# --- weights ---------------------------------------------------------------------------------


def weight_shapes(spec: TinyModelSpec, vocab_size: int) -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor of the checkpoint in module order: vision tower, projector, language model."""
    vh, vi, h = spec.vision_hidden_size, spec.vision_intermediate_size, spec.hidden_size
    merged = vh * 4  # spatial_merge_size ** 2 patches are concatenated before the merger MLP
    shapes: list[tuple[str, tuple[int, ...]]] = [
        ("vision_model.patch_embed.proj.weight", (vh, 3, 2, 14, 14))
    ]
    for i in range(spec.vision_depth):
        p = f"vision_model.blocks.{i}."
        shapes += [
            (p + "norm1.weight", (vh,)), (p + "norm2.weight", (vh,)),
            (p + "attn.qkv.weight", (3 * vh, vh)), (p + "attn.qkv.bias", (3 * vh,)),
            (p + "attn.proj.weight", (vh, vh)), (p + "attn.proj.bias", (vh,)),
            (p + "mlp.gate_proj.weight", (vi, vh)), (p + "mlp.gate_proj.bias", (vi,)),
            (p + "mlp.up_proj.weight", (vi, vh)), (p + "mlp.up_proj.bias", (vi,)),
            (p + "mlp.down_proj.weight", (vh, vi)), (p + "mlp.down_proj.bias", (vh,)),
        ]  # fmt: skip
    shapes += [
        ("vision_model.merger.ln_q.weight", (vh,)),
        ("vision_model.merger.mlp.0.weight", (merged, merged)),
        ("vision_model.merger.mlp.0.bias", (merged,)),
        ("vision_model.merger.mlp.2.weight", (spec.out_hidden_size, merged)),
        ("vision_model.merger.mlp.2.bias", (spec.out_hidden_size,)),
        ("linear_proj.0.weight", (h, spec.out_hidden_size)),
        ("linear_proj.0.bias", (h,)),
        ("linear_proj.2.weight", (h, h)),
        ("linear_proj.2.bias", (h,)),
        ("language_model.model.embed_tokens.weight", (vocab_size, h)),
    ]
    q = spec.num_attention_heads * spec.head_dim
    kv = spec.num_key_value_heads * spec.head_dim
    inter = spec.intermediate_size
    for i in range(spec.num_hidden_layers):
        p = f"language_model.model.layers.{i}."
        shapes += [
            (p + "input_layernorm.weight", (h,)),
            (p + "self_attn.q_proj.weight", (q, h)), (p + "self_attn.q_proj.bias", (q,)),
            (p + "self_attn.k_proj.weight", (kv, h)), (p + "self_attn.k_proj.bias", (kv,)),
            (p + "self_attn.v_proj.weight", (kv, h)), (p + "self_attn.v_proj.bias", (kv,)),
            (p + "self_attn.o_proj.weight", (h, q)),
            (p + "post_attention_layernorm.weight", (h,)),
            (p + "mlp.gate_proj.weight", (inter, h)), (p + "mlp.up_proj.weight", (inter, h)),
            (p + "mlp.down_proj.weight", (h, inter)),
        ]  # fmt: skip
    shapes += [
        ("language_model.model.norm.weight", (h,)),
        ("language_model.lm_head.weight", (vocab_size, h)),
    ]
    return shapes


def _is_norm(name: str) -> bool:
    return name.endswith(("norm.weight", "norm1.weight", "norm2.weight", "ln_q.weight"))


def _tensor_seed(seed: int, name: str) -> int:
    return (seed * 0x9E3779B1 + zlib.crc32(name.encode())) % (1 << 63)


def _fill_random_(tensor: torch.Tensor, name: str, std: float, generator: torch.Generator) -> None:
    """Normal(0, std) weights and biases; RMSNorm scales near one so every tensor matters."""
    tensor.normal_(0.0, std, generator=generator)
    if _is_norm(name):
        tensor.add_(1.0)


def _random_chunks(
    name: str, shape: tuple[int, ...], dtype: torch.dtype, std: float, seed: int
) -> Iterator[torch.Tensor]:
    """Yield the tensor ``name`` as row blocks, drawn from its own seeded generator."""
    generator = torch.Generator().manual_seed(_tensor_seed(seed, name))
    row = math.prod(shape[1:])
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(row, 1))
    for start in range(0, shape[0], rows_per_chunk):
        rows = min(rows_per_chunk, shape[0] - start)
        block = torch.empty((rows, *shape[1:]), dtype=torch.float32)
        _fill_random_(block, name, std, generator)
        yield block.to(dtype)


def _write_bytes(handle: BinaryIO, tensor: torch.Tensor) -> None:
    # A zero-copy view of the tensor's memory; torch offers no bytes view without NumPy.
    tensor = tensor.contiguous()
    buffer = (ctypes.c_char * tensor.nbytes).from_address(tensor.data_ptr())
    handle.write(memoryview(buffer))


def _plan_shards(
    shapes: Sequence[tuple[str, tuple[int, ...]]], itemsize: int, shard_bytes: int
) -> list[list[tuple[str, tuple[int, ...]]]]:
    """Fill shards in module order; a tensor bigger than a shard gets one to itself."""
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, shape in shapes:
        nbytes = math.prod(shape) * itemsize
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += nbytes
    return shards


def _write_shard(
    path: Path,
    tensors: Sequence[tuple[str, tuple[int, ...]]],
    dtype: str,
    std: float,
    seed: int,
    progress: Any,
) -> None:
    torch_dtype, tag = _DTYPES[dtype]
    itemsize = torch.empty((), dtype=torch_dtype).element_size()
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    ordered = sorted(tensors)
    for name, shape in ordered:
        nbytes = math.prod(shape) * itemsize
        header[name] = {
            "dtype": tag,
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as handle:
        handle.write(len(raw).to_bytes(8, "little"))
        handle.write(raw)
        for name, shape in ordered:
            for block in _random_chunks(name, shape, torch_dtype, std, seed):
                _write_bytes(handle, block)
                progress.update(block.nbytes)


def _write_weights(
    out: Path,
    shapes: Sequence[tuple[str, tuple[int, ...]]],
    dtype: str,
    shard_size_mb: float,
    std: float,
    seed: int,
) -> int:
    """Write the shards and the index; return the checkpoint's tensor bytes."""
    from tqdm import tqdm

    itemsize = torch.empty((), dtype=_DTYPES[dtype][0]).element_size()
    shards = _plan_shards(shapes, itemsize, max(1, int(shard_size_mb * 10**6)))
    total = sum(math.prod(shape) * itemsize for _, shape in shapes)
    weight_map: dict[str, str] = {}
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        file=sys.stderr,
        mininterval=1.0,
        desc="weights",
        disable=total < _PROGRESS_MIN_BYTES,
    ) as progress:
        for index, tensors in enumerate(shards, start=1):
            filename = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
            _write_shard(out / filename, tensors, dtype, std, seed, progress)
            weight_map.update({name: filename for name, _ in tensors})
    index_data = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    _write_json(out / "model.safetensors.index.json", index_data, indent=2, newline=False)
    return total


def init_random_weights_(module: torch.nn.Module, *, std: float = 0.02, seed: int = 0) -> None:
    """Fill every parameter of ``module`` in place, drawn like a generated checkpoint's.

    Same distributions (normal with ``std``; RMSNorm scales 1 + noise), not the
    same values. Works on any device, with one seeded generator per device.
    """
    generators: dict[torch.device, torch.Generator] = {}
    with torch.no_grad():
        for name, param in module.named_parameters():
            device = param.device
            if device not in generators:
                generators[device] = torch.Generator(device=device).manual_seed(seed)
            _fill_random_(param, name, std, generators[device])


def official_token_ids() -> dict[str, int]:
    """The real M2 ids: Qwen's three tokens from 151643, M2's added tokens from 151665."""
    ids = {token: 151643 + i for i, token in enumerate(QWEN_SPECIAL_TOKENS)}
    ids.update({token: 151665 + i for i, token in enumerate(M2_ADDED_TOKENS)})
    return ids


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
        preset: A :data:`PRESETS` name; ``overrides`` change its sizes.
        device: Where the parameters are allocated.
        dtype: Parameter dtype.
        seed: Seed of the random weights.
        init_std: Standard deviation of the random weights.
        attn_implementation: ``sdpa``, ``eager`` or ``flash_attention_2``.
        **overrides: :class:`TinyModelSpec` fields.
    """
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
    """
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


# --- entry points ----------------------------------------------------------------------------

_OWNED_FILES = (
    "config.json", "generation_config.json", "model.safetensors.index.json", "tokenizer.json",
    "tokenizer_config.json", "added_tokens.json", "special_tokens_map.json", "vocab.json",
    "merges.txt", "preprocessor_config.json", "processor_config.json", "chat_template.json",
)  # fmt: skip


def _prepare_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; pass overwrite=True (--overwrite)")
        # Only files a checkpoint consists of are replaced; anything else the user keeps.
        for path in [*out.glob("model-*-of-*.safetensors"), *(out / n for n in _OWNED_FILES)]:
            path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def make_tiny_model(
    out_dir: str | Path,
    *,
    preset: str = "tiny",
    dtype: str = "float32",
    seed: int = 0,
    init_std: float = 0.02,
    overwrite: bool = False,
    **overrides: Any,
) -> Path:
    """Write a random-weight M2 checkpoint in the official layout and return its directory.

    Args:
        out_dir: Target directory; created if missing, refused if not empty.
        preset: ``tiny`` (the golden fixture's sizes), ``small`` or ``7b-shapes``.
        dtype: ``float32`` or ``bfloat16`` for the stored weights.
        seed: Seed of the weights (each tensor has its own generator derived from it).
        init_std: Standard deviation of the random weights.
        overwrite: Replace the checkpoint files of a non-empty directory.
        **overrides: :class:`TinyModelSpec` fields, e.g. ``hidden_size=128`` or
            ``shard_size_mb=2``.

    Raises:
        FileExistsError: ``out_dir`` is not empty and ``overwrite`` is false.
        ValueError: An unknown preset, dtype or size, or sizes the model cannot have.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, not {dtype!r}")
    spec = build_spec(preset, **overrides)
    tokenizer = _build_tokenizer(spec.bpe_vocab_size)
    n_tokens = tokenizer.get_vocab_size(with_added_tokens=True)
    vocab_size = spec.vocab_size or -(-n_tokens // 64) * 64  # padded like Qwen's 152064
    if vocab_size < n_tokens:
        raise ValueError(f"vocab_size {vocab_size} is below the tokenizer's {n_tokens} tokens")
    out = Path(out_dir).expanduser().resolve()
    _prepare_dir(out, overwrite)
    token_ids = _write_tokenizer_files(out, tokenizer)
    config = build_config(spec, token_ids, vocab_size, dtype)
    _write_json(out / "config.json", config, indent=2, newline=False)
    _write_processor_files(out, spec)
    total = _write_weights(
        out, weight_shapes(spec, vocab_size), dtype, spec.shard_size_mb, init_std, seed
    )
    logger.info("wrote a %s checkpoint of %.1f MB to %s", preset, total / 1e6, out)
    return out


_SIZE_FLAGS: dict[str, str] = {
    "--hidden-size": "hidden_size",
    "--layers": "num_hidden_layers",
    "--heads": "num_attention_heads",
    "--kv-heads": "num_key_value_heads",
    "--intermediate": "intermediate_size",
    "--vocab-size": "vocab_size",
    "--vision-hidden": "vision_hidden_size",
    "--vision-depth": "vision_depth",
    "--vision-heads": "vision_num_heads",
    "--vision-intermediate": "vision_intermediate_size",
    "--out-hidden": "out_hidden_size",
    "--max-pixels": "max_pixels",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``make-tiny-model`` options to ``parser``."""
    parser.add_argument("dir", type=Path, help="Directory to write; must be empty or missing.")
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="tiny",
        help="Base sizes: tiny (the fixture's), small, 7b-shapes (the real 7B).",
    )
    sizes = parser.add_argument_group("sizes (override the preset)")
    for flag, field in _SIZE_FLAGS.items():
        sizes.add_argument(flag, dest=field, type=int, metavar="N")
    parser.add_argument("--dtype", choices=list(_DTYPES), default="float32")
    parser.add_argument(
        "--shard-size-mb",
        type=float,
        metavar="MB",
        help="Largest shard in MB (10**6 bytes); default per preset.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init-std", type=float, default=0.02, help="Std of the random weights.")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace the checkpoint files of a non-empty directory.",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``make-tiny-model``; print the checkpoint directory on stdout."""
    from m2_tools.cli.options import configure_logging

    configure_logging(os.environ.get("M2_LOG_LEVEL", "INFO"))
    overrides = {field: getattr(args, field) for field in _SIZE_FLAGS.values()}
    try:
        out = make_tiny_model(
            args.dir,
            preset=args.preset,
            dtype=args.dtype,
            seed=args.seed,
            init_std=args.init_std,
            overwrite=args.overwrite,
            shard_size_mb=args.shard_size_mb,
            **overrides,
        )
    except (FileExistsError, ValueError) as exc:
        print(f"make-tiny-model: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0
