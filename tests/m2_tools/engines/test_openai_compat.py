"""The OpenAI-compatible engine against a real local HTTP server that streams completions."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from m2_tools import M2Reasoner, Settings
from m2_tools.cli.options import add_model_options, settings_from_args
from m2_tools.engines import create_engine
from m2_tools.engines.base import GenerationRequest
from m2_tools.engines.openai_compat import IMAGE_PLACEHOLDER, OpenAICompatibleEngine
from m2_tools.errors import ModelUnavailable
from m2_tools.prompts import SYSTEM_PROMPT, build_user_text

from ._openai_server import FakeServer, fake_openai_server

WAIT_S = 10.0


_OPEN: list[OpenAICompatibleEngine] = []


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with fake_openai_server() as running:
        yield running
        while _OPEN:
            _OPEN.pop().close()


def _engine(
    server: FakeServer, model_dir: Path | None = None, **settings: Any
) -> OpenAICompatibleEngine:
    model = str(model_dir) if model_dir is not None else "m2"
    engine = OpenAICompatibleEngine(
        Settings(engine="openai", engine_url=server.url, model=model, **settings)
    )
    _OPEN.append(engine)
    engine.load()
    return engine


def _request(images: tuple[Image.Image, ...] = (), **fields: Any) -> GenerationRequest:
    user = build_user_text("What is 2+2?", ["3", "4"])
    return GenerationRequest(SYSTEM_PROMPT, user, images, max_new_tokens=64, **fields)


def _decoded(url: str) -> Image.Image:
    header, data = url.split(",", 1)
    assert header == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_sends_the_system_prompt_and_images_as_data_urls_with_placeholders_in_place(
    server: FakeServer,
) -> None:
    engine = _engine(server)
    images = (Image.new("RGB", (300, 200), "red"), Image.new("RGBA", (56, 56), (0, 0, 255, 0)))
    [result] = engine.generate([_request(images)])
    assert result.error is None
    system, user = server.bodies[0]["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert user["role"] == "user"
    text, *parts = user["content"]
    assert text == {"type": "text", "text": IMAGE_PLACEHOLDER * 2 + _request().user_text}
    assert [part["type"] for part in parts] == ["image_url", "image_url"]
    sent = [_decoded(part["image_url"]["url"]) for part in parts]
    assert [image.size for image in sent] == [(308, 196), (56, 56)]
    assert sent[1].mode == "RGB" and sent[1].getpixel((0, 0)) == (255, 255, 255)
    assert result.image_sizes == ((308, 196), (56, 56))
    assert result.image_tokens == 11 * 7 + 2 * 2


def test_sends_stops_special_tokens_sampling_and_the_pixel_budget(server: FakeServer) -> None:
    engine = _engine(server, max_pixels=200_704)
    image = Image.new("RGB", (1000, 1000), "white")
    engine.generate([_request((image,), do_sample=True, temperature=0.7, top_p=0.9, seed=5,
                              max_pixels=100_000)])  # fmt: skip
    body = server.bodies[0]
    assert body["stop"] == ["<|im_end|>", "<|endoftext|>"]
    assert body["skip_special_tokens"] is False
    assert body["spaces_between_special_tokens"] is False
    assert (body["temperature"], body["top_p"], body["seed"]) == (0.7, 0.9, 5)
    assert body["max_tokens"] == 64
    assert body["stream"] is True and body["stream_options"]["include_usage"] is True
    assert body["mm_processor_kwargs"] == {"min_pixels": 3136, "max_pixels": 100_000}
    sent = _decoded(body["messages"][1]["content"][1]["image_url"]["url"])
    assert sent.width * sent.height <= 100_000 and sent.width % 28 == 0


def test_greedy_rows_send_temperature_zero(server: FakeServer) -> None:
    _engine(server).generate([_request(seed=None)])
    body = server.bodies[0]
    assert (body["temperature"], body["top_p"]) == (0.0, 1.0)
    assert "seed" not in body and "mm_processor_kwargs" not in body


def test_result_carries_the_streamed_text_and_the_servers_usage(server: FakeServer) -> None:
    [result] = _engine(server).generate([_request()])
    assert result.text == "<think>2+2</think>4"
    assert result.finish_reason == "stop"
    assert (result.prompt_tokens, result.completion_tokens) == (42, 4)


def test_length_finish_is_reported(server: FakeServer) -> None:
    server.script.finish_reason = "length"
    [result] = _engine(server).generate([_request()])
    assert result.finish_reason == "length"


def test_progress_comes_from_the_stream(server: FakeServer) -> None:
    seen: list[int] = []
    engine = _engine(server)
    [handle] = engine.submit([_request(on_token=seen.append)])
    assert handle.result(WAIT_S).error is None
    assert seen == [1, 2, 3, 4]
    assert handle.tokens == 4


def test_rows_run_at_once_and_concurrently(server: FakeServer) -> None:
    server.script.delay_s = 0.05
    engine = _engine(server)
    assert engine.row_mode == "self"
    handles = engine.submit([_request(), _request()])
    results = [handle.result(WAIT_S) for handle in handles]
    assert all(result.error is None for result in results)
    assert len(server.bodies) == 2


def test_cancel_closes_the_stream_and_the_server_sees_it(server: FakeServer) -> None:
    server.script.pieces = ["x"] * 2000
    server.script.delay_s = 0.01
    engine = _engine(server)
    [handle] = engine.submit([_request()])
    assert server.streaming.wait(WAIT_S)
    handle.cancel()
    result = handle.result(WAIT_S)
    assert result.finish_reason == "cancelled"
    assert server.disconnected.wait(WAIT_S)
    assert result.completion_tokens < 2000


def test_request_cancel_event_also_cancels(server: FakeServer) -> None:
    server.script.pieces = ["x"] * 2000
    server.script.delay_s = 0.01
    stop = threading.Event()
    [handle] = _engine(server).submit([_request(cancel=stop)])
    assert server.streaming.wait(WAIT_S)
    stop.set()
    assert handle.result(WAIT_S).finish_reason == "cancelled"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (503, "busy"),
        (429, "busy"),
        (504, "timeout"),
        (408, "timeout"),
        (401, "model_unavailable"),
        (500, "model_unavailable"),
        (400, "invalid_argument"),
    ],
)
def test_server_errors_map_onto_the_contract(server: FakeServer, status: int, code: str) -> None:
    engine = _engine(server)
    server.script.status = status
    [result] = engine.generate([_request()])
    assert result.error is not None and result.error.code == code


def test_a_stream_that_ends_without_finishing_is_model_unavailable(server: FakeServer) -> None:
    server.script.finish_reason = None
    [result] = _engine(server).generate([_request()])
    assert result.error is not None and result.error.code == "model_unavailable"


def test_an_unreachable_server_is_model_unavailable_at_load() -> None:
    with fake_openai_server() as gone:
        url = gone.url
    engine = OpenAICompatibleEngine(Settings(engine="openai", engine_url=url))
    with pytest.raises(ModelUnavailable):
        engine.load()


def test_a_missing_url_is_model_unavailable() -> None:
    with pytest.raises(ModelUnavailable):
        OpenAICompatibleEngine(Settings(engine="openai"))


def test_a_model_the_server_does_not_serve_is_model_unavailable(server: FakeServer) -> None:
    server.script.models = ["a", "b"]
    with pytest.raises(ModelUnavailable):
        _engine(server)


def test_the_only_served_model_is_used_when_names_differ(server: FakeServer) -> None:
    server.script.models = ["/srv/m2-reasoning"]
    engine = OpenAICompatibleEngine(Settings(engine="openai", engine_url=server.url))
    _OPEN.append(engine)
    engine.load()
    engine.generate([_request()])
    assert server.bodies[0]["model"] == "/srv/m2-reasoning"


def test_sends_the_api_key_as_a_bearer_token(server: FakeServer) -> None:
    server.script.api_key = "sekret"
    with pytest.raises(ModelUnavailable):
        _engine(server)
    engine = _engine(server, engine_api_key="sekret")
    [result] = engine.generate([_request()])
    assert result.error is None
    assert server.headers[-1]["authorization"] == "Bearer sekret"


def test_other_servers_get_plain_requests(server: FakeServer) -> None:
    server.script.m2 = False
    engine = _engine(server)
    assert engine.prompt_mode == "plain"
    engine.generate([_request((Image.new("RGB", (64, 64)),))])
    body = server.bodies[0]
    assert body["messages"][1]["content"][0]["text"] == _request().user_text
    assert not {"skip_special_tokens", "mm_processor_kwargs"} & set(body)


def test_reads_the_checkpoints_pixel_limit_from_a_local_model_dir(
    server: FakeServer, tmp_path: Path
) -> None:
    (tmp_path / "preprocessor_config.json").write_text('{"min_pixels": 3136, "max_pixels": 50176}')
    server.script.models = [str(tmp_path)]
    engine = _engine(server, model_dir=tmp_path)
    [result] = engine.generate([_request((Image.new("RGB", (1000, 1000)),))])
    width, height = result.image_sizes[0]
    assert width * height <= 50176


def test_the_reasoner_gives_a_parsed_result_through_the_server(server: FakeServer) -> None:
    server.script.pieces = ["<think>", "sum", "</think>", "<answer>", "B", "</answer>"]
    settings = Settings(engine="openai", engine_url=server.url, model="m2", cache_size=0)
    with M2Reasoner(settings) as reasoner:
        result = reasoner.visual_math_reason(question="What is 2+2?", choices=["3", "4"])
    assert (result.choice, result.status, result.usage.prompt_tokens) == ("B", "ok", 42)


def test_engine_options_and_variables_select_the_engine(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer
) -> None:
    import argparse

    monkeypatch.setenv("M2_ENGINE", "openai")
    monkeypatch.setenv("M2_ENGINE_URL", "http://127.0.0.1:1/v1")
    parser = argparse.ArgumentParser()
    add_model_options(parser)
    args = parser.parse_args(["--engine-url", server.url, "--engine-api-key", "sekret-key"])
    settings = settings_from_args(args)
    assert (settings.engine, settings.engine_url, settings.engine_api_key) == (
        "openai", server.url, "sekret-key"
    )  # fmt: skip
    assert "sekret-key" not in repr(settings)
    engine = create_engine(settings)
    assert isinstance(engine, OpenAICompatibleEngine)
    engine.close()


def test_doctor_checks_the_engine_server(server: FakeServer) -> None:
    from m2_tools.cli.doctor import collect_checks

    def engine_check(**fields: Any) -> str:
        settings = Settings(engine="openai", model="m2", **fields)
        [check] = [c for c in collect_checks(settings) if c.name == "engine server"]
        return check.status

    assert engine_check(engine_url=server.url) == "ok"
    server.script.m2 = False
    assert engine_check(engine_url=server.url) == "warn"
    assert engine_check(engine_url="http://127.0.0.1:1/v1") == "fail"
