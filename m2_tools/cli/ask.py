"""``m2-tools ask``: one tool call from the shell.

Prints the result JSON on stdout (exit 0), or the contract error JSON on stdout
(exit 2). Progress goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from m2_tools.catalog import TOOLS
from m2_tools.cli.options import add_model_options, configure_logging, settings_from_args
from m2_tools.errors import InvalidArgument, M2Error
from m2_tools.serving.progress import ProgressEvent

__all__ = ["HELP", "add_arguments", "run"]

HELP = "Make one tool call and print the result JSON."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``ask`` options to ``parser``."""
    parser.add_argument(
        "--tool",
        choices=sorted(TOOLS),
        default="visual_math_reason",
        help="visual_math_reason for math and logic about a figure (the default), "
        "spatial_reason for the 3-D layout of a scene.",
    )
    parser.add_argument("--question", required=True, metavar="TEXT", help="The question.")
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="REF",
        help="Image path (inside an --allow-dir, by default the working directory), URL or "
        "data URI; repeatable, in order.",
    )
    parser.add_argument(
        "--video",
        default=None,
        metavar="REF",
        help="With --tool spatial_reason: a video (MP4, WebM, MOV, MKV or AVI) as a path, "
        "URL or data URI; frames are sampled evenly and follow any --image.",
    )
    parser.add_argument(
        "--max-frames",
        type=int,
        default=None,
        metavar="N",
        help="Frames to sample from --video, 1 to 32 (default 16; images and frames are at "
        "most 32 together).",
    )
    parser.add_argument(
        "--choice",
        action="append",
        default=None,
        metavar="TEXT",
        help="One answer option; repeat in order (they become A, B, C …).",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        metavar="N",
        help="Most tokens the model may write, 16 to 16384 (default 4096; 2048 for "
        "spatial_reason). Too few ends in status truncated.",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        metavar="K",
        help="Sample K answers (1 to 8) and let them vote; the result then has "
        "confidence and votes (default 1: one greedy answer).",
    )
    parser.add_argument(
        "--include-raw",
        action="store_true",
        help="Add raw_output, the model's whole text, to the result.",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="After the JSON, say on stderr what each field of this result means.",
    )
    add_model_options(parser)


def _tool_arguments(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {"question": args.question, "images": args.image}
    if args.choice is not None:
        fields["choices"] = args.choice
    if args.max_new_tokens is not None:
        fields["max_new_tokens"] = args.max_new_tokens
    if args.samples is not None:
        fields["samples"] = args.samples
    if args.include_raw:
        fields["include_raw"] = True
    if args.video is not None:
        fields["video"] = args.video
    if args.max_frames is not None:
        fields["max_frames"] = args.max_frames
    return fields


def _stderr_progress(event: ProgressEvent) -> None:
    total = f"/{event.total:g}" if event.total else ""
    sys.stderr.write(f"\r{event.phase}: {event.done:g}{total} {event.message[:60]:<60}")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    """Run one call; return 0 on a result and 2 on an error."""
    # Local import: keeps `m2-tools --help` and argument errors fast.
    from m2_tools.reasoner import M2Reasoner

    try:
        # Why: a one-shot call should wait for the whole model load, however slow.
        settings = settings_from_args(args, load_wait_s=24 * 3600.0, cache_size=0)
    except ValueError as exc:
        return _fail(InvalidArgument(f"invalid option: {exc}"))
    configure_logging(settings.log_level)
    progress = _stderr_progress if sys.stderr.isatty() else None
    try:
        with M2Reasoner(settings) as reasoner:
            result = reasoner.run_tool(args.tool, _tool_arguments(args), progress=progress)
    except M2Error as exc:
        return _fail(exc)
    finally:
        if progress is not None:
            sys.stderr.write("\n")
    print(json.dumps(result.to_payload(), ensure_ascii=False, indent=2), flush=True)
    if args.explain:
        from m2_tools.cli.explain import explain_result

        sys.stderr.write(explain_result(result) + "\n")
    return 0


def _fail(error: M2Error) -> int:
    print(json.dumps(error.to_dict(), ensure_ascii=False, indent=2))
    return 2
