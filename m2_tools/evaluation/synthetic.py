"""A synthetic suite anyone can run offline: drawn images with known answers.

It exercises the whole pipeline (images, prompts, batching, parsing, scoring,
reports) without downloading a benchmark. It says nothing about how good the
model is at real problems. Six kinds of item, in turn: counting shapes, left/
right or above/below position, relative size, depth from occlusion and ground
position, reading a bar from a chart, and geometry with labelled lengths.
Everything is drawn with PIL from one seeded generator, so a seed gives the
same items.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from m2_tools.evaluation.items import EvalItem, write_items

__all__ = ["KINDS", "generate_synthetic"]

SIZE = 336
_COLORS = {
    "red": (215, 40, 40),
    "blue": (40, 80, 215),
    "green": (30, 150, 60),
    "orange": (240, 140, 20),
    "purple": (130, 60, 170),
}
_SHAPES = ("circle", "square", "triangle")
_TRIPLES = ((3, 4, 5), (6, 8, 10), (5, 12, 13), (8, 15, 17), (9, 12, 15), (12, 16, 20))
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri")
Draft = tuple[Image.Image, dict[str, Any]]


def _canvas(
    color: tuple[int, int, int] = (255, 255, 255),
) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (SIZE, SIZE), color)
    return image, ImageDraw.Draw(image)


def _font(size: int = 18) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _shape(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float, color: Any) -> None:
    box = (x - r, y - r, x + r, y + r)
    if shape == "circle":
        draw.ellipse(box, fill=color, outline=(0, 0, 0), width=2)
    elif shape == "square":
        draw.rectangle(box, fill=color, outline=(0, 0, 0), width=2)
    else:
        draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=color, outline=(0, 0, 0))


def _counting(rng: random.Random) -> Draft:
    image, draw = _canvas()
    color, shape = rng.choice(list(_COLORS)), rng.choice(_SHAPES)
    target = rng.randint(1, 6)
    others = [(c, s) for c in _COLORS for s in _SHAPES if (c, s) != (color, shape)]
    cells = rng.sample(range(16), target + rng.randint(2, 6))
    for index, cell in enumerate(cells):
        c, s = (color, shape) if index < target else rng.choice(others)
        x = (cell % 4) * 84 + 42 + rng.randint(-8, 8)
        y = (cell // 4) * 84 + 42 + rng.randint(-8, 8)
        _shape(draw, s, x, y, 24, _COLORS[c])
    question = f"How many {color} {shape}s are there in the image?"
    return image, {"question": question, "gold": str(target), "answer_type": "integer"}


def _position(rng: random.Random) -> Draft:
    image, draw = _canvas()
    (c1, c2), (s1, s2) = rng.sample(list(_COLORS), 2), rng.sample(_SHAPES, 2)
    horizontal = rng.random() < 0.5
    first = rng.random() < 0.5  # the asked-about shape comes first (left / top)
    near, far = rng.randint(50, 130), rng.randint(206, 286)
    a, b = (near, far) if first else (far, near)
    side = rng.randint(70, 266)
    _shape(draw, s1, *((a, side) if horizontal else (side, a)), 30, _COLORS[c1])
    _shape(
        draw,
        s2,
        *((b, rng.randint(70, 266)) if horizontal else (rng.randint(70, 266), b)),
        30,
        _COLORS[c2],
    )
    words = ("left of", "right of") if horizontal else ("above", "below")
    options = list(words)
    rng.shuffle(options)
    answer = words[0] if first else words[1]
    question = f"Is the {c1} {s1} {words[0]} or {words[1]} the {c2} {s2}?"
    return image, _mc(question, options, answer)


def _size(rng: random.Random) -> Draft:
    image, draw = _canvas()
    (c1, c2), shape = rng.sample(list(_COLORS), 2), rng.choice(_SHAPES)
    small, big = rng.randint(16, 30), rng.randint(48, 70)
    first_big = rng.random() < 0.5
    _shape(draw, shape, 90, rng.randint(90, 246), big if first_big else small, _COLORS[c1])
    _shape(draw, shape, 246, rng.randint(90, 246), small if first_big else big, _COLORS[c2])
    options = [f"the {c1} {shape}", f"the {c2} {shape}"]
    answer = options[0] if first_big else options[1]
    rng.shuffle(options)
    return image, _mc("Which shape is larger?", options, answer)


def _depth(rng: random.Random) -> Draft:
    image, draw = _canvas((205, 225, 245))
    draw.rectangle((0, SIZE // 2, SIZE, SIZE), fill=(170, 160, 140))
    (c1, c2), (s1, s2) = rng.sample(list(_COLORS), 2), rng.sample(_SHAPES, 2)
    x = rng.randint(110, 226)
    _shape(draw, s2, x + rng.choice((-40, 40)), 180, 34, _COLORS[c2])  # behind: higher, smaller
    _shape(draw, s1, x, 230, 50, _COLORS[c1])  # in front: lower, larger, drawn over
    options = [f"the {c1} {s1}", f"the {c2} {s2}"]
    answer = options[0]
    rng.shuffle(options)
    return image, _mc("Which object is closer to the camera?", options, answer)


def _bar_chart(rng: random.Random) -> Draft:
    image, draw = _canvas()
    font = _font(14)
    labels = _DAYS[: rng.randint(3, 5)]
    values = [rng.randint(1, 9) * 10 for _ in labels]
    left, bottom, top = 50, 300, 40
    scale = (bottom - top) / 100
    for tick in range(0, 101, 10):
        y = bottom - tick * scale
        draw.line((left, y, SIZE - 16, y), fill=(220, 220, 220))
        draw.text((left - 8, y), str(tick), fill=(0, 0, 0), font=font, anchor="rm")
    draw.line((left, top, left, bottom), fill=(0, 0, 0), width=2)
    draw.line((left, bottom, SIZE - 16, bottom), fill=(0, 0, 0), width=2)
    width = (SIZE - 16 - left) / len(labels)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        x0 = left + index * width + width * 0.2
        draw.rectangle((x0, bottom - value * scale, x0 + width * 0.6, bottom), fill=(70, 110, 180))
        draw.text((x0 + width * 0.3, bottom + 6), label, fill=(0, 0, 0), font=font, anchor="mt")
    asked = rng.randrange(len(labels))
    question = f"According to the bar chart, what is the value for {labels[asked]}?"
    return image, {"question": question, "gold": str(values[asked]), "answer_type": "integer"}


def _geometry(rng: random.Random) -> Draft:
    image, draw = _canvas()
    font = _font(18)
    kind = rng.choice(("hypotenuse", "rectangle", "triangle_area"))
    if kind == "rectangle":
        w, h = rng.randint(3, 12), rng.randint(2, 9)
        x1, y1 = 60 + w * 18, 80 + h * 18
        draw.rectangle((60, 80, x1, y1), outline=(0, 0, 0), width=3)
        draw.text(((60 + x1) / 2, y1 + 8), f"{w} cm", fill=(0, 0, 0), font=font, anchor="mt")
        draw.text((x1 + 8, (80 + y1) / 2), f"{h} cm", fill=(0, 0, 0), font=font, anchor="lm")
        question = "What is the area of the rectangle, in square centimetres?"
        return image, {"question": question, "gold": str(w * h), "answer_type": "integer"}
    a, b, c = rng.choice(_TRIPLES)
    k = 200 / max(a, b)
    x0, y0 = 60, 280
    draw.polygon([(x0, y0), (x0 + b * k, y0), (x0, y0 - a * k)], outline=(0, 0, 0), width=3)
    draw.rectangle((x0, y0 - 16, x0 + 16, y0), outline=(0, 0, 0), width=2)
    draw.text((x0 + b * k / 2, y0 + 8), f"{b} cm", fill=(0, 0, 0), font=font, anchor="mt")
    draw.text((x0 - 8, y0 - a * k / 2), f"{a} cm", fill=(0, 0, 0), font=font, anchor="rm")
    if kind == "hypotenuse":
        question = "In the right triangle shown, what is the length of the hypotenuse, in cm?"
        return image, {"question": question, "gold": str(c), "answer_type": "integer"}
    question = "What is the area of the right triangle shown, in square centimetres?"
    area = a * b / 2
    return image, {
        "question": question,
        "gold": f"{area:g}",
        "answer_type": "float",
        "precision": 1,
    }


def _mc(question: str, options: list[str], answer: str) -> dict[str, Any]:
    letter = chr(ord("A") + options.index(answer))
    return {
        "question": question,
        "options": options,
        "gold": letter,
        "answer_type": "multiple_choice",
    }


#: kind (the item's category) → (generator, tool). Scene questions go to spatial_reason.
KINDS: dict[str, tuple[Callable[[random.Random], Draft], str]] = {
    "counting": (_counting, "spatial_reason"),
    "position": (_position, "spatial_reason"),
    "size": (_size, "spatial_reason"),
    "depth": (_depth, "spatial_reason"),
    "bar_chart": (_bar_chart, "visual_math_reason"),
    "geometry": (_geometry, "visual_math_reason"),
}


def generate_synthetic(out_dir: Path, *, count: int = 60, seed: int = 0) -> Path:
    """Draw ``count`` items into ``out_dir`` (``images/`` and ``items.jsonl``); return the JSONL.

    The kinds take turns, so any ``count`` of 6 or more covers all of them.
    """
    rng = random.Random(seed)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    items = []
    kinds = list(KINDS)
    for index in range(count):
        kind = kinds[index % len(kinds)]
        generate, tool = KINDS[kind]
        image, fields = generate(rng)
        item_id = f"syn-{index:04d}"
        image.save(images_dir / f"{item_id}.png", format="PNG")
        items.append(
            EvalItem(
                id=item_id,
                benchmark="synthetic",
                category=kind,
                tool=tool,  # type: ignore[arg-type]
                images=[f"images/{item_id}.png"],
                meta={"seed": seed},
                **fields,
            )
        )
    path = out_dir / "items.jsonl"
    write_items(items, path)
    return path
