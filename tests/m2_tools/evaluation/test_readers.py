"""Readers: rows we wrote in each benchmark's released layout → items, checked at read time."""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from m2_tools.evaluation import EvalItem, ItemsFileError, load_items, read_benchmark, write_items
from m2_tools.evaluation.readers import split_embedded_choices
from m2_tools.evaluation.spatial_readers import read_vsibench

Release = Callable[[str], Path]


def _brief(item: EvalItem) -> dict[str, object]:
    """The item without images and meta, for whole-value comparisons."""
    return item.model_dump(exclude={"images", "meta"}, exclude_defaults=True)


def test_reads_mathvista_keeping_option_text_gold_and_list_answers(release: Release) -> None:
    root = release("mathvista")
    items = read_benchmark("mathvista", root / "testmini.json")

    assert [(i.id, i.answer_type, i.gold, i.precision) for i in items] == [
        ("11", "multiple_choice", "square", None),
        ("12", "integer", "3", None),
        ("13", "float", "0.5", 1),
        ("14", "list", "[2009, 2011]", None),
        ("15", "multiple_choice", "4", None),
    ]
    assert items[0].options == ["circle", "square", "triangle"]
    assert items[0].category == "geometry problem solving"
    assert items[0].images == [str(root / "images" / "11.png")]


def test_reads_mathvision_keeping_the_gold_as_released(release: Release) -> None:
    items = read_benchmark("mathvision", release("mathvision") / "test.jsonl")

    kinds = {i.id: (i.answer_type, i.gold, i.options is not None) for i in items}
    assert kinds["101"] == ("multiple_choice", "D", True)
    assert kinds["103"] == ("integer", "12", False)
    assert kinds["104"] == ("text", "$3\\sqrt{2}$", False)
    assert kinds["105"] == ("text", "B", False)  # options drawn in the image
    assert items[0].meta == {"level": 1}


def test_reads_mathverse_vision_only_rows_whose_question_is_in_the_image(release: Release) -> None:
    items = read_benchmark("mathverse", release("mathverse"))  # the directory: both files

    by_id = {item.id: item for item in items}
    assert len(items) == 10
    vision_only = by_id["205"]
    assert vision_only.category == "Vision Only"
    assert vision_only.question.startswith("According to the question shown in the image")
    assert vision_only.images[0].endswith("images_version_6/image_42.png")
    assert by_id["text-only-201"].images == []  # Text Only has no image
    assert by_id["text-only-201"].options == ["60°", "70°", "80°", "90°"]
    assert by_id["text-only-206"].options == ["True", "False"]  # a "Choice:" header
    assert by_id["text-only-206"].gold == "False"  # golds stay as released
    assert by_id["text-only-207"].gold == "(A)"
    assert by_id["text-only-208"].gold == "Circumference $=12.6 \\mathrm{~cm}$"


def test_reads_dynamath_variant_files_with_seed_variant_and_numeric_int_golds(
    release: Release,
) -> None:
    items = read_benchmark("dynamath", release("dynamath"))

    assert len(items) == 10
    first = {item.id: item for item in items if item.variant == 1}
    assert _brief(first["8-v1"]) == {
        "id": "8-v1",
        "benchmark": "dynamath",
        "category": "statistics",
        "question": "Is the red bar taller than the blue bar?",
        "options": ["yes", "no"],
        "gold": "A",
        "answer_type": "multiple_choice",
        "seed_id": "8",
        "variant": 1,
    }
    assert first["10-v1"].answer_type == "float"  # an "int" gold such as -7.000000000000001
    assert first["9-v1"].answer_type == "text"
    assert first["11-v1"].answer_type == "text"  # "single answer" compares as text


def test_reads_wemath_linking_steps_to_their_composite(release: Release) -> None:
    items = read_benchmark("wemath", release("wemath") / "testmini.json")

    by_id = {item.id: item for item in items}
    multi = by_id["3steps_1@3steps_multi"]
    assert (multi.composite_id, multi.step_role, multi.num_steps, multi.category) == (
        "3steps_1",
        "composite",
        3,
        "three-step",
    )
    assert by_id["2steps_1@2steps_2"].step_role == "step_2"
    assert by_id["2steps_1@2steps_2"].options == ["4 cm", "6 cm", "8 cm.", "No correct answer"]
    # A letter glued to a ';' (a release typo) is not an option label.
    assert by_id["2steps_2@2steps_1"].options == [
        "Point P lies on the line through ;O.",
        "Point Q",
        "Point R",
        "No correct answer",
    ]


