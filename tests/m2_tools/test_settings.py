"""Settings: flags, then M2_* environment, then defaults; frozen."""

from __future__ import annotations

import os
from pathlib import Path

import pydantic
import pytest

from m2_tools import Settings


def test_defaults_follow_the_contract() -> None:
    settings = Settings()

    assert settings.model == "inclusionAI/M2-Reasoning"
    assert (settings.device, settings.dtype, settings.allow_urls) == ("auto", "auto", True)
    assert settings.allowed_dirs is None


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("M2_MODEL", "/models/m2")
    monkeypatch.setenv("M2_DEVICE", "cuda:1")
    monkeypatch.setenv("M2_DTYPE", "float16")
    monkeypatch.setenv("M2_ALLOWED_DIRS", os.pathsep.join([str(tmp_path), str(other)]))
    monkeypatch.setenv("M2_ALLOW_URLS", "false")
    monkeypatch.setenv("M2_AUTH_TOKEN", "s3cret")
    monkeypatch.setenv("M2_LOG_LEVEL", "DEBUG")

    settings = Settings()

    assert settings.model == "/models/m2"
    assert (settings.device, settings.dtype) == ("cuda:1", "float16")
    assert settings.allowed_dirs == (tmp_path.resolve(), other.resolve())
    assert settings.allow_urls is False
    assert settings.auth_token == "s3cret"
    assert settings.log_level == "DEBUG"


def test_keyword_arguments_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M2_DEVICE", "cuda")
    monkeypatch.setenv("M2_ALLOW_URLS", "true")

    settings = Settings(device="cpu", allow_urls=False)

    assert (settings.device, settings.allow_urls) == ("cpu", False)


def test_is_frozen() -> None:
    settings = Settings()

    with pytest.raises(pydantic.ValidationError):
        settings.device = "cpu"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("M2_ALLOW_URLS", "maybe"),
        ("M2_DEVICE", "tpu"),
        ("M2_DTYPE", "int4"),
        ("M2_QUEUE_SIZE", "0"),
    ],
)
def test_refuses_malformed_environment_values(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValueError):
        Settings()


def test_secret_token_is_not_in_the_repr() -> None:
    assert "s3cret" not in repr(Settings(auth_token="s3cret"))


def test_default_allowed_dir_is_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings().effective_allowed_dirs() == (tmp_path.resolve(),)

    monkeypatch.chdir("/")
    assert Settings().effective_allowed_dirs() == ()
    assert Settings(allowed_dirs=()).effective_allowed_dirs() == ()
