"""Image intake: every kind of reference, every refusal of the security policy.

No real network: URLs go through ``httpx.MockTransport`` and injected resolvers.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from PIL import Image

from m2_tools.errors import (
    ImageNotAllowed,
    ImageNotFound,
    ImageTooLarge,
    ImageUnsupported,
    InvalidArgument,
    UrlFetchFailed,
    UrlNotAllowed,
)
from m2_tools.intake.images import ImageIntake, LoadedImage
from m2_tools.intake.url_fetch import is_public_address, system_resolver
from m2_tools.settings import Settings

PUBLIC_IP = "93.184.216.34"
RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


# --- helpers -------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def two_tone(size: tuple[int, int] = (40, 20)) -> Image.Image:
    """Left half red, right half blue."""
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` and that has no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def close(actual: object, expected: tuple[int, ...], tolerance: int = 8) -> bool:
    assert isinstance(actual, tuple)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def static_resolver(table: dict[str, Sequence[str]]) -> Callable[[str, int], Sequence[str]]:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown host")
        return table[host]

    return resolve


class Recorder:
    """An ``httpx.MockTransport`` handler that serves canned responses and records requests."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)


def url_intake(
    respond: Callable[[httpx.Request], httpx.Response],
    hosts: dict[str, Sequence[str]] | None = None,
    **kwargs: object,
) -> tuple[ImageIntake, Recorder]:
    recorder = Recorder(respond)
    intake = ImageIntake(
        [],
        allow_urls=True,
        transport=httpx.MockTransport(recorder),
        resolver=static_resolver(hosts or {"images.example": [PUBLIC_IP]}),
        **kwargs,  # type: ignore[arg-type]
    )
    return intake, recorder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    return allowed


@pytest.fixture
def intake(root: Path) -> ImageIntake:
    return ImageIntake([root], allow_urls=False)


@pytest.fixture
def png_bytes() -> bytes:
    return encode(two_tone(), "PNG")


# --- successes: formats and reference kinds --------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "lossy"),
    [
        ("PNG", False),
        ("JPEG", True),
        ("WEBP", False),
        ("GIF", False),
        ("BMP", False),
        ("TIFF", False),
    ],
)
def test_loads_each_supported_format_from_a_path(
    intake: ImageIntake, root: Path, fmt: str, lossy: bool
) -> None:
    params: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(two_tone(), fmt, **params)
    # The extension lies on purpose: the format must come from the content.
    (root / "picture.txt").write_bytes(data)

    loaded = intake.load(str(root / "picture.txt"))

    assert isinstance(loaded, LoadedImage)
    assert (loaded.source, loaded.width, loaded.height) == ("path", 40, 20)
    assert loaded.image.mode == "RGB"
    assert loaded.digest == hashlib.sha256(data).hexdigest()
    tolerance = 40 if lossy else 0
    assert close(loaded.image.getpixel((5, 10)), RED, tolerance)
    assert close(loaded.image.getpixel((35, 10)), BLUE, tolerance)


def test_uses_the_first_frame_of_an_animated_gif(intake: ImageIntake, root: Path) -> None:
    frames = [Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)]
    path = root / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)

    assert intake.load(str(path)).image.getpixel((4, 4)) == RED


@pytest.mark.parametrize("mime", ["image/png", "", "application/octet-stream", "image/jpeg"])
def test_loads_a_data_uri_whatever_its_mime_type(png_bytes: bytes, mime: str) -> None:
    loaded = ImageIntake([], allow_urls=False).load(data_uri(png_bytes, mime))

    assert (loaded.source, loaded.width, loaded.height) == ("data", 40, 20)
    assert loaded.digest == hashlib.sha256(png_bytes).hexdigest()


def test_loads_a_percent_encoded_data_uri(png_bytes: bytes) -> None:
    from urllib.parse import quote_from_bytes

    loaded = ImageIntake([], allow_urls=False).load("data:image/png," + quote_from_bytes(png_bytes))

    assert loaded.width == 40


