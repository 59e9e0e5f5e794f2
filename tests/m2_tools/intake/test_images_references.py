"""Image references that look like one kind and are another: each gets the code that says so.

No real network: URLs go through ``httpx.MockTransport`` and a resolver that records
every lookup.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from PIL import Image

from m2_tools.errors import ImageNotFound, ImageUnsupported, InvalidArgument, UrlNotAllowed
from m2_tools.intake.images import ImageIntake


@pytest.fixture
def root(tmp_path: Path) -> Path:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    return allowed


def test_a_nul_byte_in_a_file_uri_is_an_invalid_argument(root: Path) -> None:
    intake = ImageIntake([root], allow_urls=False)

    with pytest.raises(InvalidArgument) as caught:
        intake.load(f"file://{root}/chart%00.png")

    assert caught.value.code == "invalid_argument"


def test_a_nul_byte_in_a_file_uri_outside_is_an_invalid_argument_too(root: Path) -> None:
    with pytest.raises(InvalidArgument):
        ImageIntake([root], allow_urls=False).load("file:///etc/passwd%00.png")


@pytest.mark.parametrize(
    "payload",
    [b"hello world", b"not an image at all, really", b"%PDF-1.7\n", b"\x00\x01\x02\x03" * 8],
    ids=["padded-text", "text", "pdf", "binary"],
)
@pytest.mark.parametrize("padding", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("files", ["allowed", "disabled"])
def test_short_base64_that_is_not_an_image_is_unsupported_not_missing(
    root: Path, monkeypatch: pytest.MonkeyPatch, payload: bytes, padding: bool, files: str
) -> None:
    monkeypatch.chdir(root)
    ref = base64.b64encode(payload).decode()
    if not padding:
        ref = ref.rstrip("=")
    intake = ImageIntake([root] if files == "allowed" else [], allow_urls=False)

    with pytest.raises(ImageUnsupported) as caught:
        intake.load(ref)

    assert caught.value.code == "image_unsupported"


@pytest.mark.parametrize("name", ["chart.png", "hello", "README", "figures/plot1", "Scan2024"])
def test_a_missing_file_name_is_still_reported_missing(
    root: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(root)

    with pytest.raises(ImageNotFound):
        ImageIntake([root], allow_urls=False).load(name)


def test_a_file_whose_name_reads_as_base64_is_still_read(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(root)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (0, 128, 255)).save(buffer, "PNG")
    (root / "aGVsbG8gd29ybGQ=").write_bytes(buffer.getvalue())

    loaded = ImageIntake([root], allow_urls=False).load("aGVsbG8gd29ybGQ=")

    assert (loaded.source, loaded.width, loaded.height) == ("path", 8, 6)


@pytest.mark.parametrize(
    "url",
    [
        "http://0177.0.0.1/a.png",
        "http://0x7f.0.0.1/a.png",
        "http://2130706433/a.png",
        "http://017700000001/a.png",
        "http://127.1/a.png",
        "http://0/a.png",
        "https://0300.0250.0.1/a.png",
    ],
)
def test_numeric_hosts_in_octal_hex_or_short_form_are_not_allowed(url: str) -> None:
    lookups: list[str] = []
    requests: list[httpx.Request] = []

    def resolve(host: str, port: int) -> Sequence[str]:
        lookups.append(host)
        return ["93.184.216.34"]

    def respond(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(404)

    intake = ImageIntake(
        [], allow_urls=True, transport=httpx.MockTransport(respond), resolver=resolve
    )

    with pytest.raises(UrlNotAllowed) as caught:
        intake.load(url)

    assert caught.value.code == "url_not_allowed"
    assert lookups == []
    assert requests == []
