"""Readers: sample files in each benchmark's published layout → items; the items JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m2_tools.evaluation import EvalItem, ItemsFileError, load_items, read_benchmark, write_items
from m2_tools.evaluation.readers import split_embedded_choices
from m2_tools.evaluation.spatial_readers import read_vsibench


def _brief(item: EvalItem) -> dict[str, object]:
    """The item without images and meta, for whole-value comparisons."""
    return item.model_dump(exclude={"images", "meta"}, exclude_defaults=True)


def test_reads_mathvista_testmini_with_option_text_gold(data_dir: Path) -> None:
    items = read_benchmark("mathvista", data_dir / "mathvista" / "testmini.json")

    assert [_brief(item) for item in items] == [
        {
            "id": "1",
            "benchmark": "mathvista",
            "category": "geometry problem solving",
            "question": "Which shape has the largest area?",
            "options": ["circle", "square", "triangle"],
            "gold": "square",
            "answer_type": "multiple_choice",
        },
        {
            "id": "2",
            "benchmark": "mathvista",
            "category": "figure question answering",
            "question": "How many bars are taller than 40?",
            "gold": "3",
            "answer_type": "integer",
        },
        {
            "id": "3",
            "benchmark": "mathvista",
            "category": "textbook question answering",
            "question": "What is the slope of the line?",
            "gold": "0.5",
            "answer_type": "float",
            "precision": 1,
        },
        {
            "id": "4",
            "benchmark": "mathvista",
            "category": "figure question answering",
            "question": "What is the label of the top-left cell?",
            "gold": "[1, 2]",
            "answer_type": "text",
        },
    ]
    assert items[0].images == [str(data_dir / "mathvista" / "images" / "1.jpg")]
    assert items[0].meta["skills"] == ["geometry reasoning"]


def test_reads_mathvision_with_letters_for_options_and_numbers_otherwise(data_dir: Path) -> None:
    items = read_benchmark("mathvision", data_dir / "mathvision" / "test.jsonl")

    kinds = [(i.id, i.answer_type, i.gold, i.category) for i in items]
    assert kinds == [
        ("1", "multiple_choice", "C", "combinatorial geometry"),
        ("2", "integer", "12", "counting"),
        ("3", "text", "\\frac{3}{4}", "metric geometry - area"),
        ("4", "float", "1.414", "metric geometry - length"),
    ]
    assert items[0].options == ["A", "B", "C", "D", "E"]
    assert items[1].options is None
    assert items[2].meta == {"level": 3}


def test_reads_mathverse_splitting_embedded_choices(data_dir: Path) -> None:
    items = read_benchmark("mathverse", data_dir / "mathverse" / "testmini.json")

    first, vision_only, free_form = items
    assert first.question == (
        "As shown in the figure, AB is parallel to CD and angle 1 = 50.0, then angle 2 is ()"
    )
    assert first.options == ["40°", "50°", "130°", "140°"]
    assert (first.gold, first.category) == ("C", "Text Dominant")
    assert vision_only.options is None and vision_only.answer_type == "multiple_choice"
    assert (free_form.answer_type, free_form.gold, free_form.category) == (
        "float",
        "50.3",
        "Text Lite",
    )
    assert first.images == [str(data_dir / "mathverse" / "images_version_1-4" / "image_1.png")]


def test_reads_dynamath_variant_files_with_seed_and_variant(data_dir: Path) -> None:
    items = read_benchmark("dynamath", data_dir / "dynamath")

    assert [(i.id, i.seed_id, i.variant, i.answer_type, i.gold) for i in items] == [
        ("1-v1", "1", 1, "float", "4.0"),
        ("2-v1", "2", 1, "multiple_choice", "B"),
        ("1-v2", "1", 2, "float", "5.5"),
        ("2-v2", "2", 2, "multiple_choice", "C"),
    ]
    assert items[1].question == "Which point is the highest?"
    assert items[1].options == ["P", "Q", "R"]
    assert items[2].images == [str(data_dir / "dynamath" / "images" / "variant2" / "1.png")]


def test_reads_wemath_linking_steps_to_their_composite(data_dir: Path) -> None:
    items = read_benchmark("wemath", data_dir / "wemath" / "testmini.json")

    links = [(i.id, i.composite_id, i.step_role, i.num_steps, i.category) for i in items]
    assert links == [
        ("7@2steps_1", "7", "step_1", 2, "one-step"),
        ("7@2steps_2", "7", "step_2", 2, "one-step"),
        ("7@2steps_multi", "7", "composite", 2, "two-step"),
        ("9@3steps_1", "9", "step_1", 3, "one-step"),
        ("9@3steps_2", "9", "step_2", 3, "one-step"),
        ("9@3steps_3", "9", "step_3", 3, "one-step"),
        ("9@3steps_multi", "9", "composite", 3, "three-step"),
    ]
    assert items[0].options == ["3 cm", "4 cm", "5 cm", "6 cm", "No correct answer"]
    assert items[0].gold == "B"


def test_reads_logicvista_with_multi_select_gold_and_skill_categories(data_dir: Path) -> None:
    items = read_benchmark("logicvista", data_dir / "logicvista" / "dataset.json")

    assert [(i.id, i.answer_type, i.gold, i.category) for i in items] == [
        ("0", "multiple_choice", "B", "inductive"),
        ("1", "multi_select", "A,C", "deductive"),
        ("2", "multiple_choice", "D", "mechanical"),
    ]
    assert items[0].options == ["the circle", "the square", "the star", "the cross"]
    assert items[1].options == ["x > 2", "y < 1", "x + y = 5", "x = y"]
    assert items[2].options is None  # options live in the image
    assert items[0].images == [str(data_dir / "logicvista" / "0.jpg")]


def test_reads_cvbench_with_task_source_and_letter_gold(data_dir: Path) -> None:
    items = read_benchmark("cvbench", data_dir / "cvbench" / "test.jsonl")

    assert [(i.id, i.category, i.source, i.gold, i.resolved_tool) for i in items] == [
        ("0", "Count", "ADE20K", "C", "spatial_reason"),
        ("1", "Relation", "COCO", "B", "spatial_reason"),
        ("2", "Depth", "Omni3D", "A", "spatial_reason"),
        ("3", "Distance", "Omni3D", "B", "spatial_reason"),
    ]
    assert items[0].options == ["3", "2", "1", "0"]
    assert items[0].images == [str(data_dir / "cvbench" / "img" / "2D" / "count" / "ade20k_10.png")]


def test_reads_vsibench_with_frames_numeric_tasks_and_stripped_option_labels(
    data_dir: Path, tmp_path: Path
) -> None:
    scene = tmp_path / "arkitscenes" / "41069025"
    scene.mkdir(parents=True)
    for n in range(40):
        (scene / f"{n:03d}.jpg").write_bytes(b"")

    items = read_vsibench(data_dir / "vsibench" / "test.jsonl", frames_dir=tmp_path, max_frames=8)

    assert [(i.id, i.question_type, i.answer_type, i.gold) for i in items] == [
        ("0", "object_counting", "float", "4"),
        ("1", "room_size_estimation", "float", "18.6"),
        ("2", "object_rel_direction_easy", "multiple_choice", "A"),
        ("3", "obj_appearance_order", "multiple_choice", "C"),
    ]
    assert items[2].options == ["left", "right"]
    assert [Path(p).name for p in items[0].images] == [f"{n:03d}.jpg" for n in range(0, 40, 5)]
    assert items[2].images == []  # the scannet scene has no frames extracted


def test_split_embedded_choices_handles_the_usual_layouts() -> None:
    assert split_embedded_choices("Q?\nChoices:\nA:40°\nB:50°") == ("Q?", ["40°", "50°"])
    assert split_embedded_choices("Q?\n(A) P\n(B) Q") == ("Q?", ["P", "Q"])
    assert split_embedded_choices("Q? Options: A. one B. two") == ("Q?", ["one", "two"])
    assert split_embedded_choices("Mr. A. Smith met B. Jones.") == (
        "Mr. A. Smith met B. Jones.",
        None,
    )
    assert split_embedded_choices("Pick.\nB. out of order\nA. first") == (
        "Pick.\nB. out of order\nA. first",
        None,
    )


def test_unknown_format_and_missing_fields_are_items_file_errors(
    data_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "test.jsonl"
    broken.write_text(json.dumps({"id": 1, "question": "no answer"}) + "\n")

    with pytest.raises(ItemsFileError):
        read_benchmark("nope", broken)
    with pytest.raises(ItemsFileError):
        read_benchmark("mathvision", broken)
    with pytest.raises(ItemsFileError):
        read_benchmark("mathvista", tmp_path / "missing.json")


def test_items_jsonl_round_trips_and_resolves_relative_images(tmp_path: Path) -> None:
    item = EvalItem(
        id="a",
        benchmark="synthetic",
        question="How many?",
        images=["images/a.png", "data:image/png;base64,AAAA", "https://example.org/x.png"],
        gold=3,
        answer_type="integer",
    )
    path = tmp_path / "set" / "items.jsonl"

    write_items([item], path)
    (loaded,) = load_items(path)

    assert loaded.gold == "3"
    assert loaded.images == [
        str(tmp_path / "set" / "images" / "a.png"),
        "data:image/png;base64,AAAA",
        "https://example.org/x.png",
    ]
    assert loaded.model_copy(update={"images": item.images}) == item


def test_invalid_or_duplicate_items_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    good = {"id": "a", "benchmark": "b", "question": "q", "gold": "A", "answer_type": "text"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "answer_type": "essay"}) + "\n")

    with pytest.raises(ItemsFileError):
        load_items(path)

    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(ItemsFileError):
        load_items(path)
