"""Image intake under hostile input: fuzzed bytes and references, and a crafted corpus.

The invariant: whatever arrives, intake either returns a real RGB image or raises an
``M2Error`` with a contract code. It never crashes with anything else, and never
accepts bytes that Pillow cannot independently decode as an allowed format.
"""

from __future__ import annotations

import base64
import io
import struct
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from m2_tools.errors import M2Error
from m2_tools.intake.images import ImageIntake

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FORMATS = ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"]
MAGIC_PREFIXES = [
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF89a",
    b"GIF87a",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"RIFF\x00\x00\x00\x00WEBPVP8X",
]


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


SEEDS = [encode(Image.effect_noise((12, 9), 60).convert("RGB"), fmt) for fmt in FORMATS]


def really_an_image(data: bytes) -> bool:
    """Pillow's own verdict, taken independently of intake."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                image.load()
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def allowed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def intake(allowed_dir: Path) -> ImageIntake:
    # URLs stay on a mock that always fails, so a fuzzed "http://..." never leaves the box.
    return ImageIntake(
        [allowed_dir],
        allow_urls=True,
        transport=httpx.MockTransport(lambda request: httpx.Response(404)),
        resolver=lambda host, port: ["93.184.216.34"],
    )


def check(load: Callable[[], object], data: bytes | None) -> None:
    """Run ``load``: only an M2Error may escape, and acceptance needs a real image."""
    try:
        loaded = load()
    except M2Error as exc:
        assert exc.code in {
            "invalid_argument",
            "image_not_found",
            "image_not_allowed",
            "image_unsupported",
            "image_too_large",
            "url_not_allowed",
            "url_fetch_failed",
        }
        return
    assert data is not None and really_an_image(data)
    assert loaded.image.mode == "RGB"  # type: ignore[attr-defined]


hostile_bytes = st.one_of(
    st.binary(max_size=600),
    st.builds(bytes.__add__, st.sampled_from(MAGIC_PREFIXES), st.binary(max_size=600)),
)


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A valid small image with a few bytes overwritten, cut short or both."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(8, len(data)))])


@FUZZ
@given(data=st.one_of(hostile_bytes, mutated_images()))
def test_random_bytes_in_a_file_never_crash(
    intake: ImageIntake, allowed_dir: Path, data: bytes
) -> None:
    path = allowed_dir / "fuzz.bin"
    path.write_bytes(data)
    check(lambda: intake.load(str(path)), data)


@FUZZ
@given(data=st.one_of(hostile_bytes, mutated_images()), urlsafe=st.booleans())
def test_random_bytes_as_base64_never_crash(
    intake: ImageIntake, data: bytes, urlsafe: bool
) -> None:
    encoder = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text = encoder(data).decode()
    # Bare base64 that does not look like an image is read as a (missing) path.
    check(lambda: intake.load(text), data)


@FUZZ
@given(
    data=st.one_of(hostile_bytes, mutated_images()), mime=st.sampled_from(["image/png", "", "x"])
)
def test_random_bytes_as_data_uri_never_crash(intake: ImageIntake, data: bytes, mime: str) -> None:
    ref = f"data:{mime};base64," + base64.b64encode(data).decode()
    check(lambda: intake.load(ref), data)


@FUZZ
@given(ref=st.text(max_size=300))
def test_random_reference_text_never_crashes(intake: ImageIntake, ref: str) -> None:
    check(lambda: intake.load(ref), None)


# --- crafted corpus ----------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def gif_bomb() -> bytes:
    screen = struct.pack("<HHBBB", 65535, 65535, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + frame + b";"


def jpeg_bomb() -> bytes:
    data = bytearray(encode(Image.new("RGB", (8, 8)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    return bytes(data)


def bmp_bomb() -> bytes:
    data = bytearray(encode(Image.new("RGB", (8, 8)), "BMP"))
    data[18:26] = struct.pack("<ii", 100_000, 100_000)
    return bytes(data)


def webp_bomb() -> bytes:
    canvas = b"\x00\x00\x00\x00" + (16383).to_bytes(3, "little") * 2
    vp8x = b"VP8X" + struct.pack("<I", len(canvas)) + canvas
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def tiff_bomb() -> bytes:
    long, short = 4, 3
    entries = [
        (256, long, 100_000),  # width
        (257, long, 100_000),  # height
        (258, short, 8),
        (259, short, 1),
        (262, short, 1),
        (273, long, 0),
        (277, short, 1),
        (278, long, 100_000),
        (279, long, 0),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        packed = struct.pack("<I", value) if kind == long else struct.pack("<HH", value, 0)
        ifd += struct.pack("<HHI", tag, kind, 1) + packed
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00"


def truncated(fmt: str) -> bytes:
    data = encode(Image.effect_noise((64, 64), 60).convert("RGB"), fmt)
    return data[: len(data) // 2]


def gif_zip_polyglot() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("payload.html", "<script>alert(1)</script>")
    polyglot = encode(Image.new("RGB", (5, 4), (0, 128, 0)), "GIF") + archive.getvalue()
    assert zipfile.is_zipfile(io.BytesIO(polyglot))
    return polyglot


CORPUS: dict[str, tuple[Callable[[], bytes], str | None]] = {
    "truncated-png": (lambda: truncated("PNG"), "image_unsupported"),
    "truncated-jpeg": (lambda: truncated("JPEG"), "image_unsupported"),
    "png-bomb-header": (lambda: png_header_only(100_000, 100_000), "image_too_large"),
    "png-64mp-header": (lambda: png_header_only(8000, 8000), "image_too_large"),
    "gif-bomb-header": (gif_bomb, "image_too_large"),
    "jpeg-bomb-header": (jpeg_bomb, "image_too_large"),
    "bmp-bomb-header": (bmp_bomb, "image_too_large"),
    "webp-bomb-header": (webp_bomb, "image_too_large"),
    "tiff-bomb-header": (tiff_bomb, "image_too_large"),
    "png-zero-size": (lambda: png_header_only(0, 0), "image_unsupported"),
    "gif-zip-polyglot": (gif_zip_polyglot, None),
    "png-with-html-appended": (
        lambda: encode(Image.new("RGB", (3, 3)), "PNG") + b"<html><script>x()</script></html>",
        None,
    ),
    "html-behind-gif-magic": (
        lambda: b"GIF89a<html><script>x()</script></html>",
        "image_unsupported",
    ),
    "svg": (
        lambda: b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>",
        "image_unsupported",
    ),
    "pdf": (lambda: b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "image_unsupported"),
    "ico": (lambda: encode(Image.new("RGB", (16, 16)), "ICO"), "image_unsupported"),
    "one-pixel": (lambda: encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), None),
    "one-by-300": (lambda: encode(Image.new("RGB", (1, 300)), "PNG"), "image_unsupported"),
    "empty": (lambda: b"", "image_unsupported"),
}


@pytest.mark.parametrize("via", ["path", "data-uri"])
@pytest.mark.parametrize("case", sorted(CORPUS))
def test_crafted_corpus(intake: ImageIntake, allowed_dir: Path, case: str, via: str) -> None:
    build, expected = CORPUS[case]
    data = build()
    if via == "path":
        path = allowed_dir / f"{case}.img"
        path.write_bytes(data)
        ref = str(path)
    else:
        ref = "data:image/png;base64," + base64.b64encode(data).decode()

    if expected is None:
        loaded = intake.load(ref)
        assert loaded.image.mode == "RGB"
        assert loaded.image.size == Image.open(io.BytesIO(data)).size
    else:
        with pytest.raises(M2Error) as caught:
            intake.load(ref)
        assert caught.value.code == expected


def test_huge_base64_is_refused_quickly_without_decoding(intake: ImageIntake) -> None:
    # 21 MiB once decoded, and invalid at the very end: a decoder would report bad
    # base64, so "too large" proves the length was checked first.
    ref = "iVBORw0KGgo" + "A" * (28 * 2**20) + "!!!!"

    started = time.monotonic()
    with pytest.raises(M2Error) as caught:
        intake.load(ref)

    assert caught.value.code == "image_too_large"
    assert time.monotonic() - started < 2.0