def test_loads_a_data_uri_missing_its_data_prefix(png_bytes: bytes) -> None:
    ref = "image/png;base64," + base64.b64encode(png_bytes).decode()

    assert ImageIntake([], allow_urls=False).load(ref).source == "data"


@pytest.mark.parametrize(
    "shape",
    ["plain", "wrapped", "urlsafe", "unpadded", "surrounding-space"],
)
def test_loads_bare_base64_in_its_common_shapes(shape: str) -> None:
    # A JPEG's base64 starts with "/9j/", which must not be mistaken for a path.
    data = encode(two_tone((41, 23)), "JPEG")
    text = base64.b64encode(data).decode()
    ref = {
        "plain": text,
        "wrapped": "\n".join(text[i : i + 76] for i in range(0, len(text), 76)),
        "urlsafe": base64.urlsafe_b64encode(data).decode(),
        "unpadded": text.rstrip("="),
        "surrounding-space": f"  {text}\n",
    }[shape]
    assert ref.startswith(("/9j/", "_9j_", "  /9j/"))

    loaded = ImageIntake([], allow_urls=False).load(ref)

    assert (loaded.source, loaded.width, loaded.height) == ("data", 41, 23)


def test_loads_a_file_uri(intake: ImageIntake, root: Path, png_bytes: bytes) -> None:
    (root / "with space.png").write_bytes(png_bytes)

    loaded = intake.load((root / "with space.png").as_uri())

    assert (loaded.source, loaded.width) == ("path", 40)


def test_loads_a_path_relative_to_the_working_directory(
    intake: ImageIntake, root: Path, png_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "sub").mkdir()
    (root / "sub" / "rel.png").write_bytes(png_bytes)
    monkeypatch.chdir(root)

    assert intake.load("sub/rel.png").width == 40
    assert intake.load("./sub/../sub/rel.png").width == 40


def test_follows_a_symlink_that_stays_inside(
    intake: ImageIntake, root: Path, png_bytes: bytes
) -> None:
    (root / "real.png").write_bytes(png_bytes)
    (root / "alias.png").symlink_to(root / "real.png")

    assert intake.load(str(root / "alias.png")).width == 40


def test_from_settings_uses_allowed_dirs_and_url_switch(root: Path, png_bytes: bytes) -> None:
    (root / "a.png").write_bytes(png_bytes)
    intake = ImageIntake.from_settings(Settings(allowed_dirs=(root,), allow_urls=False))

    assert intake.load(str(root / "a.png")).width == 40
    with pytest.raises(UrlNotAllowed):
        intake.load("https://images.example/a.png")


# --- successes: pixel modes ------------------------------------------------------------


