"""A run directory: refusing to overwrite a run, and the settings ``run.json`` records."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ARTIFACTS",
    "RECORDS",
    "RUN_INFO",
    "OutputDirNotEmpty",
    "RunConflict",
    "check_resumable",
    "prepare_out_dir",
    "read_run_info",
    "record_count",
    "same_model",
    "write_run_info",
]

logger = logging.getLogger(__name__)

RECORDS = "records.jsonl"
RUN_INFO = "run.json"
#: Files a run writes into its directory (``overwrite`` removes exactly these).
ARTIFACTS = (RECORDS, RUN_INFO, "report.json", "report.md", "scores.png")
# Inputs the CLI writes beside them (the converted items, the drawn synthetic suite).
_INPUTS = ("items.jsonl", "synthetic")


class OutputDirNotEmpty(Exception):
    """The output directory holds a run (or other files) and neither resume nor overwrite
    was asked for."""


class RunConflict(ValueError):
    """A resumed run was given a model, sample count or token limit other than its own."""


def prepare_out_dir(out_dir: Path, *, resume: bool = False, overwrite: bool = False) -> None:
    """Create ``out_dir``, refusing one that holds a run unless resuming or overwriting.

    A directory left by a run that recorded nothing (it failed before its first item)
    is reused as it is. ``overwrite`` removes only the run's own files (:data:`ARTIFACTS`).

    Raises:
        OutputDirNotEmpty: ``out_dir`` holds records, or files that are not a run's, and
            neither flag is set; the message says which flag to pass.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        return
    if overwrite:
        for name in ARTIFACTS:
            (out_dir / name).unlink(missing_ok=True)
        return
    recorded = record_count(out_dir / RECORDS)
    if recorded:
        raise OutputDirNotEmpty(
            f"{out_dir} holds a run with {recorded} recorded items; pass --resume to continue "
            "it, or --overwrite to start it again"
        )
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in (*ARTIFACTS, *_INPUTS))
    if foreign:
        raise OutputDirNotEmpty(
            f"{out_dir} is not empty ({', '.join(foreign[:3])}); pass --overwrite to run there "
            "anyway (only the run's own files are replaced), or choose another --out"
        )
    for name in ARTIFACTS:
        (out_dir / name).unlink(missing_ok=True)


def record_count(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def read_run_info(out_dir: Path) -> dict[str, Any]:
    """The facts ``run.json`` recorded about the run in ``out_dir`` (empty when none)."""
    path = out_dir / RUN_INFO
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        logger.warning("%s is unreadable; the run's settings are unknown", path)
        return {}
    return info if isinstance(info, dict) else {}


def same_model(a: str, b: str) -> bool:
    """Whether two model references name the same model (paths compared resolved)."""
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def check_resumable(out_dir: Path, settings: Mapping[str, Any]) -> None:
    """Refuse to resume the run in ``out_dir`` with other settings than it recorded.

    Raises:
        RunConflict: ``settings`` names another model, sample count or token limit.
    """
    recorded = read_run_info(out_dir)
    model, wanted = recorded.get("model"), settings.get("model")
    if model and wanted and not same_model(str(model), str(wanted)):
        raise RunConflict(
            f"the run in {out_dir} used the model {model!r}, not {wanted!r}; resume it without "
            "--model (its model is reused), or start a new run with another --out"
        )
    for key, flag in (("samples", "--samples"), ("max_new_tokens", "--max-new-tokens")):
        if key in recorded and key in settings and recorded[key] != settings[key]:
            raise RunConflict(
                f"the run in {out_dir} used {flag} {recorded[key]}, not {settings[key]}; "
                f"resume it without {flag}, or start a new run with another --out"
            )


def write_run_info(out_dir: Path, facts: Mapping[str, Any], *, resume: bool) -> None:
    """Write ``run.json``; a resumed run keeps what it recorded (checked to agree)."""
    path = out_dir / RUN_INFO
    info = read_run_info(out_dir) if resume else {}
    info.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    for key, value in facts.items():
        if info.get(key) is None or key == "items":
            info[key] = value
    path.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
