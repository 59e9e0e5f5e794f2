"""A prompt beyond the model's context is refused, and the error names what to shorten."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.m2_native import M2NativeEngine


def test_a_long_text_prompt_is_refused_naming_the_question_and_choices(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> None:
    words = " ".join(f"w{i}" for i in range(3000))  # the tiny checkpoint's context is 4096
    (result,) = engine.generate([case_request("text_only", user_text=words, images=())])

    assert result.error is not None and result.error.code == "invalid_argument"
    # The message is the point here: it names the fields a caller can shorten.
    assert "`question`" in result.error.message and "`choices`" in result.error.message
    assert "images" not in result.error.message.rsplit(";", 1)[1]


def test_many_images_beyond_the_context_are_refused_naming_the_images(
    engine: M2NativeEngine, case_request: Callable[..., GenerationRequest]
) -> None:
    images = tuple(Image.new("RGB", (224, 224), (i, 0, 0)) for i in range(70))
    (result,) = engine.generate([case_request("text_only", images=images)])

    assert result.error is not None and result.error.code == "invalid_argument"
    assert "`images`" in result.error.message.rsplit(";", 1)[1]