def test_applies_exif_orientation(intake: ImageIntake, root: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90° clockwise
    (root / "rotated.jpg").write_bytes(encode(two_tone((40, 20)), "JPEG", exif=exif))

    loaded = intake.load(str(root / "rotated.jpg"))

    assert (loaded.width, loaded.height) == (20, 40)
    assert close(loaded.image.getpixel((10, 5)), RED, 40)
    assert close(loaded.image.getpixel((10, 35)), BLUE, 40)


def test_converts_cmyk_jpeg_to_rgb(intake: ImageIntake, root: Path) -> None:
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # red in print colours
    (root / "cmyk.jpg").write_bytes(encode(cmyk, "JPEG", quality=95))

    loaded = intake.load(str(root / "cmyk.jpg"))

    assert loaded.image.mode == "RGB"
    assert close(loaded.image.getpixel((8, 8)), RED, 12)


def test_composites_rgba_on_white(intake: ImageIntake, root: Path) -> None:
    image = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    image.putpixel((1, 0), (0, 0, 0, 255))
    image.putpixel((2, 0), (0, 0, 0, 128))
    (root / "alpha.png").write_bytes(encode(image, "PNG"))

    pixels = intake.load(str(root / "alpha.png")).image

    assert pixels.getpixel((0, 0)) == WHITE
    assert pixels.getpixel((1, 0)) == (0, 0, 0)
    assert close(pixels.getpixel((2, 0)), (127, 127, 127), 2)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_composites_palette_transparency_on_white(
    intake: ImageIntake, root: Path, fmt: str
) -> None:
    image = Image.new("P", (2, 1), 0)
    image.putpalette([0, 255, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((1, 0), 1)
    (root / f"palette.{fmt}").write_bytes(encode(image, fmt, transparency=0))

    pixels = intake.load(str(root / f"palette.{fmt}")).image

    assert pixels.getpixel((0, 0)) == WHITE
    assert pixels.getpixel((1, 0)) == RED


def test_composites_grayscale_with_alpha_on_white(intake: ImageIntake, root: Path) -> None:
    (root / "la.png").write_bytes(encode(Image.new("LA", (2, 2), (0, 0)), "PNG"))

    assert intake.load(str(root / "la.png")).image.getpixel((0, 0)) == WHITE


def test_scales_16_bit_grayscale_instead_of_clipping(intake: ImageIntake, root: Path) -> None:
    image = Image.new("I;16", (3, 1))
    for x, value in enumerate((0, 128 * 257, 65535)):
        image.putpixel((x, 0), value)
    (root / "deep.png").write_bytes(encode(image, "PNG"))

    pixels = intake.load(str(root / "deep.png")).image

    assert [pixels.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (128,) * 3, WHITE]


def test_scales_float_tiff_in_unit_range(intake: ImageIntake, root: Path) -> None:
    image = Image.new("F", (3, 1))
    for x, value in enumerate((0.0, 0.5, 1.0)):
        image.putpixel((x, 0), value)
    (root / "float.tif").write_bytes(encode(image, "TIFF"))

    pixels = intake.load(str(root / "float.tif")).image

    assert [pixel(pixels, (x, 0))[0] for x in range(3)] == [0, 128, 255]


@pytest.mark.parametrize(
    ("values", "expected"),
    [((-1000, 0, 1000), [0, 128, 255]), ((0, 100, 255), [0, 100, 255])],
    ids=["stretched", "already-8-bit"],
)
def test_maps_32_bit_integer_tiff_onto_8_bit(
    intake: ImageIntake, root: Path, values: tuple[int, int, int], expected: list[int]
) -> None:
    image = Image.new("I", (3, 1))
    for x, value in enumerate(values):
        image.putpixel((x, 0), value)
    (root / "wide.tif").write_bytes(encode(image, "TIFF"))

    pixels = intake.load(str(root / "wide.tif")).image

    assert [pixel(pixels, (x, 0))[0] for x in range(3)] == expected


def test_refuses_float_pixels_that_are_not_finite(intake: ImageIntake, root: Path) -> None:
    image = Image.new("F", (2, 1))
    image.putpixel((0, 0), float("nan"))
    (root / "nan.tif").write_bytes(encode(image, "TIFF"))

    with pytest.raises(ImageUnsupported):
        intake.load(str(root / "nan.tif"))


def test_recognises_bare_base64_of_each_format() -> None:
    intake = ImageIntake([], allow_urls=False)
    for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"):
        ref = base64.b64encode(encode(two_tone(), fmt)).decode()
        assert intake.load(ref).source == "data", fmt


def test_converts_one_bit_images(intake: ImageIntake, root: Path) -> None:
    image = Image.new("1", (2, 1), 0)
    image.putpixel((1, 0), 1)
    (root / "mono.png").write_bytes(encode(image, "PNG"))

    pixels = intake.load(str(root / "mono.png")).image

    assert [pixels.getpixel((x, 0)) for x in range(2)] == [(0, 0, 0), WHITE]


def test_accepts_the_largest_allowed_aspect_ratio(intake: ImageIntake, root: Path) -> None:
    (root / "strip.png").write_bytes(encode(Image.new("RGB", (200, 1)), "PNG"))

    assert intake.load(str(root / "strip.png")).width == 200


# --- refusals: local files -----------------------------------------------------------


def test_refuses_path_escaping_by_dotdot(intake: ImageIntake, root: Path) -> None:
    (root.parent / "secret.txt").write_text("TOP-SECRET-CONTENT")

    with pytest.raises(ImageNotAllowed) as caught:
        intake.load(str(root / ".." / "secret.txt"))

    assert "TOP-SECRET-CONTENT" not in caught.value.message


def test_refuses_symlink_pointing_outside(
    intake: ImageIntake, root: Path, png_bytes: bytes
) -> None:
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "real.png").write_bytes(png_bytes)
    (root / "link.png").symlink_to(outside / "real.png")
    (root / "dirlink").symlink_to(outside, target_is_directory=True)

    for ref in (root / "link.png", root / "dirlink" / "real.png"):
        with pytest.raises(ImageNotAllowed) as caught:
            intake.load(str(ref))
        assert str(outside) not in caught.value.message


def test_refusal_outside_does_not_reveal_whether_a_file_exists(
    intake: ImageIntake, root: Path
) -> None:
    (root.parent / "exists.png").write_bytes(b"x")

    codes = set()
    for name in ("exists.png", "missing.png"):
        with pytest.raises(ImageNotAllowed) as caught:
            intake.load(str(root.parent / name))
        codes.add((caught.value.code, caught.value.message.replace(name, "NAME")))

    assert len(codes) == 1


def test_refuses_local_files_when_no_dir_is_allowed(root: Path, png_bytes: bytes) -> None:
    (root / "a.png").write_bytes(png_bytes)

    with pytest.raises(ImageNotAllowed) as caught:
        ImageIntake([], allow_urls=True).load(str(root / "a.png"))

    assert "--allow-dir" in caught.value.message


def test_reports_a_missing_file(intake: ImageIntake, root: Path) -> None:
    with pytest.raises(ImageNotFound):
        intake.load(str(root / "nope.png"))


def test_refuses_a_directory(intake: ImageIntake, root: Path) -> None:
    (root / "folder").mkdir()

    with pytest.raises(ImageNotFound):
        intake.load(str(root / "folder"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_refuses_a_fifo_without_blocking(intake: ImageIntake, root: Path) -> None:
    os.mkfifo(root / "pipe.png")

    with pytest.raises(ImageNotAllowed):
        intake.load(str(root / "pipe.png"))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_refuses_a_device_file() -> None:
    with pytest.raises(ImageNotAllowed):
        ImageIntake([Path("/dev")], allow_urls=False).load("/dev/zero")


def test_reports_a_symlink_loop_inside_as_not_found(intake: ImageIntake, root: Path) -> None:
    (root / "loop").symlink_to(root / "loop")

    with pytest.raises(ImageNotFound):
        intake.load(str(root / "loop"))


def test_refuses_non_image_bytes_without_echoing_them(intake: ImageIntake, root: Path) -> None:
    (root / "notes.png").write_text("TOP-SECRET-CONTENT " * 10)

    with pytest.raises(ImageUnsupported) as caught:
        intake.load(str(root / "notes.png"))

    assert "TOP-SECRET" not in caught.value.message


def test_refuses_an_oversized_file(root: Path) -> None:
    (root / "big.png").write_bytes(encode(Image.effect_noise((64, 64), 50), "PNG"))
    small = ImageIntake([root], allow_urls=False, max_bytes=1000)

    with pytest.raises(ImageTooLarge):
        small.load(str(root / "big.png"))


# --- refusals: decoding ----------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [(8000, 8000), (10_000, 10_000), (100_000, 100_000)],
    ids=["over-our-limit", "over-pillow-warning", "over-pillow-error"],
)
def test_refuses_decompression_bomb_headers(
    intake: ImageIntake, root: Path, size: tuple[int, int]
) -> None:
    bomb = png_header_only(*size)
    assert len(bomb) < 100
    (root / "bomb.png").write_bytes(bomb)

    with pytest.raises(ImageTooLarge):
        intake.load(str(root / "bomb.png"))
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # the process-wide limit is untouched


def test_refuses_an_extreme_aspect_ratio(intake: ImageIntake, root: Path) -> None:
    (root / "strip.png").write_bytes(encode(Image.new("RGB", (250, 1)), "PNG"))

    with pytest.raises(ImageUnsupported):
        intake.load(str(root / "strip.png"))


def test_refuses_a_truncated_image(intake: ImageIntake, root: Path) -> None:
    data = encode(Image.effect_noise((64, 64), 50), "PNG")
    (root / "cut.png").write_bytes(data[: len(data) // 2])

    with pytest.raises(ImageUnsupported):
        intake.load(str(root / "cut.png"))


# --- refusals: reference kinds and inline data -----------------------------------------


@pytest.mark.parametrize(
    "ref",
    ["ftp://images.example/a.png", "gopher://x/1", "javascript:alert(1)", "ldap://x", "jar:x!/a"],
)
def test_refuses_unsupported_schemes(ref: str) -> None:
    with pytest.raises(UrlNotAllowed):
        ImageIntake([Path.cwd()], allow_urls=True).load(ref)


@pytest.mark.parametrize("ref", ["", "   ", 42])
def test_refuses_empty_or_non_string_references(ref: object) -> None:
    with pytest.raises(InvalidArgument):
        ImageIntake([], allow_urls=False).load(ref)  # type: ignore[arg-type]


def test_refuses_a_file_uri_naming_another_host(intake: ImageIntake) -> None:
    with pytest.raises(UrlNotAllowed):
        intake.load("file://fileserver/share/a.png")


def test_explains_a_short_string_that_is_neither_path_nor_image(
    intake: ImageIntake, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(root)
    with pytest.raises(ImageNotFound):
        intake.load("hello")
    with pytest.raises(ImageNotAllowed):
        ImageIntake([], allow_urls=True).load("hello")


def test_refuses_invalid_base64_in_a_data_uri() -> None:
    with pytest.raises(ImageUnsupported):
        ImageIntake([], allow_urls=False).load("data:image/png;base64,iVBOR!!w0KGgo=")


def test_refuses_a_data_uri_without_a_comma() -> None:
    with pytest.raises(ImageUnsupported):
        ImageIntake([], allow_urls=False).load("data:image/png;base64")


_SECRET_PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"SECRET-PAYLOAD-" * 20).decode()
_SECRET_TEXT = base64.b64encode(b"SECRET-PAYLOAD-" * 20).decode()


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        (_SECRET_PNG, ImageUnsupported),
        ("data:image/png;base64," + _SECRET_PNG, ImageUnsupported),
        (_SECRET_TEXT, ImageUnsupported),  # base64, but of no image
    ],
    ids=["bare-base64", "data-uri", "non-image-base64"],
)
def test_never_echoes_a_base64_payload(ref: str, error: type[Exception]) -> None:
    intake = ImageIntake([Path.cwd()], allow_urls=False)

    with pytest.raises(error) as caught:
        intake.load(ref)

    message = str(caught.value)
    assert _SECRET_PNG[:24] not in message
    assert _SECRET_TEXT[:24] not in message
    assert "SECRET" not in message


def test_refuses_a_huge_reference_before_decoding() -> None:
    ref = "data:image/png;base64," + "A" * (28 * 2**20)

    with pytest.raises(ImageTooLarge):
        ImageIntake([], allow_urls=False).load(ref)


def test_refuses_a_long_string_that_is_neither_path_nor_image(intake: ImageIntake) -> None:
    with pytest.raises(ImageUnsupported):
        intake.load("A" * 5000)


def test_refuses_a_large_percent_encoded_data_uri() -> None:
    with pytest.raises(ImageTooLarge):
        ImageIntake([], allow_urls=False).load("data:image/png," + "%00" * 2**20)


def test_refuses_base64_that_decodes_past_the_byte_limit() -> None:
    ref = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(2000)).decode()

    with pytest.raises(ImageTooLarge):
        ImageIntake([], allow_urls=False, max_bytes=1000).load(ref)


def test_load_all_names_the_failing_index(png_bytes: bytes) -> None:
    good = data_uri(png_bytes)
    intake = ImageIntake([], allow_urls=False)

    assert len(intake.load_all([good, good])) == 2
    with pytest.raises(ImageUnsupported) as caught:
        intake.load_all([good, good, "data:image/png;base64,AAAA"])

    assert caught.value.message.startswith("images[2]: ")


# --- URLs ------------------------------------------------------------------------------


def serve(data: bytes) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, content=data)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        (PUBLIC_IP, True),
        ("2606:4700:4700::1111", True),
        ("64:ff9b::5db8:d822", True),  # NAT64 of a public IPv4 address
        ("::ffff:93.184.216.34", True),
        ("198.51.100.7", False),  # documentation range
        ("not-an-address", False),
        ("", False),
    ],
)
def test_classifies_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_system_resolver_returns_addresses_for_a_numeric_host() -> None:
    assert "127.0.0.1" in system_resolver("127.0.0.1", 80)


