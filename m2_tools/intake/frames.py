"""Video bytes to evenly sampled RGB frames, with bounded work (FFmpeg through PyAV).

- The container is recognised from its first bytes (ISO-BMFF for MP4 and MOV, EBML for
  MKV and WebM, RIFF AVI), and FFmpeg is told that one demuxer: it never probes its
  other formats (playlists, concat lists, devices).
- Streams, frame size and duration are checked before any frame is decoded; the
  decoder gets the pixel cap too, in case the bitstream disagrees with the container.
- Each sampled time is reached by a keyframe seek (or, when less than a second ahead,
  by decoding on) and gives the frame on screen then; at most
  ``_MAX_DECODED_PER_TARGET`` frames are decoded per sampled time.
- Frames come out in RGB within their pixel share, upright, each frame at most once.

The caller runs :func:`sample_frames` on a thread of its own and sets ``stop`` to make
it give up (:class:`DecodeStopped`) at the next frame.
"""

from __future__ import annotations

import io
import logging
import math
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from PIL import Image

from m2_tools.errors import ImageTooLarge, ImageUnsupported, M2Error
from m2_tools.intake.decode import has_image_magic

if TYPE_CHECKING:
    import av
    import av.container
    import av.video

    from m2_tools.intake.video import VideoLimits

__all__ = ["DecodeStopped", "SampledFrame", "sample_frames", "sample_times", "sniff_container"]

logger = logging.getLogger(__name__)

#: Frames decoded to reach one timestamp: 20 s between keyframes at 30 fps.
_MAX_DECODED_PER_TARGET = 600
#: A timestamp this close ahead of the decoder is reached by decoding on, not seeking.
_DECODE_ON_S = 1.0
_BMFF_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})
_KINDS = "MP4, WebM, MOV, MKV or AVI"
_AV_TIME_BASE = 1_000_000  # FFmpeg's AV_TIME_BASE: container durations are in microseconds
_QUARTER_TURNS = (
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
)
_MKV_DURATION = re.compile(r"(\d{1,6}):(\d{2}):(\d{2}(?:\.\d{1,9})?)")


class SampledFrame(NamedTuple):
    """One sampled frame.

    Attributes:
        image: RGB, upright, within the pixel budget.
        width: Frame width as displayed (after rotation), before any shrinking.
        height: Frame height as displayed.
        timestamp_s: Time from the start of the video stream, in seconds.
    """

    image: Image.Image
    width: int
    height: int
    timestamp_s: float


class DecodeStopped(Exception):
    """``stop`` was set: the caller no longer waits for the frames."""


def sample_times(duration_s: float, count: int) -> list[float]:
    """``count`` times evenly spread over ``[0, duration_s)``: the centres of equal slices."""
    return [(index + 0.5) * duration_s / count for index in range(count)]


def sniff_container(data: bytes) -> str | None:
    """The FFmpeg demuxer for ``data``'s container (``mov``, ``matroska``, ``avi``), or None."""
    if data[4:8] in _BMFF_BOXES:
        return "mov"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "avi"
    return None


def sample_frames(
    data: bytes,
    name: str,
    count: int,
    limits: VideoLimits,
    frame_pixels: int,
    stop: threading.Event,
) -> list[SampledFrame]:
    """Sample up to ``count`` frames of the video ``data``, in time order.

    Args:
        data: The whole file.
        name: How messages refer to the video.
        count: Timestamps to sample.
        limits: Streams, frame size and duration allowed.
        frame_pixels: Most pixels per returned frame.
        stop: Set by the caller to abandon the work.

    Raises:
        ImageUnsupported: Not a video, no video stream, damaged or truncated.
        ImageTooLarge: Too many streams, too large frames, too long, or keyframes too
            far apart.
        DecodeStopped: ``stop`` was set.
    """
    demuxer = sniff_container(data)
    if demuxer is None:
        hint = "; pass it in images instead" if has_image_magic(data) else ""
        raise ImageUnsupported(f"{name} is not an {_KINDS} video{hint}")
    # Imported here: PyAV loads FFmpeg's libraries, which calls without a video never need.
    import av
    import av.container

    try:
        with av.open(io.BytesIO(data), format=demuxer, metadata_errors="replace") as container:
            if not isinstance(container, av.container.InputContainer):  # pragma: no cover
                raise ImageUnsupported(f"{name} cannot be read as a video")
            stream = _checked_stream(container, name, limits)
            duration = _duration_s(container, stream, stop)
            if duration > limits.max_duration_s:
                raise ImageTooLarge(
                    f"{name} lasts {duration:.0f} s, more than the {limits.max_duration_s:g} s "
                    "video limit"
                )
            return _sample(container, stream, duration, count, frame_pixels, name, stop)
    except (M2Error, DecodeStopped):
        raise
    except Exception as exc:
        # FFmpeg reports damage through many exception types; all mean the same here.
        logger.info("cannot decode %s: %s: %s", name, type(exc).__name__, exc)
        raise ImageUnsupported(
            f"{name} cannot be decoded as a video (damaged or truncated)"
        ) from None


def _checked_stream(
    container: av.container.InputContainer, name: str, limits: VideoLimits
) -> av.video.VideoStream:
    if len(container.streams) > limits.max_streams:
        raise ImageTooLarge(
            f"{name} has {len(container.streams)} streams, more than the "
            f"{limits.max_streams} allowed"
        )
    if not container.streams.video:
        raise ImageUnsupported(f"{name} has no video stream")
    # FFmpeg's pick prefers real video over cover art (a one-frame video stream).
    best = container.streams.best("video")
    stream = next((s for s in container.streams.video if s is best), container.streams.video[0])
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > limits.max_frame_pixels:
        raise ImageTooLarge(
            f"{name} has frames of {width}x{height} pixels, more than the "
            f"{limits.max_frame_pixels:,}-pixel video limit"
        )
    # Why: the container's size is only a claim; the decoder refuses larger frames itself.
    stream.codec_context.options = {"max_pixels": str(limits.max_frame_pixels)}
    return stream


