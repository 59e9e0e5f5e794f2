"""Video references to sampled frames: the image policy, plus bounded decoding.

A video is fetched exactly as an image is, by the same
:class:`~m2_tools.intake.images.ImageIntake` policy (paths inside the allowed
directories, public URLs, data URIs), only with its own, larger size limit. Its
frames are then sampled by :func:`m2_tools.intake.frames.sample_frames` on a thread of
their own, with a time limit: past it the thread is told to stop and the video is
refused. Each frame becomes a :class:`LoadedImage` with ``source="video"`` and its
``timestamp_s``, which the engine treats like any image (smart resize, and the
prompt's pixel budget shared among all images and frames).

Error codes: the image codes, with messages prefixed ``video:``. ``image_unsupported``
(not a video, no video stream, damaged or truncated), ``image_too_large`` (bytes,
streams, frame size, duration, decoding work or time), and the path and URL codes of
image intake.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from m2_tools.errors import ImageTooLarge, InvalidArgument, M2Error
from m2_tools.intake.frames import SampledFrame, sample_frames
from m2_tools.intake.images import ImageIntake, LoadedImage

if TYPE_CHECKING:
    from m2_tools.settings import Settings

__all__ = ["MAX_PROMPT_IMAGES", "VideoIntake", "VideoLimits"]

logger = logging.getLogger(__name__)

#: Images and sampled frames of one prompt together.
MAX_PROMPT_IMAGES = 32


@dataclass(frozen=True)
class VideoLimits:
    """What a video may cost, and the pixel budget its frames share.

    Attributes:
        max_bytes: Largest video file accepted, from any source.
        max_duration_s: Longest declared duration.
        max_frame_pixels: Largest ``width * height`` of a frame.
        max_streams: Most streams (video, audio, subtitles...) in the container.
        decode_timeout_s: Time allowed for decoding the sampled frames.
        max_pixels: Cap per frame for the model, or None for none.
        max_total_pixels: The budget all images and frames of one prompt share.
    """

    max_bytes: int = 200 * 2**20
    max_duration_s: float = 1800.0
    max_frame_pixels: int = 4096 * 4096
    max_streams: int = 16
    decode_timeout_s: float = 30.0
    max_pixels: int | None = None
    max_total_pixels: int = 32 * 401_408

    @classmethod
    def from_settings(cls, settings: Settings) -> VideoLimits:
        """The limits of :class:`~m2_tools.settings.Settings` (``video_*`` and pixel budget)."""
        return cls(
            max_bytes=settings.video_max_bytes,
            max_duration_s=settings.video_max_duration_s,
            max_frame_pixels=settings.video_max_frame_pixels,
            max_streams=settings.video_max_streams,
            decode_timeout_s=settings.video_decode_timeout_s,
            max_pixels=settings.max_pixels,
            max_total_pixels=settings.max_total_pixels,
        )


class VideoIntake:
    """Turns a video reference into its sampled frames, as :class:`LoadedImage` objects.

    Args:
        images: The image policy; its paths, URLs and transport are reused, with
            ``limits.max_bytes`` as the size limit.
        limits: The video limits and the pixel budget.
    """

    def __init__(self, images: ImageIntake, limits: VideoLimits | None = None) -> None:
        self._limits = limits if limits is not None else VideoLimits()
        self._fetcher = images.with_max_bytes(self._limits.max_bytes)

    @classmethod
    def from_settings(cls, settings: Settings, images: ImageIntake | None = None) -> VideoIntake:
        """Build from settings, over ``images`` (or an intake built from the same settings)."""
        base = images if images is not None else ImageIntake.from_settings(settings)
        return cls(base, VideoLimits.from_settings(settings))

    def load(self, ref: str, *, max_frames: int, other_images: int = 0) -> list[LoadedImage]:
        """Sample up to ``max_frames`` frames of the video ``ref``, in time order.

        Args:
            ref: A path, ``file://`` URI, http(s) URL or data URI of the video.
            max_frames: Frames wanted; fewer when the images leave less room (at most
                :data:`MAX_PROMPT_IMAGES` in all) or the video has fewer frames.
            other_images: Images of the same prompt, sharing the room and pixel budget.

        Returns:
            One image per sampled frame with ``source="video"`` and its ``timestamp_s``.

        Raises:
            M2Error: An image error whose message starts with ``video:``.
        """
        count = min(max_frames, MAX_PROMPT_IMAGES - other_images)
        try:
            if count < 1:
                raise InvalidArgument(
                    f"the images leave no room for frames ({MAX_PROMPT_IMAGES} in all)"
                )
            _, data, name = self._fetcher.fetch(ref)
            limits = self._limits
            share = limits.max_total_pixels // (other_images + count)
            frame_pixels = min(share, limits.max_pixels or share)
            frames = _with_time_limit(
                lambda stop: sample_frames(data, name, count, limits, frame_pixels, stop),
                limits.decode_timeout_s,
                name,
            )
        except M2Error as exc:
            raise type(exc)(f"video: {exc.message}") from exc
        digest = hashlib.sha256(data).hexdigest()
        logger.debug("sampled %d frames of %s (%d bytes)", len(frames), name, len(data))
        return [
            LoadedImage(
                image,
                "video",
                width,
                height,
                hashlib.sha256(f"{digest}@{seconds!r}/{image.size}".encode()).hexdigest(),
                timestamp_s=seconds,
            )
            for image, width, height, seconds in frames
        ]


def _with_time_limit(
    work: Callable[[threading.Event], list[SampledFrame]], timeout_s: float, name: str
) -> list[SampledFrame]:
    # A thread cannot be killed: past the deadline it is told to stop at its next frame
    # and abandoned (it is a daemon), while the caller gets its answer now.
    stop = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["ok"] = work(stop)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="m2-video-decode", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        stop.set()
        raise ImageTooLarge(
            f"decoding {name} took longer than {timeout_s:g} s; send a shorter or smaller "
            "video, or ask for fewer frames"
        )
    if "error" in outcome:
        raise outcome["error"]
    frames: list[SampledFrame] = outcome["ok"]
    return frames