def test_https_to_an_ip_literal_sends_no_sni(png_bytes: bytes) -> None:
    intake, recorder = url_intake(serve(png_bytes))

    intake.load(f"https://{PUBLIC_IP}/a.png")

    assert "sni_hostname" not in recorder.requests[0].extensions


@pytest.mark.parametrize("location", [None, "http://[::1"])
def test_reports_a_broken_redirect_as_a_fetch_failure(location: str | None) -> None:
    headers = {} if location is None else {"Location": location}
    intake, _ = url_intake(lambda r: httpx.Response(302, headers=headers))

    with pytest.raises(UrlFetchFailed):
        intake.load("https://images.example/a.png")


def test_fetches_a_public_url_through_the_checked_address(png_bytes: bytes) -> None:
    intake, recorder = url_intake(serve(png_bytes))

    loaded = intake.load("https://images.example/pics/a.png?size=2")

    assert (loaded.source, loaded.width) == ("url", 40)
    (request,) = recorder.requests
    assert request.url.host == PUBLIC_IP
    assert request.url.path == "/pics/a.png"
    assert request.headers["Host"] == "images.example"
    assert request.extensions["sni_hostname"] == "images.example"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.png",
        "http://10.0.0.5/a.png",
        "http://192.168.1.1/a.png",
        "http://172.16.0.1/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/a.png",
        "http://0.0.0.0/a.png",
        "http://224.0.0.1/a.png",
        "http://240.0.0.1/a.png",
        "http://[::1]/a.png",
        "http://[::]/a.png",
        "http://[::ffff:127.0.0.1]/a.png",
        "http://[::ffff:10.0.0.1]/a.png",
        "http://[fe80::1]/a.png",
        "http://[fc00::1]/a.png",
        "http://[fec0::1]/a.png",
        "http://[64:ff9b::a00:1]/a.png",
        "http://[2002:7f00:1::]/a.png",
    ],
)
def test_refuses_non_public_ip_literals(url: str, png_bytes: bytes) -> None:
    intake, recorder = url_intake(serve(png_bytes))

    with pytest.raises(UrlNotAllowed):
        intake.load(url)
    assert recorder.requests == []


