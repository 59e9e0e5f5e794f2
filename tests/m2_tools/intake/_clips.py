"""Small videos the tests write themselves with PyAV: a white square moving left to right."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

WIDTH, HEIGHT, SIDE = 96, 64, 16

#: (suffix, codec, pixel format) for each container the contract names.
CONTAINERS = {
    "mp4": ("mp4", "libx264", "yuv420p"),
    "webm-vp9": ("webm", "libvpx-vp9", "yuv420p"),
    "webm-vp8": ("webm", "libvpx", "yuv420p"),
    "mkv": ("mkv", "libx264", "yuv420p"),
    "mov": ("mov", "mjpeg", "yuvj420p"),
    "avi": ("avi", "mpeg4", "yuv420p"),
}


def square_x(index: int, frames: int) -> int:
    """Left edge of the square in frame ``index`` of ``frames``."""
    return round(index * (WIDTH - SIDE) / max(frames - 1, 1))


def square_frame(index: int, frames: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Image.Image:
    image = Image.new("RGB", size)
    x = square_x(index, frames)
    image.paste((255, 255, 255), (x, size[1] // 2 - SIDE // 2, x + SIDE, size[1] // 2 + SIDE // 2))
    return image


def found_x(image: Image.Image) -> int:
    """Left edge of the bright square in ``image`` (scaled back to the clip's width)."""
    box = image.convert("L").point(lambda v: 255 if v > 128 else 0).getbbox()
    assert box is not None, "no square in the frame"
    return round(box[0] * WIDTH / image.width)


def write_clip(
    path: Path,
    kind: str = "mp4",
    *,
    frames: int = 24,
    fps: int = 12,
    codec_options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    rotation: int | None = None,
) -> Path:
    """Write the moving square as ``kind`` (a key of :data:`CONTAINERS`) to ``path``."""
    _, codec, pix_fmt = CONTAINERS[kind]
    fmt = {"mkv": "matroska", "webm-vp9": "webm", "webm-vp8": "webm"}.get(kind, kind)
    with av.open(str(path), "w", format=fmt, container_options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps, options=codec_options or {})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, pix_fmt
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for index in range(frames):
            out.mux(stream.encode(av.VideoFrame.from_image(square_frame(index, frames))))
        out.mux(stream.encode(None))
    return path


def write_sparse_mkv(path: Path, times_ms: list[int]) -> Path:
    """Frames at the given times only: a tiny file that declares a long duration."""
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuvj420p"
        stream.time_base = Fraction(1, 1000)
        for index, millis in enumerate(times_ms):
            frame = av.VideoFrame.from_image(square_frame(index, len(times_ms)))
            frame.pts, frame.time_base = millis, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_audio_only(path: Path) -> Path:
    """A Matroska file with one second of silent FLAC audio and no video stream."""
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("flac", rate=8000, layout="mono")
        frame = av.AudioFrame(format="s16", layout="mono", samples=8000)
        frame.planes[0].update(bytes(16000))
        frame.sample_rate, frame.pts = 8000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_many_streams(path: Path, streams: int, frames: int = 3) -> Path:
    """A Matroska file with ``streams`` video streams of the moving square."""
    with av.open(str(path), "w", format="matroska") as out:
        added = [out.add_stream("mjpeg", rate=12) for _ in range(streams)]
        for stream in added:
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuvj420p"
        for index in range(frames):
            image = av.VideoFrame.from_image(square_frame(index, frames))
            for stream in added:
                out.mux(stream.encode(image))
        for stream in added:
            out.mux(stream.encode(None))
    return path


if __name__ == "__main__":
    # `python tests/m2_tools/intake/_clips.py OUT.mp4`: the demo's clip (4 s, 12 fps).
    import sys

    write_clip(Path(sys.argv[1]), frames=48, fps=12)
