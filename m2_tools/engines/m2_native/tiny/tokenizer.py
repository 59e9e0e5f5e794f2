"""The text side of a generated checkpoint: special tokens, a small BPE, the processor files.

:func:`build_tokenizer` trains a byte-level BPE on a built-in corpus of math and
spatial text, with the Qwen2 pre-tokenizer split, then adds Qwen's special tokens
and M2's added tokens after it in their official order. :func:`write_tokenizer_files`
and :func:`write_processor_files` write every file the official checkpoint has for
turning text and images into ids. Nothing here needs torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "CHAT_TEMPLATE",
    "M2_ADDED_TOKENS",
    "QWEN_SPECIAL_TOKENS",
    "build_tokenizer",
    "official_token_ids",
    "write_json",
    "write_processor_files",
    "write_tokenizer_files",
]

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

# Qwen2's pre-tokenizer regex, so words, digits and punctuation split as in the real tokenizer.
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
#: The Qwen2 chat template, stored both in ``tokenizer_config.json`` and ``chat_template.json``.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def official_token_ids() -> dict[str, int]:
    """The real M2 ids: Qwen's three tokens from 151643, M2's added tokens from 151665.

    Returns:
        Special token → id in the official 152064-token vocabulary.
    """
    ids = {token: 151643 + i for i, token in enumerate(QWEN_SPECIAL_TOKENS)}
    ids.update({token: 151665 + i for i, token in enumerate(M2_ADDED_TOKENS)})
    return ids


# The corpus only has to give the BPE realistic merges for prompts like the tools' own:
# math questions, spatial questions, the system prompt and the chat scaffolding.
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


def build_tokenizer(bpe_vocab_size: int) -> Any:
    """Train the byte-level BPE and add the Qwen and M2 special tokens after it, in order.

    Args:
        bpe_vocab_size: Size of the trained BPE vocabulary, before the special tokens.

    Returns:
        A ``tokenizers.Tokenizer``; training is deterministic, so equal sizes give
        equal tokenizers.
    """
    # Imported here: only writing a checkpoint needs the tokenizers library.
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


def write_json(path: Path, data: Any, *, newline: bool = True, **kwargs: Any) -> None:
    """Write ``data`` as UTF-8 JSON, the way every JSON file of a generated checkpoint is.

    Args:
        path: File to write.
        data: JSON-serialisable value.
        newline: End the file with a newline (the official files differ on this).
        **kwargs: Passed to :func:`json.dumps` (``indent``, ``separators``, ``sort_keys``).
    """
    text = json.dumps(data, ensure_ascii=False, **kwargs)
    path.write_text(text + ("\n" if newline else ""), encoding="utf-8")


def write_tokenizer_files(out: Path, tokenizer: Any) -> dict[str, int]:
    """Write every tokenizer file the official checkpoint has.

    Args:
        out: The checkpoint directory.
        tokenizer: A tokenizer from :func:`build_tokenizer`.

    Returns:
        Special token → id in this tokenizer.
    """
    tokenizer.save(str(out / "tokenizer.json"), pretty=True)
    model = json.loads(tokenizer.to_str())["model"]
    vocab: dict[str, int] = model["vocab"]
    write_json(
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
    write_json(out / "added_tokens.json", ids, indent=2, sort_keys=True)
    write_json(
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
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "extra_special_tokens": {},
        "model_max_length": int(1e30),
        "pad_token": "<|endoftext|>",
        "processor_class": "Bailing_qwen2_5Processor",
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    write_json(out / "tokenizer_config.json", config, indent=2)
    return ids


def write_processor_files(out: Path, max_pixels: int) -> None:
    """Write the image processor's, the processor's and the chat template's files.

    Args:
        out: The checkpoint directory.
        max_pixels: The largest image area the processor resizes to.
    """
    min_pixels = 3136  # Qwen2-VL's default floor, 56 × 56
    write_json(
        out / "preprocessor_config.json",
        {
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_processor_type": "Qwen2VLImageProcessor",
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "max_pixels": max_pixels,
            "merge_size": 2,
            "min_pixels": min_pixels,
            "patch_size": 14,
            "processor_class": "Bailing_qwen2_5Processor",
            "resample": 3,
            "rescale_factor": 1 / 255,
            "size": {"longest_edge": max_pixels, "shortest_edge": min_pixels},
            "temporal_patch_size": 2,
        },
        indent=2,
    )
    write_json(
        out / "processor_config.json",
        {
            "audio_token": "<audio>",
            "image_token": "<image>",
            "processor_class": "Bailing_qwen2_5Processor",
            "video_token": "<video>",
        },
        indent=2,
    )
    write_json(out / "chat_template.json", {"chat_template": CHAT_TEMPLATE}, indent=2)