@pytest.mark.parametrize(
    "addresses",
    [["10.1.2.3"], ["127.0.0.1"], ["fd00::1"], ["fe80::1%eth0"], [PUBLIC_IP, "192.168.0.7"]],
    ids=["private", "loopback", "unique-local", "link-local-with-zone", "one-of-several"],
)
def test_refuses_a_hostname_resolving_to_a_private_address(
    addresses: list[str], png_bytes: bytes
) -> None:
    intake, recorder = url_intake(serve(png_bytes), {"sneaky.example": addresses})

    with pytest.raises(UrlNotAllowed) as caught:
        intake.load("http://sneaky.example/a.png")

    assert recorder.requests == []
    assert all(a not in caught.value.message for a in addresses)  # no DNS leak to the caller


def test_refuses_a_redirect_to_a_private_address(png_bytes: bytes) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://internal.example/admin"})

    intake, recorder = url_intake(
        respond, {"images.example": [PUBLIC_IP], "internal.example": ["192.168.10.1"]}
    )

    with pytest.raises(UrlNotAllowed):
        intake.load("https://images.example/a.png")
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://images.example/a.png"])
def test_refuses_a_redirect_to_another_scheme(location: str) -> None:
    intake, recorder = url_intake(lambda r: httpx.Response(301, headers={"Location": location}))

    with pytest.raises(UrlNotAllowed):
        intake.load("https://images.example/a.png")
    assert len(recorder.requests) == 1