def _duration_s(
    container: av.container.InputContainer, stream: av.video.VideoStream, stop: threading.Event
) -> float:
    """The video stream's own duration when declared (MKV keeps it in a tag), else the file's."""
    time_base = float(stream.time_base or 0)
    if stream.duration and time_base:
        return stream.duration * time_base
    tagged = _MKV_DURATION.fullmatch(stream.metadata.get("DURATION", ""))
    if tagged:
        hours, minutes, seconds = tagged.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if container.duration:
        return container.duration / _AV_TIME_BASE
    # Live recordings (browser WebM) declare none: read the packets' times, no decoding.
    start = stream.start_time or 0
    end = start
    for packet in container.demux(stream):
        if stop.is_set():
            raise DecodeStopped
        if packet.pts is not None:
            end = max(end, packet.pts + (packet.duration or 0))
    return (end - start) * time_base


def _sample(
    container: av.container.InputContainer,
    stream: av.video.VideoStream,
    duration: float,
    count: int,
    frame_pixels: int,
    name: str,
    stop: threading.Event,
) -> list[SampledFrame]:
    time_base = stream.time_base
    if not time_base or duration <= 0:
        raise ImageUnsupported(f"{name} declares no duration and holds no timed frames")
    start = stream.start_time or 0
    # Why: the last frame ends a little before the declared end (audio may run longer);
    # a stream that stops well before it was cut off.
    slack = max(duration / count, _DECODE_ON_S)
    cursor = _Cursor(container, stream, round(_DECODE_ON_S / time_base), stop)
    frames: list[SampledFrame] = []
    last_pts: int | None = None
    for seconds in sample_times(duration, count):
        frame = cursor.frame_at(start + round(seconds / time_base), name)
        if frame is None:
            raise _truncated(name, seconds, duration)
        pts = _pts(frame)
        shown = max(0.0, float((pts - start) * time_base))
        if cursor.ended and seconds - shown > slack:
            raise _truncated(name, seconds, duration)
        if last_pts is None or pts > last_pts:
            last_pts = pts
            frames.append(_upright_rgb(frame, frame_pixels, shown))
    logger.debug(
        "%s: %d frames sampled, %d decoded",
        name,
        len(frames),
        cursor.decoded,
        extra={"frames_decoded": cursor.decoded},
    )
    return frames


def _truncated(name: str, seconds: float, duration: float) -> ImageUnsupported:
    return ImageUnsupported(
        f"{name} holds no frame at {seconds:.1f} s of the {duration:.1f} s it declares "
        "(truncated or damaged)"
    )


class _Cursor:
    """Reaches frames in increasing time order with keyframe seeks and bounded decoding."""

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.video.VideoStream,
        decode_on: int,
        stop: threading.Event,
    ) -> None:
        self._container = container
        self._stream = stream
        self._decode_on = decode_on
        self._stop = stop
        self._frames: Iterator[av.VideoFrame] | None = None
        self._shown: av.VideoFrame | None = None  # latest frame at or before the position
        self._ahead: av.VideoFrame | None = None  # first decoded frame past the position
        self.ended = False  # the stream has no more frames
        self.decoded = 0  # frames decoded so far, for the logs

    def frame_at(self, target: int, name: str) -> av.VideoFrame | None:
        """The frame on screen at ``target`` (stream time base), or None when there is none."""
        position = self._position()
        if not self.ended and (position is None or target - position > self._decode_on):
            self._container.seek(target, stream=self._stream)
            self._frames = self._container.decode(self._stream)
            self._shown = self._ahead = None
        budget = self.decoded + _MAX_DECODED_PER_TARGET
        while not self.ended and (self._ahead is None or _pts(self._ahead) <= target):
            if self._ahead is not None:
                self._shown = self._ahead
            self._ahead = self._next(budget, name)
        return self._shown if self._shown is not None else self._ahead

    def _position(self) -> int | None:
        latest = self._ahead if self._ahead is not None else self._shown
        return None if self._frames is None or latest is None else _pts(latest)

    def _next(self, budget: int, name: str) -> av.VideoFrame | None:
        assert self._frames is not None  # frame_at seeks first
        for frame in self._frames:
            if self._stop.is_set():
                raise DecodeStopped
            self.decoded += 1
            if self.decoded > budget:
                raise ImageTooLarge(
                    f"{name} needs more than {_MAX_DECODED_PER_TARGET} frames decoded per "
                    "sampled frame (keyframes too far apart); re-encode it with more keyframes"
                )
            if frame.pts is not None:
                return frame
        self.ended = True
        return None


def _pts(frame: av.VideoFrame) -> int:
    return frame.pts if frame.pts is not None else 0


def _upright_rgb(frame: av.VideoFrame, frame_pixels: int, seconds: float) -> SampledFrame:
    """RGB within ``frame_pixels``, rotated as the container says; sizes as displayed."""
    width, height = frame.width, frame.height
    scale = min(1.0, math.sqrt(frame_pixels / (width * height)))
    image: Image.Image = frame.to_image(  # type: ignore[no-untyped-call]
        width=max(1, int(width * scale)),
        height=max(1, int(height * scale)),
        interpolation="AREA",
    )
    turns = round(frame.rotation / 90) % 4
    if turns:
        # Counter-clockwise, as the display matrix says; the sizes follow the display.
        image = image.transpose(_QUARTER_TURNS[turns - 1])
        if turns % 2:
            width, height = height, width
    return SampledFrame(image, width, height, round(seconds, 3))
