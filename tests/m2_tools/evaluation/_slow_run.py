"""A child process for the kill test: a slow scripted run that the test SIGKILLs mid-way.

Usage: python _slow_run.py ITEMS_JSONL OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from m2_tools import M2Reasoner, Settings
from m2_tools.evaluation import RunOptions, load_items, run_evaluation
from m2_tools.testing import ScriptedEngine

REPLY = "<think>\nworking it out slowly\n</think>\n<answer>\n\\boxed{1}\n</answer>"


def main() -> None:
    items_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    engine = ScriptedEngine(default=REPLY, token_delay_s=0.03, max_batch=2)
    settings = Settings(allowed_dirs=(items_path.parent,), cache_size=0, max_batch_size=2)
    with M2Reasoner(settings, engine=engine) as reasoner:
        options = RunOptions(concurrency=2, progress=False, resume=True)
        run_evaluation(reasoner, load_items(items_path), out, options)


if __name__ == "__main__":
    main()
