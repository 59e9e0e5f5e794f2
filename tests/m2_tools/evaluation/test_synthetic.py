"""The synthetic suite: deterministic, every kind present, and answers that match the drawings."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image, ImageChops

from m2_tools.evaluation import EvalItem, load_items
from m2_tools.evaluation.synthetic import KINDS, generate_synthetic

COLORS = {
    "red": (215, 40, 40),
    "blue": (40, 80, 215),
    "green": (30, 150, 60),
    "orange": (240, 140, 20),
    "purple": (130, 60, 170),
}


def _mask(image: Image.Image, color: tuple[int, int, int]) -> Image.Image:
    """A mask (255 where ``image`` has exactly ``color``)."""
    bands = [
        band.point(lambda v, c=c: 255 if v == c else 0)
        for band, c in zip(image.split(), color, strict=True)
    ]
    return ImageChops.multiply(ImageChops.multiply(bands[0], bands[1]), bands[2])


def _centre(mask: Image.Image) -> tuple[float, float]:
    box = mask.getbbox()
    assert box is not None
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _color_in(text: str) -> tuple[int, int, int]:
    return next(rgb for name, rgb in COLORS.items() if f"the {name} " in text + " ")


def test_same_seed_gives_identical_items_and_images(tmp_path: Path) -> None:
    first = generate_synthetic(tmp_path / "a", count=12, seed=7)
    second = generate_synthetic(tmp_path / "b", count=12, seed=7)
    other = generate_synthetic(tmp_path / "c", count=12, seed=8)

    assert first.read_text() == second.read_text()
    for name in ("syn-0000.png", "syn-0004.png", "syn-0011.png"):
        assert (tmp_path / "a" / "images" / name).read_bytes() == (
            tmp_path / "b" / "images" / name
        ).read_bytes()
    assert first.read_text() != other.read_text()


def test_covers_every_kind_with_valid_items_and_tools(tmp_path: Path) -> None:
    items = load_items(generate_synthetic(tmp_path, count=len(KINDS), seed=0))

    assert [item.category for item in items] == list(KINDS)
    for item in items:
        assert item.benchmark == "synthetic"
        assert Path(item.images[0]).is_file()
        assert item.resolved_tool == KINDS[item.category][1]
        if item.answer_type == "multiple_choice":
            assert item.options is not None
            assert 0 <= ord(item.gold) - ord("A") < len(item.options)
        else:
            assert float(item.gold) > 0


def _by_kind(tmp_path: Path, kind: str) -> list[EvalItem]:
    items = load_items(generate_synthetic(tmp_path, count=36, seed=3))
    return [item for item in items if item.category == kind]


def test_position_answers_match_where_the_shapes_are_drawn(tmp_path: Path) -> None:
    for item in _by_kind(tmp_path, "position"):
        image = Image.open(item.images[0]).convert("RGB")
        found = re.fullmatch(r"Is the (\w+) \w+ .* the (\w+) \w+\?", item.question)
        assert found is not None
        axis = 0 if "left of" in item.question else 1
        centre = [_centre(_mask(image, COLORS[found.group(i)]))[axis] for i in (1, 2)]
        assert item.options is not None
        answer = item.options[ord(item.gold) - ord("A")]
        assert (centre[0] < centre[1]) == (answer in ("left of", "above"))


def test_size_answers_name_the_shape_with_more_pixels(tmp_path: Path) -> None:
    for item in _by_kind(tmp_path, "size"):
        image = Image.open(item.images[0]).convert("RGB")
        assert item.options is not None
        areas = {
            option: _mask(image, _color_in(option)).histogram()[255] for option in item.options
        }
        assert item.options[ord(item.gold) - ord("A")] == max(areas, key=areas.__getitem__)
