"""Readers for the spatial benchmarks: CV-Bench and VSI-Bench.

- CV-Bench (``test.jsonl``, or ``test_2d``/``test_3d``): ``idx, type, task,
  filename, question, choices, answer ("(C)"), source`` with images at
  ``filename`` relative to the file.
- VSI-Bench (``test.jsonl`` or JSON): ``id, dataset, scene_name, question_type,
  question, options ("A. chair"), ground_truth``. The benchmark ships videos; the
  reader takes frames extracted beforehand into ``frames/<dataset>/<scene_name>/``
  beside the file (or ``frames_dir``), sampled evenly down to ``max_frames``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from m2_tools.evaluation._layout import read_rows
from m2_tools.evaluation.items import EvalItem, ItemsFileError

__all__ = ["VSI_NUMERIC_TYPES", "read_cvbench", "read_vsibench"]

logger = logging.getLogger(__name__)

#: VSI-Bench question types answered with a number (scored with MRA).
VSI_NUMERIC_TYPES = frozenset(
    {"object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation"}
)
_FRAME_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
_OPTION_LABEL = re.compile(r"^\s*\(?[A-Z]\)?\s*[.:)]\s*")


def read_cvbench(path: Path) -> list[EvalItem]:
    """CV-Bench: per-task categories, with the image source kept for the combined score."""
    items = []
    for row in read_rows(path):
        answer = str(row["answer"]).strip().strip("()")
        image = row.get("filename") or row.get("image")
        source = row.get("source")
        if source not in (None, "ADE20K", "COCO", "Omni3D"):
            raise ItemsFileError(f"{path}: unknown CV-Bench source {source!r}")
        items.append(
            EvalItem(
                id=str(row.get("idx", row.get("_key"))),
                benchmark="cvbench",
                category=str(row.get("task") or "all"),
                question=row["question"],
                images=[str((path.parent / str(image)).resolve())] if image else [],
                options=[str(choice) for choice in row["choices"]],
                gold=answer,
                answer_type="multiple_choice",
                source=source,
                meta={"type": row["type"]} if "type" in row else {},
            )
        )
    return items


def read_vsibench(
    path: Path, *, frames_dir: Path | None = None, max_frames: int = 16
) -> list[EvalItem]:
    """VSI-Bench: numeric tasks become ``float`` items scored with MRA, the rest letters."""
    frames_root = frames_dir if frames_dir is not None else path.parent / "frames"
    frames_cache: dict[tuple[str, str], list[str]] = {}
    missing = 0
    items = []
    for row in read_rows(path):
        scene = (str(row.get("dataset", "")), str(row.get("scene_name", "")))
        if scene not in frames_cache:
            frames_cache[scene] = _frames(frames_root / scene[0] / scene[1], max_frames)
            missing += not frames_cache[scene]
        kind = str(row["question_type"])
        numeric = kind in VSI_NUMERIC_TYPES
        options = [_OPTION_LABEL.sub("", str(option)) for option in row.get("options") or []]
        items.append(
            EvalItem(
                id=str(row.get("id", row.get("_key"))),
                benchmark="vsibench",
                category=kind,
                question=row["question"],
                images=frames_cache[scene],
                options=None if numeric or not options else options,
                gold=str(row["ground_truth"]).strip(),
                answer_type="float" if numeric else "multiple_choice",
                question_type=kind,
                meta={"dataset": scene[0], "scene_name": scene[1]},
            )
        )
    if missing:
        logger.warning(
            "%d VSI-Bench scenes have no frames under %s/<dataset>/<scene_name>/; "
            "extract frames from the videos first (see docs/eval.md)",
            missing,
            frames_root,
        )
    return items


def _frames(folder: Path, max_frames: int) -> list[str]:
    if not folder.is_dir():
        return []
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in _FRAME_SUFFIXES)
    if len(frames) > max_frames:
        step = len(frames) / max_frames
        frames = [frames[int(i * step)] for i in range(max_frames)]
    return [str(frame.resolve()) for frame in frames]