def test_follows_up_to_three_redirects(png_bytes: bytes) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        step = int(request.url.path.strip("/") or 0)
        if step < 3:
            return httpx.Response(307, headers={"Location": f"/{step + 1}"})
        return httpx.Response(200, content=png_bytes)

    intake, recorder = url_intake(respond)

    assert intake.load("https://images.example/0").width == 40
    assert [r.url.path for r in recorder.requests] == ["/0", "/1", "/2", "/3"]
    assert {r.headers["Host"] for r in recorder.requests} == {"images.example"}


def test_refuses_too_many_redirects() -> None:
    intake, recorder = url_intake(lambda r: httpx.Response(302, headers={"Location": "/again"}))

    with pytest.raises(UrlNotAllowed):
        intake.load("https://images.example/a.png")
    assert len(recorder.requests) == 4


def test_refuses_urls_when_disabled(png_bytes: bytes) -> None:
    recorder = Recorder(serve(png_bytes))
    intake = ImageIntake([], allow_urls=False, transport=httpx.MockTransport(recorder))

    with pytest.raises(UrlNotAllowed):
        intake.load("https://images.example/a.png")
    assert recorder.requests == []


def test_refuses_urls_with_credentials(png_bytes: bytes) -> None:
    intake, recorder = url_intake(serve(png_bytes))

    with pytest.raises(UrlNotAllowed):
        intake.load("https://user:pass@images.example/a.png")
    assert recorder.requests == []


