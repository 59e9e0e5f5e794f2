"""Frame sampling from video bytes: the timestamps, the container sniffing, bounded work."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m2_tools.errors import ImageTooLarge, M2Error
from m2_tools.intake.frames import (
    DecodeStopped,
    SampledFrame,
    sample_frames,
    sample_times,
    sniff_container,
)
from m2_tools.intake.video import VideoLimits

from ._clips import found_x, square_x, write_clip

BUDGET = 96 * 64


def sample(data: bytes, count: int) -> list[SampledFrame]:
    return sample_frames(data, "the clip", count, VideoLimits(), BUDGET, threading.Event())


def test_sample_times_are_the_centres_of_equal_slices() -> None:
    assert sample_times(8.0, 4) == [1.0, 3.0, 5.0, 7.0]
    assert sample_times(3.0, 1) == [1.5]


@pytest.mark.parametrize(
    ("head", "demuxer"),
    [
        (b"\x00\x00\x00\x20ftypisom", "mov"),
        (b"\x00\x00\x00\x14ftypqt  ", "mov"),
        (b"\x00\x00\x01\x00moov", "mov"),
        (b"\x1a\x45\xdf\xa3\x9fB\x86\x81", "matroska"),
        (b"RIFF\x10\x00\x00\x00AVI LIST", "avi"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", None),
        (b"\x89PNG\r\n\x1a\n\x00\x00", None),
        (b"#EXTM3U\n#EXT-X-", None),
        (b"ffconcat version 1.0", None),
        (b"", None),
    ],
)
def test_sniffs_only_the_accepted_containers(head: bytes, demuxer: str | None) -> None:
    assert sniff_container(head) == demuxer


def test_seeks_to_the_sampled_times_instead_of_decoding_every_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clip = write_clip(tmp_path / "ten_s.mp4", frames=240, fps=24, codec_options={"g": "12"})

    with caplog.at_level(logging.DEBUG, logger="m2_tools.intake.frames"):
        frames = sample(clip.read_bytes(), 4)

    (decoded,) = [r.frames_decoded for r in caplog.records if hasattr(r, "frames_decoded")]
    assert len(frames) == 4
    assert decoded < 240 // 3
    assert [found_x(f.image) for f in frames] == pytest.approx(
        [square_x(round(f.timestamp_s * 24), 240) for f in frames], abs=2
    )


def test_refuses_keyframes_too_far_apart_to_reach(tmp_path: Path) -> None:
    clip = write_clip(
        tmp_path / "one_gop.mp4",
        frames=1300,
        fps=24,
        codec_options={"g": "2000", "preset": "ultrafast", "sc_threshold": "0"},
    )

    with pytest.raises(ImageTooLarge):
        sample(clip.read_bytes(), 2)


def test_stops_when_told_to(tmp_path: Path) -> None:
    data = write_clip(tmp_path / "clip.mp4").read_bytes()
    stop = threading.Event()
    stop.set()

    with pytest.raises(DecodeStopped):
        sample_frames(data, "the clip", 4, VideoLimits(), BUDGET, stop)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    return [
        write_clip(folder / f"seed.{suffix}", kind, frames=6).read_bytes()
        for suffix, kind in (("mp4", "mp4"), ("webm", "webm-vp8"), ("avi", "avi"))
    ]


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_damaged_videos_give_frames_or_a_contract_error(
    seeds: list[bytes], data: st.DataObject
) -> None:
    seed = bytearray(data.draw(st.sampled_from(seeds)))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(seed) - 1))
        seed[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(12, len(seed)))

    try:
        frames = sample(bytes(seed[:cut]), 3)
    except M2Error as exc:
        assert exc.code in {"image_unsupported", "image_too_large"}
    else:
        assert 1 <= len(frames) <= 3
