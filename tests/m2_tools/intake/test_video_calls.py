"""``spatial_reason`` with a video: the service, the MCP and LangChain tools, ``m2-tools ask``."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import jsonschema
import pytest
from langchain_core.messages import ToolMessage
from mcp import Client
from PIL import Image

from integrations.langchain import SpatialReasonTool
from m2_tools import InvalidArgument
from m2_tools.cli import main
from m2_tools.errors import M2Error
from m2_tools.testing import ScriptedEngine
from mcp_server import create_server

from ._clips import found_x, square_x, write_clip

QUESTION = "In which direction does the white square move?"


def png_data_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.mp4", frames=24, fps=12)


def test_result_lists_the_sampled_frames_in_time_order(make_reasoner, clip: Path) -> None:
    engine = ScriptedEngine()
    reasoner = make_reasoner(engine, allowed_dirs=(clip.parent,))

    result = reasoner.spatial_reason(question=QUESTION, video=str(clip), max_frames=4)

    (request,) = engine.requests
    assert [found_x(image) for image in request.images] == [
        square_x(round(info.timestamp_s * 12), 24)  # type: ignore[operator]
        for info in result.images
    ]
    assert [info.timestamp_s for info in result.images] == pytest.approx(
        [0.25, 0.75, 1.25, 1.75], abs=1 / 12
    )
    assert {info.source for info in result.images} == {"video"}
    assert result.usage.image_tokens == 64 * 4  # the scripted engine's 64 per image


def test_images_come_first_and_frames_fill_the_room_up_to_32(make_reasoner, clip: Path) -> None:
    engine = ScriptedEngine()
    reasoner = make_reasoner(engine, allowed_dirs=(clip.parent,))

    result = reasoner.spatial_reason(
        question=QUESTION, images=[png_data_uri()] * 30, video=str(clip)
    )

    assert [info.source for info in result.images] == ["data"] * 30 + ["video"] * 2
    assert [info.timestamp_s for info in result.images[:30]] == [None] * 30
    assert len(engine.requests[0].images) == 32


async def test_the_async_path_samples_the_same_frames(make_reasoner, clip: Path) -> None:
    reasoner = make_reasoner(allowed_dirs=(clip.parent,))

    asynchronous = await reasoner.aspatial_reason(question=QUESTION, video=str(clip), max_frames=3)
    synchronous = reasoner.spatial_reason(question="again", video=str(clip), max_frames=3)

    assert asynchronous.images == synchronous.images


def test_caches_by_video_content_and_frame_count(make_reasoner, clip: Path, tmp_path: Path) -> None:
    reasoner = make_reasoner(allowed_dirs=(clip.parent,))
    copy = tmp_path / "copy.webm"
    copy.write_bytes(clip.read_bytes())

    reasoner.spatial_reason(question=QUESTION, video=str(clip), max_frames=3)

    assert reasoner.spatial_reason(
        question=QUESTION, video=str(copy), max_frames=3
    ).timings_ms.cache_hit
    assert not reasoner.spatial_reason(
        question=QUESTION, video=str(clip), max_frames=4
    ).timings_ms.cache_hit


@pytest.mark.parametrize(
    ("tool", "fields"),
    [
        ("spatial_reason", {}),
        ("spatial_reason", {"images": []}),
        ("spatial_reason", {"video": "clip.mp4", "max_frames": 0}),
        ("spatial_reason", {"video": "clip.mp4", "max_frames": 33}),
        ("spatial_reason", {"video": "", "images": ["x.png"]}),
        ("spatial_reason", {"video": "clip.mp4", "images": ["x.png"] * 32}),
        ("visual_math_reason", {"video": "clip.mp4"}),
    ],
)
def test_refuses_arguments_outside_the_schema(make_reasoner, tool: str, fields: dict) -> None:
    with pytest.raises(InvalidArgument):
        make_reasoner().run_tool(tool, {"question": QUESTION, **fields})


def test_video_errors_keep_their_image_codes(make_reasoner, clip: Path, tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "notes.mp4").write_text("not a video\n" * 10)
    reasoner = make_reasoner(allowed_dirs=(allowed,))

    codes = []
    for ref in (str(allowed / "notes.mp4"), str(clip)):
        with pytest.raises(M2Error) as caught:
            reasoner.spatial_reason(question=QUESTION, video=ref)
        codes.append(caught.value.code)

    assert codes == ["image_unsupported", "image_not_allowed"]


async def test_mcp_publishes_the_video_fields_and_returns_the_frames(
    make_reasoner, clip: Path
) -> None:
    reasoner = make_reasoner(allowed_dirs=(clip.parent,))
    async with Client(create_server(reasoner)) as client:
        tool = {t.name: t for t in (await client.list_tools()).tools}["spatial_reason"]
        result = await client.call_tool(
            "spatial_reason", {"question": QUESTION, "video": str(clip), "max_frames": 2}
        )
        fake = await client.call_tool(
            "spatial_reason", {"question": QUESTION, "video": str(clip.parent / "none.mp4")}
        )

    assert {"video", "max_frames"} <= set(tool.input_schema["properties"])
    assert result.structured_content is not None
    jsonschema.validate(result.structured_content, tool.output_schema)
    assert [i["source"] for i in result.structured_content["images"]] == ["video", "video"]
    assert fake.is_error
    assert json.loads(fake.content[0].text)["error"]["code"] == "image_not_found"  # type: ignore[union-attr]


def test_langchain_tool_takes_a_video(make_reasoner, clip: Path) -> None:
    tool = SpatialReasonTool(reasoner=make_reasoner(allowed_dirs=(clip.parent,)))
    call = {"question": QUESTION, "video": str(clip), "max_frames": 2}

    message = tool.invoke({"type": "tool_call", "id": "1", "name": tool.name, "args": call})

    assert isinstance(message, ToolMessage)
    assert [i["timestamp_s"] is not None for i in message.artifact["images"]] == [True, True]


# --- m2-tools ask on the tiny reference checkpoint ---------------------------------------------


def ask(fixture_dir: Path, allowed: Path, video: Path, *extra: str) -> list[str]:
    return [
        "ask",
        "--tool",
        "spatial_reason",
        "--model",
        str(fixture_dir / "checkpoint"),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--max-new-tokens",
        "16",
        "--allow-dir",
        str(allowed),
        "--video",
        str(video),
        "--question",
        QUESTION,
        *extra,
    ]


def test_ask_returns_the_sampled_frames_as_the_model_saw_them(
    fixture_dir: Path, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(ask(fixture_dir, clip.parent, clip, "--max-frames", "4"))

    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [image["source"] for image in result["images"]] == ["video"] * 4
    timestamps = [image["timestamp_s"] for image in result["images"]]
    assert timestamps == sorted(timestamps)
    # One token per 28x28 merged patch of each frame the model saw.
    patches = sum(i["model_width"] * i["model_height"] // 28**2 for i in result["images"])
    assert result["usage"]["image_tokens"] == patches > 0


@pytest.mark.parametrize(
    ("outside", "expected"), [(False, "image_unsupported"), (True, "image_not_allowed")]
)
def test_ask_refuses_a_fake_video_and_one_outside_the_allowed_dirs(
    fixture_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    outside: bool,
    expected: str,
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    fake = allowed / "clip.mp4"
    fake.write_text("hello\n" * 50)
    video = write_clip(tmp_path / "real.mp4") if outside else fake

    code = main(ask(fixture_dir, allowed, video))

    assert code == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == expected