def test_reads_logicvista_options_written_on_one_line(release: Release) -> None:
    items = read_benchmark("logicvista", release("logicvista") / "dataset.json")

    by_id = {item.id: item for item in items}
    assert by_id["v1_902"].options == ["9", "11", "13", "15"]
    assert (
        by_id["v1_902"].question
        == "How many squares will the 5th figure have? Select answers from A-D."
    )
    assert by_id["v1_903"].options == ["Alpha Ltd", "Beta Co.", "Gamma Plc"]
    assert by_id["v1_905"].options is None  # labels without text: the options are in the image
    assert (by_id["v1_901"].gold, by_id["v1_901"].answer_type) == ("B,D", "multi_select")
    assert (by_id["v1_904"].gold, by_id["v1_904"].answer_type) == ("2", "integer")
    assert by_id["v1_900"].category == "inductive"


def test_reads_cvbench_from_its_two_files_or_its_directory(release: Release) -> None:
    root = release("cvbench")

    from_dir = read_benchmark("cvbench", root)
    from_files = read_benchmark("cvbench", [root / "test_2d.jsonl", root / "test_3d.jsonl"])

    assert [i.id for i in from_dir] == [i.id for i in from_files]
    assert [(i.id, i.category, i.gold, i.source, i.meta["type"]) for i in from_dir] == [
        ("2D-0", "Count", "B", "ADE20K", "2D"),
        ("2D-1", "Count", "A", "COCO", "2D"),
        ("2D-2", "Relation", "B", "COCO", "2D"),
        ("3D-3", "Depth", "A", "Omni3D", "3D"),
        ("3D-4", "Distance", "B", "Omni3D", "3D"),
    ]
    assert from_dir[0].resolved_tool == "spatial_reason"


def test_reads_vsibench_items_with_their_scene_videos(release: Release) -> None:
    root = release("vsibench")

    items = read_benchmark("vsibench", root / "test.jsonl")

    assert items[0].video == str((root / "arkitscenes" / "40000001.mp4").resolve())
    assert items[0].images == []
    assert (items[0].answer_type, items[0].options) == ("float", None)
    assert items[3].options == ["left", "right"]  # "A. left" labels stripped
    assert items[3].answer_type == "multiple_choice"


def test_vsibench_falls_back_to_extracted_frames_when_a_scene_has_no_video(
    release: Release,
) -> None:
    root = release("vsibench")
    (root / "scannetpp" / "ab12cd34ef.mp4").unlink()
    frames = root / "frames" / "scannetpp" / "ab12cd34ef"
    frames.mkdir(parents=True)
    for i in range(20):
        Image.new("RGB", (8, 8)).save(frames / f"{i:03d}.jpg")

    items = read_vsibench(root / "test.jsonl", max_frames=4)

    route = items[-1]
    assert route.video is None
    assert [Path(p).name for p in route.images] == ["000.jpg", "005.jpg", "010.jpg", "015.jpg"]


def test_a_missing_video_is_found_at_read_time_with_how_to_get_it(release: Release) -> None:
    root = release("vsibench")
    shutil.rmtree(root / "scannet")

    with pytest.raises(ItemsFileError, match=r"scannet\.zip"):
        read_benchmark("vsibench", root / "test.jsonl")


@pytest.mark.parametrize(
    ("name", "path", "missing"),
    [
        ("cvbench", "test_2d.jsonl", "img/2D/count/ade20k_0.png"),
        ("mathvista", "testmini.json", "images/12.png"),
        ("logicvista", "dataset.json", "images/v1_903.png"),
        ("wemath", "testmini.json", "3steps/image/1-2.png"),
    ],
)
def test_missing_images_are_found_at_read_time(
    name: str, path: str, missing: str, release: Release
) -> None:
    root = release(name)
    (root / missing).unlink()

    with pytest.raises(ItemsFileError) as caught:
        read_benchmark(name, root / path)

    assert missing.split("/")[-1] in str(caught.value)


