"""`m2-tools ask`: the real path end to end on the golden tiny checkpoint, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from m2_tools.cli import main

CASES = {
    "math_mc": {
        "question": "Rhombus $QRST$ has an area of 137.9 square meters. If $RT$ is 12.2 meters, "
        "find $QS$.",
        "choices": ["11.3", "22.4", "22.6", "25.6"],
        "images": ["rhombus.png"],
    },
    "spatial_jpeg": {
        "question": "Which object is closer to the camera, the red box or the blue box?\n"
        "(A) red box\n(B) blue box",
        "choices": [],
        "images": ["scene.jpg"],
    },
    "text_only": {"question": "What is 12 times 13?", "choices": [], "images": []},
}


def _ask_args(fixture_dir: Path, case: dict[str, object]) -> list[str]:
    args = [
        "ask",
        "--model",
        str(fixture_dir / "checkpoint"),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--max-new-tokens",
        "24",
        "--include-raw",
        "--allow-dir",
        str(fixture_dir / "images"),
        "--question",
        str(case["question"]),
    ]
    for choice in case["choices"]:  # type: ignore[attr-defined]
        args += ["--choice", choice]
    for image in case["images"]:  # type: ignore[attr-defined]
        args += ["--image", str(fixture_dir / "images" / image)]
    return args


@pytest.mark.parametrize("name", sorted(CASES))
def test_reproduces_the_official_output_through_the_cli(
    name: str, fixture_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = json.loads((fixture_dir / "reference" / "cases.json").read_text())[name]

    code = main(_ask_args(fixture_dir, CASES[name]))

    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["raw_output"] == reference["generated_text"]
    assert result["usage"]["prompt_tokens"] == reference["prompt_tokens"]
    assert result["usage"]["completion_tokens"] == 24
    assert result["finish_reason"] == "length"
    assert result["tool"] == "visual_math_reason"
    assert result["model"]["backend"].startswith("m2-native")
    # The model sees the image processor's patch grid: 14 px per patch.
    sizes = [[i["model_width"], i["model_height"]] for i in result["images"]]
    assert sizes == [[w * 14, h * 14] for _, h, w in reference["image_grid_thw"] or []]


def test_prints_model_unavailable_for_a_missing_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ask", "--model", str(tmp_path / "nope"), "--device", "cpu", "--question", "q"])

    error = json.loads(capsys.readouterr().out)["error"]
    assert code == 2
    assert (error["code"], error["retryable"]) == ("model_unavailable", False)


def test_refuses_an_image_outside_the_allowed_dirs(
    fixture_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = fixture_dir / "images" / "rhombus.png"

    model = str(fixture_dir / "checkpoint")
    args = ["ask", "--model", model, "--allow-dir", str(tmp_path), "--question", "q"]
    code = main([*args, "--image", str(outside)])

    assert code == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "image_not_allowed"


def test_refuses_out_of_range_arguments_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ask", "--model", str(tmp_path / "nope"), "--question", "q", "--samples", "0"])

    assert code == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "invalid_argument"


def test_console_script_keeps_stdout_for_json_only(fixture_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "m2_tools.cli", *_ask_args(fixture_dir, CASES["text_only"])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] in {"ok", "no_answer", "truncated", "ambiguous"}
