"""Readers for the spatial benchmarks: CV-Bench and VSI-Bench.

- CV-Bench ships two files, ``test_2d`` and ``test_3d`` (JSONL or Parquet): ``idx,
  type, task, filename, question, choices, answer ("(C)"), source``. Images are at
  ``filename`` relative to the file (the ``img/`` folder the release's build script
  writes), or embedded in the Parquet files' ``image`` column.
- VSI-Bench (``test.jsonl``, JSON or Parquet): ``id, dataset, scene_name,
  question_type, question, options ("A. chair"), ground_truth``. Each item carries
  its scene's video, ``<dataset>/<scene_name>.mp4`` under the release directory (the
  unzipped ``arkitscenes.zip``, ``scannet.zip``, ``scannetpp.zip``), sent to
  ``spatial_reason`` as ``video``. Frames extracted beforehand into
  ``frames/<dataset>/<scene_name>/`` are used instead when a scene has no video.
"""

from __future__ import annotations

import re
from pathlib import Path

from m2_tools.evaluation._layout import (
    annotation_files,
    image_refs,
    read_rows,
    require_files,
)
from m2_tools.evaluation.items import EvalItem, ItemsFileError

__all__ = ["VSI_NUMERIC_TYPES", "read_cvbench", "read_vsibench"]

#: VSI-Bench question types answered with a number (scored with MRA).
VSI_NUMERIC_TYPES = frozenset(
    {"object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation"}
)
_CV_SOURCES = (None, "ADE20K", "COCO", "Omni3D")
_FRAME_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
_VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi")
_OPTION_LABEL = re.compile(r"^\s*\(?[A-Z]\)?\s*[.:)]\s*")
_CV_HINT = (
    "CV-Bench's img/ folder is written by the release's build script: run it, or read "
    "the release's test_2d.parquet and test_3d.parquet, which embed the images (needs pyarrow)"
)


def read_cvbench(path: Path) -> list[EvalItem]:
    """CV-Bench: per-task categories; the source and the 2D/3D split are kept for the
    combined score."""
    items: list[EvalItem] = []
    names = ["test_[23]d.*", "test.*", "*.jsonl", "*.parquet"]
    for file in annotation_files(path, names, how="test_2d and test_3d (.jsonl or .parquet)"):
        start = len(items)
        for row in read_rows(file):
            source = row.get("source")
            if source not in _CV_SOURCES:
                raise ItemsFileError(f"{file}: unknown CV-Bench source {source!r}")
            split = str(row.get("type") or ("3D" if source == "Omni3D" else "2D"))
            refs = image_refs(row.get("filename"), file.parent)
            if not (refs and Path(refs[0]).is_file()) and row.get("image"):
                refs = image_refs(row.get("image"), file.parent) or refs
            items.append(
                EvalItem(
                    id=f"{split}-{row.get('idx', row.get('_key'))}",
                    benchmark="cvbench",
                    category=str(row.get("task") or "all"),
                    question=row["question"],
                    images=refs,
                    options=[str(choice) for choice in row["choices"]],
                    gold=str(row["answer"]).strip().strip("()"),
                    answer_type="multiple_choice",
                    source=source,
                    meta={"type": split, "idx": row.get("idx")},
                )
            )
        require_files(items[start:], file, _CV_HINT)
    return items


def read_vsibench(
    path: Path, *, videos_dir: Path | None = None, max_frames: int = 16
) -> list[EvalItem]:
    """VSI-Bench: numeric tasks become ``float`` items scored with MRA, the rest letters.

    Args:
        path: ``test.jsonl`` (or JSON/Parquet), or the release directory holding it.
        videos_dir: Where ``<dataset>/<scene_name>.mp4`` lie; default: beside the file.
        max_frames: Frames taken from a ``frames/`` folder, sampled evenly, when a scene
            has no video.
    """
    items: list[EvalItem] = []
    names = ["test.*", "*.jsonl", "*.parquet", "*.json"]
    for file in annotation_files(path, names, how="test.jsonl (or .parquet)"):
        root = videos_dir if videos_dir is not None else file.parent
        scenes: dict[tuple[str, str], tuple[str | None, list[str]]] = {}
        missing: list[str] = []
        for row in read_rows(file):
            scene = (str(row.get("dataset", "")), str(row.get("scene_name", "")))
            if scene not in scenes:
                scenes[scene] = _scene_media(root, scene, max_frames)
                if scenes[scene] == (None, []):
                    missing.append(str(root / scene[0] / f"{scene[1]}.mp4"))
            video, frames = scenes[scene]
            items.append(_vsi_item(row, scene, video, frames))
        if missing:
            raise ItemsFileError(
                f"{file}: {len(missing)} scenes have no video (first: {missing[0]}); unzip the "
                "release's arkitscenes.zip, scannet.zip and scannetpp.zip beside test.jsonl"
            )
    return items


def _vsi_item(
    row: dict[str, object], scene: tuple[str, str], video: str | None, frames: list[str]
) -> EvalItem:
    kind = str(row["question_type"])
    numeric = kind in VSI_NUMERIC_TYPES
    raw_options = row.get("options") or []
    options = [_OPTION_LABEL.sub("", str(option)) for option in raw_options]  # type: ignore[attr-defined]
    return EvalItem(
        id=str(row.get("id", row.get("_key"))),
        benchmark="vsibench",
        category=kind,
        question=str(row["question"]),
        images=[] if video else frames,
        video=video,
        options=None if numeric or not options else options,
        gold=str(row["ground_truth"]).strip(),
        answer_type="float" if numeric else "multiple_choice",
        question_type=kind,
        meta={"dataset": scene[0], "scene_name": scene[1]},
    )


def _scene_media(
    root: Path, scene: tuple[str, str], max_frames: int
) -> tuple[str | None, list[str]]:
    for suffix in _VIDEO_SUFFIXES:
        video = root / scene[0] / f"{scene[1]}{suffix}"
        if video.is_file():
            return str(video.resolve()), []
    return None, _frames(root / "frames" / scene[0] / scene[1], max_frames)


def _frames(folder: Path, max_frames: int) -> list[str]:
    if not folder.is_dir():
        return []
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in _FRAME_SUFFIXES)
    if len(frames) > max_frames:
        step = len(frames) / max_frames
        frames = [frames[int(i * step)] for i in range(max_frames)]
    return [str(frame.resolve()) for frame in frames]