def test_an_image_embedded_by_a_parquet_export_becomes_a_data_uri(tmp_path: Path) -> None:
    png = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(png, format="PNG")
    row = json.loads(
        (Path(__file__).parent / "data/cvbench/test_3d.jsonl").read_text().split("\n")[0]
    )
    row["image"] = {"bytes": base64.b64encode(png.getvalue()).decode(), "path": None}
    (tmp_path / "test_3d.jsonl").write_text(json.dumps(row) + "\n")

    [item] = read_benchmark("cvbench", tmp_path / "test_3d.jsonl")

    assert item.images[0].startswith("data:image/png;base64,")
    assert base64.b64decode(item.images[0].split(",", 1)[1]) == png.getvalue()


def test_reads_parquet_releases_with_embedded_images(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    png = io.BytesIO()
    Image.new("RGB", (4, 4), "blue").save(png, format="PNG")
    rows = [
        json.loads(line)
        for line in (Path(__file__).parent / "data/cvbench/test_2d.jsonl").read_text().splitlines()
    ]
    for row in rows:
        row["image"] = {"bytes": png.getvalue(), "path": None}
        row["choices"] = [str(c) for c in row["choices"]]
        del row["bbox"], row["target_class"], row["target_size"]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test_2d.parquet")

    items = read_benchmark("cvbench", tmp_path)

    assert [item.id for item in items] == ["2D-0", "2D-1", "2D-2"]
    assert all(item.images[0].startswith("data:image/png;base64,") for item in items)


@pytest.mark.parametrize(
    ("question", "stem", "options"),
    [
        ("Find x.\nChoices:\nA:8\nB:10\nC:12", "Find x.", ["8", "10", "12"]),
        ("Is it? Choices: (A) yes (B) no", "Is it?", ["yes", "no"]),
        ("True or false?\nChoice:\nA. True\nB. False", "True or false?", ["True", "False"]),
        ("Pick one.\nA. red\nB. green", "Pick one.", ["red", "green"]),
        (
            "How many? Select from A-C. \n A) 3 B) 4 C) 5",
            "How many? Select from A-C.",
            ["3", "4", "5"],
        ),
        ("Which? (A) one (B) two", "Which?", ["one", "two"]),
        ("Which rotation? (A) (B) (C)", "Which rotation? (A) (B) (C)", None),
        (
            "Point A) is where the lines meet; what is B?",
            "Point A) is where the lines meet; what is B?",
            None,
        ),
        ("No options here.", "No options here.", None),
    ],
)
def test_split_embedded_choices_handles_the_released_layouts(
    question: str, stem: str, options: list[str] | None
) -> None:
    assert split_embedded_choices(question) == (stem, options)


def test_unknown_format_and_missing_fields_are_items_file_errors(tmp_path: Path) -> None:
    (tmp_path / "test.jsonl").write_text(json.dumps({"idx": 1, "question": "q?"}) + "\n")

    with pytest.raises(ItemsFileError):
        read_benchmark("nope", tmp_path / "test.jsonl")
    with pytest.raises(ItemsFileError, match="'choices'"):
        read_benchmark("cvbench", tmp_path / "test.jsonl")
    with pytest.raises(ItemsFileError):
        read_benchmark("cvbench", tmp_path / "missing.jsonl")
    with pytest.raises(ItemsFileError):
        read_benchmark("dynamath", tmp_path)  # a directory without variant files


def test_items_jsonl_round_trips_and_resolves_relative_media(tmp_path: Path) -> None:
    item = EvalItem(
        id="a",
        benchmark="vsibench",
        question="How many chairs?",
        images=["frames/1.png"],
        video="videos/scene.mp4",
        gold="3",
        answer_type="float",
    )
    path = tmp_path / "sub" / "items.jsonl"

    assert write_items([item], path) == 1
    [loaded] = load_items(path)

    assert loaded.images == [str(tmp_path / "sub" / "frames" / "1.png")]
    assert loaded.video == str(tmp_path / "sub" / "videos" / "scene.mp4")
    assert loaded.model_dump(exclude={"images", "video"}) == item.model_dump(
        exclude={"images", "video"}
    )


def test_invalid_or_duplicate_items_are_rejected(tmp_path: Path) -> None:
    line = {"id": "a", "benchmark": "x", "question": "q", "gold": "1", "answer_type": "integer"}
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(line) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(ItemsFileError, match="duplicate"):
        load_items(path)
    path.write_text(json.dumps({**line, "answer_type": "essay"}) + "\n")
    with pytest.raises(ItemsFileError, match=r":1: answer_type"):
        load_items(path)