@pytest.mark.parametrize("status", [404, 500, 304])
def test_reports_http_errors_as_retryable_fetch_failures(status: int) -> None:
    intake, _ = url_intake(lambda r: httpx.Response(status))

    with pytest.raises(UrlFetchFailed) as caught:
        intake.load("https://images.example/a.png")
    assert caught.value.retryable


@pytest.mark.parametrize(
    "failure", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError]
)
def test_reports_network_failures_as_retryable(failure: type[httpx.TransportError]) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        raise failure("boom", request=request)

    intake, _ = url_intake(respond)

    with pytest.raises(UrlFetchFailed) as caught:
        intake.load("https://images.example/a.png")
    assert caught.value.retryable


def test_reports_an_unresolvable_host_as_retryable(png_bytes: bytes) -> None:
    intake, recorder = url_intake(serve(png_bytes))

    with pytest.raises(UrlFetchFailed):
        intake.load("https://no-such-host.example/a.png")
    assert recorder.requests == []


def test_gives_up_on_a_hanging_resolver_at_the_deadline(png_bytes: bytes) -> None:
    release = threading.Event()

    def hanging(host: str, port: int) -> Sequence[str]:
        release.wait(30)
        return [PUBLIC_IP]

    recorder = Recorder(serve(png_bytes))
    intake = ImageIntake(
        [],
        allow_urls=True,
        fetch_timeout_s=0.2,
        transport=httpx.MockTransport(recorder),
        resolver=hanging,
    )
    try:
        with pytest.raises(UrlFetchFailed):
            intake.load("https://images.example/a.png")
    finally:
        release.set()
    assert recorder.requests == []


def test_refuses_a_download_declared_too_large() -> None:
    intake, _ = url_intake(
        lambda r: httpx.Response(200, headers={"Content-Length": str(2**30)}, content=b""),
    )

    with pytest.raises(ImageTooLarge):
        intake.load("https://images.example/a.png")


def test_stops_reading_an_oversized_stream() -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for index in range(1000):
            sent.append(index)
            yield b"\0" * 1024

    intake, _ = url_intake(lambda r: httpx.Response(200, content=chunks()), max_bytes=10 * 1024)

    with pytest.raises(ImageTooLarge):
        intake.load("https://images.example/a.png")
    assert len(sent) < 20


def test_refuses_an_unparsable_url() -> None:
    intake, _ = url_intake(serve(b""))

    with pytest.raises(InvalidArgument):
        intake.load("http://[::1/a.png")
