"""The native engine's side of the vLLM parity job (run with m2-tools' own environment).

vLLM's CPU build pins a transformers below the one m2-tools needs, so the two engines live
in two virtual environments. This script runs in m2-tools' environment: it writes the test
checkpoints (``small``, head size 32, and a 1-D RoPE copy of it) and, for each parity case,
what the native engine makes of it: the prompt ids, the image patches and embeddings, and the
greedy tokens. It also records the native engine's refusal message for each broken config.
The vLLM side (``test_parity.py``, in the vLLM environment) compares against these files.

Usage: ``python native_reference.py OUT_DIR`` writes ``OUT_DIR/{small,small-1d}`` (checkpoints),
``OUT_DIR/reference.json`` and ``OUT_DIR/reference.safetensors``.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors.torch import save_file

from m2_tools import Settings
from m2_tools.engines.m2_native import M2NativeEngine
from m2_tools.engines.m2_native.config import parse_config
from m2_tools.engines.m2_native.generation import DecodeOptions, generate_batch
from m2_tools.errors import ModelUnavailable
from m2_tools.prompts import SYSTEM_PROMPT, build_user_text

GREEDY_TOKENS = 24
IMAGES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "m2-tiny-reference" / "images"

#: name → (question, choices, image files).
CASES: dict[str, tuple[str, list[str] | None, list[str]]] = {
    "text": ("What is 17 times 23? Explain step by step.", None, []),
    "one_image": (
        "Rhombus QRST has an area of 137.9 square meters. If RT is 12.2 meters, find QS.",
        ["11.3", "22.4", "22.6", "25.6"],
        ["rhombus.png"],
    ),
    "two_images": (
        "Which object is closer to the camera in both views?",
        None,
        ["scene.jpg", "rhombus.png"],
    ),
}


def write_checkpoints(out: Path) -> tuple[Path, Path]:
    """The ``small`` checkpoint (head size 32, big enough for vLLM's CPU kernels) and a 1-D copy."""
    small, flat = out / "small", out / "small-1d"
    if not (small / "config.json").exists():
        subprocess.run(
            [sys.executable, "-m", "m2_tools.cli", "make-tiny-model", "--preset", "small",
             "--init-std", "0.2", "--overwrite", str(small)],
            check=True,
        )  # fmt: skip
    shutil.rmtree(flat, ignore_errors=True)
    shutil.copytree(small, flat)
    config = json.loads((flat / "config.json").read_text(encoding="utf-8"))
    config["llm_config"]["use_llm_3drope"] = False
    (flat / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return small, flat


def refusals(checkpoint: Path) -> list[dict[str, Any]]:
    """Broken variants of a good config, each with the native engine's message."""
    good = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    variants: list[tuple[str, Any]] = []

    def variant(name: str, edit: Any) -> None:
        raw = copy.deepcopy(good)
        edit(raw)
        variants.append((name, raw))

    variant("rope_true", lambda r: r["llm_config"].update(use_llm_3drope=True))
    variant("rope_unknown", lambda r: r["llm_config"].update(use_llm_3drope="yarn"))
    variant("rope_missing", lambda r: r["llm_config"].pop("use_llm_3drope"))
    variant("no_hidden", lambda r: r["llm_config"].pop("hidden_size"))
    variant("bad_heads", lambda r: r["llm_config"].update(num_attention_heads=7))
    variant(
        "bad_section", lambda r: r["llm_config"]["rope_scaling"].update(mrope_section=[1, 2, 3])
    )
    variant("no_depth", lambda r: r.update(mlp_depths=0))
    variant("no_vision", lambda r: r.pop("vision_config"))
    variant("vision_heads", lambda r: r["vision_config"].update(num_heads=5))
    variant("not_int", lambda r: r["llm_config"].update(image_patch_token="x"))
    found = []
    for name, raw in variants:
        try:
            parse_config(raw, source="/ckpt/config.json")
        except ModelUnavailable as exc:
            found.append({"name": name, "config": raw, "message": exc.message})
        else:
            raise AssertionError(f"the native engine accepted the {name} config")
    return found


def native_case(
    engine: M2NativeEngine, question: str, choices: list[str] | None, files: list[str]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """One case through the native engine: ids, greedy tokens, image patches and embeddings."""
    images = [Image.open(IMAGES / name) for name in files]
    user = build_user_text(question, choices)
    prepared = engine.processor.prepare(SYSTEM_PROMPT, user, images)
    [row] = generate_batch(
        engine.model,
        [prepared],
        [DecodeOptions(max_new_tokens=GREEDY_TOKENS)],
        stop_ids=engine.processor.stop_ids,
        pad_id=engine.processor.pad_id,
    )
    tensors: dict[str, torch.Tensor] = {}
    if prepared.pixel_values is not None and prepared.image_grid_thw is not None:
        with torch.no_grad():
            embeds = engine.model.embed_images(prepared.pixel_values, prepared.image_grid_thw)
        tensors = {
            "pixel_values": prepared.pixel_values.contiguous(),
            "image_grid_thw": prepared.image_grid_thw.contiguous(),
            "image_embeds": embeds.contiguous(),
        }
    record = {
        "system": SYSTEM_PROMPT,
        "user": user,
        "images": [str(IMAGES / name) for name in files],
        "prompt": engine.processor.prompt_text(SYSTEM_PROMPT, user, len(images)),
        "prompt_ids": prepared.input_ids,
        "greedy_ids": row.token_ids,
        "stop_ids": list(engine.processor.stop_ids),
    }
    return record, tensors


def main(out: Path) -> None:
    """Write the checkpoints and the native references under ``out``."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    small, flat = write_checkpoints(out)
    reference: dict[str, Any] = {"greedy_tokens": GREEDY_TOKENS, "checkpoints": {}}
    tensors: dict[str, torch.Tensor] = {}
    for label, checkpoint in (("m_rope", small), ("1d", flat)):
        engine = M2NativeEngine(Settings(model=str(checkpoint), device="cpu", dtype="float32"))
        engine.load()
        cases = {}
        for name, (question, choices, files) in CASES.items():
            cases[name], found = native_case(engine, question, choices, files)
            tensors.update({f"{label}/{name}/{key}": value for key, value in found.items()})
        reference["checkpoints"][label] = {"path": str(checkpoint), "cases": cases}
        engine.close()
    reference["refusals"] = refusals(small)
    (out / "reference.json").write_text(json.dumps(reference, indent=1), encoding="utf-8")
    save_file(tensors, str(out / "reference.safetensors"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
