"""Video intake: sampled frames in time order, the image policy for references, the limits."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import av
import av.video.stream
import httpx
import pytest
from PIL import Image

from m2_tools.errors import M2Error
from m2_tools.intake.images import ImageIntake
from m2_tools.intake.video import VideoIntake, VideoLimits

from ._clips import (
    CONTAINERS,
    HEIGHT,
    WIDTH,
    found_x,
    square_frame,
    square_x,
    write_audio_only,
    write_clip,
    write_many_streams,
    write_sparse_mkv,
)

PUBLIC_IP = "93.184.216.34"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    return allowed


def video_intake(root: Path, **limits: object) -> VideoIntake:
    return VideoIntake(ImageIntake([root], allow_urls=False), VideoLimits(**limits))  # type: ignore[arg-type]


def bright_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    return image.convert("L").point(lambda v: 255 if v > 128 else 0).getbbox()


def code_of(intake: VideoIntake, ref: str, max_frames: int = 4) -> str:
    with pytest.raises(M2Error) as caught:
        intake.load(ref, max_frames=max_frames)
    return caught.value.code


# --- sampling ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(CONTAINERS))
def test_samples_evenly_over_the_whole_video_in_time_order(root: Path, kind: str) -> None:
    clip = write_clip(root / f"clip.{CONTAINERS[kind][0]}", kind, frames=24, fps=12)

    frames = video_intake(root).load(str(clip), max_frames=6)

    # 2 s in 6 slices: the frame on screen at each slice's centre (12 fps).
    expected_times = [(i + 0.5) * 2.0 / 6 for i in range(6)]
    assert [f.timestamp_s for f in frames] == pytest.approx(expected_times, abs=1 / 12)
    indices = [round(f.timestamp_s * 12) for f in frames]  # type: ignore[operator]
    assert [found_x(f.image) for f in frames] == pytest.approx(
        [square_x(i, 24) for i in indices], abs=2
    )
    assert [(f.source, f.width, f.height) for f in frames] == [("video", WIDTH, HEIGHT)] * 6


def test_recognises_the_container_by_content_not_by_name(root: Path) -> None:
    webm = write_clip(root / "clip.webm", "webm-vp8")
    disguised = root / "holiday.mp4"
    disguised.write_bytes(webm.read_bytes())
    (root / "clip.txt").write_bytes(write_clip(root / "real.mp4").read_bytes())

    intake = video_intake(root)

    assert len(intake.load(str(disguised), max_frames=3)) == 3
    assert len(intake.load(str(root / "clip.txt"), max_frames=3)) == 3


def test_gives_each_frame_once_when_the_clip_has_fewer_than_asked(root: Path) -> None:
    clip = write_clip(root / "short.mp4", frames=3, fps=12)

    frames = video_intake(root).load(str(clip), max_frames=16)

    assert [found_x(f.image) for f in frames] == [square_x(i, 3) for i in range(3)]


def test_decodes_a_live_recording_that_declares_no_duration(root: Path) -> None:
    clip = write_clip(root / "live.webm", "webm-vp8", container_options={"live": "1"})

    frames = video_intake(root).load(str(clip), max_frames=4)

    assert [f.timestamp_s for f in frames] == pytest.approx([0.25, 0.75, 1.25, 1.75], abs=1 / 12)


def test_frames_share_the_prompt_pixel_budget(root: Path) -> None:
    clip = write_clip(root / "clip.mp4")
    intake = video_intake(root, max_total_pixels=8 * 1536)

    frames = intake.load(str(clip), max_frames=4, other_images=4)

    assert all(f.image.width * f.image.height <= 1536 for f in frames)
    assert {(f.width, f.height) for f in frames} == {(WIDTH, HEIGHT)}


def test_images_leave_room_for_fewer_frames(root: Path) -> None:
    clip = write_clip(root / "clip.mp4")

    assert len(video_intake(root).load(str(clip), max_frames=16, other_images=29)) == 3


@pytest.mark.skipif(
    not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
    reason="writing a rotation needs a newer PyAV",
)
def test_turns_a_rotated_phone_video_upright(root: Path) -> None:
    clip = write_clip(root / "portrait.mp4", frames=2, rotation=90)

    first, _ = video_intake(root).load(str(clip), max_frames=2)

    assert (first.width, first.height) == (HEIGHT, WIDTH) == first.image.size
    # A quarter turn counter-clockwise, as the display matrix says: left edge to bottom.
    upright = square_frame(0, 2).transpose(Image.Transpose.ROTATE_90)
    assert bright_box(first.image) == pytest.approx(bright_box(upright), abs=2)


# --- what is not a video ------------------------------------------------------------------


def test_text_file_named_mp4_is_image_unsupported(root: Path) -> None:
    (root / "notes.mp4").write_text("these are not frames\n" * 20)

    assert code_of(video_intake(root), str(root / "notes.mp4")) == "image_unsupported"


def test_an_image_is_not_a_video(root: Path) -> None:
    square_frame(0, 1).save(root / "still.mp4", "PNG")

    assert code_of(video_intake(root), str(root / "still.mp4")) == "image_unsupported"


def test_file_without_a_video_stream_is_image_unsupported(root: Path) -> None:
    clip = write_audio_only(root / "sound.mkv")

    assert code_of(video_intake(root), str(clip)) == "image_unsupported"


@pytest.mark.parametrize(
    ("kind", "options"),
    [("mp4", {}), ("mp4", {"movflags": "+faststart"}), ("webm-vp8", {}), ("avi", {})],
)
def test_truncated_file_is_image_unsupported(
    root: Path, kind: str, options: dict[str, str]
) -> None:
    clip = write_clip(root / f"whole.{CONTAINERS[kind][0]}", kind, container_options=options)
    data = clip.read_bytes()
    (root / "cut").write_bytes(data[: len(data) // 2])

    assert code_of(video_intake(root), str(root / "cut")) == "image_unsupported"


# --- limits ---------------------------------------------------------------------------------


def test_declared_duration_over_the_limit_is_image_too_large(root: Path) -> None:
    clip = write_sparse_mkv(root / "ten_hours.mkv", [0, 36_000_000])

    assert clip.stat().st_size < 10_000
    assert code_of(video_intake(root), str(clip)) == "image_too_large"


@pytest.mark.parametrize(
    "limits",
    [
        {"max_frame_pixels": WIDTH * HEIGHT - 1},
        {"max_streams": 2},
        {"max_bytes": 1000},
        {"decode_timeout_s": 1e-9},
    ],
    ids=lambda limits: next(iter(limits)),
)
def test_video_over_a_limit_is_image_too_large(root: Path, limits: dict[str, float]) -> None:
    clip = write_many_streams(root / "clip.mkv", streams=3, frames=60)

    assert clip.stat().st_size > 1000
    assert len(video_intake(root).load(str(clip), max_frames=4)) == 4
    assert code_of(video_intake(root, **limits), str(clip)) == "image_too_large"


def test_video_has_its_own_larger_size_limit(root: Path) -> None:
    clip = write_clip(root / "clip.mp4")
    images = ImageIntake([root], allow_urls=False, max_bytes=1000)

    frames = VideoIntake(images, VideoLimits(max_bytes=10**6)).load(str(clip), max_frames=2)

    assert clip.stat().st_size > 1000
    assert len(frames) == 2


# --- references: the image policy -----------------------------------------------------------


def test_loads_a_data_uri_and_a_file_uri(root: Path) -> None:
    clip = write_clip(root / "clip.mp4")
    uri = "data:video/mp4;base64," + base64.b64encode(clip.read_bytes()).decode()
    intake = video_intake(root)

    assert len(intake.load(uri, max_frames=2)) == 2
    assert len(intake.load(clip.as_uri(), max_frames=2)) == 2


def test_fetches_a_public_url_through_the_policy_transport(root: Path) -> None:
    data = write_clip(root / "clip.mp4").read_bytes()
    seen: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Host"])
        return httpx.Response(200, content=data)

    images = ImageIntake(
        [],
        allow_urls=True,
        transport=httpx.MockTransport(respond),
        resolver=lambda host, port: [PUBLIC_IP],
    )
    frames = VideoIntake(images).load("https://videos.example/clip.mp4", max_frames=2)

    assert len(frames) == 2
    assert seen == ["videos.example"]


def test_hostile_references_are_refused_as_images_are(root: Path, tmp_path: Path) -> None:
    outside = write_clip(tmp_path / "outside.mp4")
    (root / "link.mp4").symlink_to(outside)
    intake = video_intake(root)
    urls = VideoIntake(
        ImageIntake([root], allow_urls=True, resolver=lambda host, port: ["10.0.0.7"])
    )

    assert code_of(intake, str(outside)) == "image_not_allowed"
    assert code_of(intake, str(root / "link.mp4")) == "image_not_allowed"
    assert code_of(intake, str(root / ".." / "outside.mp4")) == "image_not_allowed"
    assert code_of(intake, str(root / "missing.mp4")) == "image_not_found"
    assert code_of(intake, str(root)) == "image_not_found"
    assert code_of(intake, "https://videos.example/clip.mp4") == "url_not_allowed"
    assert code_of(intake, "ftp://videos.example/clip.mp4") == "url_not_allowed"
    assert code_of(urls, "http://127.0.0.1/clip.mp4") == "url_not_allowed"
    assert code_of(urls, "http://internal.example/clip.mp4") == "url_not_allowed"
    assert code_of(intake, "") == "invalid_argument"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_refuses_a_device_file() -> None:
    intake = VideoIntake(ImageIntake([Path("/dev")], allow_urls=False))

    assert code_of(intake, "/dev/zero") == "image_not_allowed"
