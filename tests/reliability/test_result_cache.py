"""The result cache: bounded LRU, keyed by everything that decides a greedy answer."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m2_tools.schemas import M2Result
from m2_tools.serving.result_cache import ResultCache, cache_key
from m2_tools.testing import ScriptedEngine

from ._support import ReasonerFactory, png_data_uri

BASE = {"question": "How long is QS?", "choices": ["11.3", "22.6"], "max_new_tokens": 64}


def stored(tag: str) -> M2Result:
    return M2Result.model_validate(
        {
            "tool": "visual_math_reason",
            "answer": tag,
            "status": "ok",
            "finish_reason": "stop",
            "model": {"id": "m", "backend": "scripted"},
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "image_tokens": 0},
            "timings_ms": {"queue": 0, "preprocess": 0, "generate": 0, "total": 0},
        }
    )


def test_evicts_the_least_recently_used_entry_beyond_its_bound() -> None:
    cache = ResultCache(2)
    cache.put("a", stored("a"))
    cache.put("b", stored("b"))
    assert cache.get("a") is not None  # a is now the most recently used

    cache.put("c", stored("c"))

    assert len(cache) == 2
    assert cache.get("b") is None
    assert [cache.get(k).answer for k in ("a", "c")] == ["a", "c"]  # type: ignore[union-attr]
    assert (cache.hits, cache.misses) == (3, 1)


def test_size_zero_stores_nothing() -> None:
    cache = ResultCache(0)
    cache.put("a", stored("a"))
    assert len(cache) == 0 and cache.get("a") is None


def test_stays_within_its_bound_under_many_distinct_calls(make_reasoner: ReasonerFactory) -> None:
    engine = ScriptedEngine()
    reasoner = make_reasoner(engine, cache_size=5)

    for n in range(12):
        reasoner.visual_math_reason(question=f"q{n}")
    for n in range(7, 12):
        assert reasoner.visual_math_reason(question=f"q{n}").timings_ms.cache_hit
    assert not reasoner.visual_math_reason(question="q0").timings_ms.cache_hit

    status = reasoner.status()
    assert status.cache_entries == 5
    assert status.cache_hits == 5
    assert len(engine.calls) == 13


@pytest.mark.parametrize(
    "change",
    [
        {"question": "How long is RT?"},
        {"choices": ["22.6", "11.3"]},
        {"choices": ["11.3", "22.6", "25.6"]},
        {"choices": None},
        {"max_new_tokens": 65},
        {"images": [png_data_uri(color=(0, 0, 255))]},
        {"images": [png_data_uri(), png_data_uri()]},
    ],
    ids=lambda change: "-".join(change),
)
def test_any_change_that_can_change_the_answer_misses(
    make_reasoner: ReasonerFactory, change: dict[str, Any]
) -> None:
    engine = ScriptedEngine()
    reasoner = make_reasoner(engine)
    first = {**BASE, "images": [png_data_uri()]}
    reasoner.run_tool("visual_math_reason", first)

    again = reasoner.run_tool("visual_math_reason", {**first, **change})

    assert again.timings_ms.cache_hit is False
    assert len(engine.calls) == 2


def test_the_other_tool_misses(make_reasoner: ReasonerFactory) -> None:
    engine = ScriptedEngine()
    reasoner = make_reasoner(engine)
    arguments = {**BASE, "images": [png_data_uri()]}
    reasoner.run_tool("visual_math_reason", arguments)

    assert not reasoner.run_tool("spatial_reason", arguments).timings_ms.cache_hit


def test_the_same_image_content_hits_whatever_the_reference(
    make_reasoner: ReasonerFactory, tmp_path: Path
) -> None:
    uri = png_data_uri()
    raw = base64.b64decode(uri.split(",", 1)[1])
    (tmp_path / "figure.png").write_bytes(raw)
    engine = ScriptedEngine()
    reasoner = make_reasoner(engine, allowed_dirs=(tmp_path,))

    references = [
        uri,
        uri.split(",", 1)[1],
        str(tmp_path / "figure.png"),
        "file://" + str(tmp_path / "figure.png"),
    ]
    hits = [
        reasoner.run_tool("visual_math_reason", {**BASE, "images": [ref]}).timings_ms.cache_hit
        for ref in references
    ]

    assert hits == [False, True, True, True]
    assert len(engine.calls) == 1


def test_a_hit_is_marked_and_carries_the_answer_and_its_own_timings(
    make_reasoner: ReasonerFactory,
) -> None:
    reasoner = make_reasoner(ScriptedEngine())
    miss = reasoner.run_tool("visual_math_reason", BASE)
    hit = reasoner.run_tool("visual_math_reason", {**BASE, "include_raw": True})
    hit_again = reasoner.run_tool("visual_math_reason", BASE)

    assert (miss.timings_ms.cache_hit, hit.timings_ms.cache_hit) == (False, True)
    assert hit.timings_ms.generate == 0 and hit.timings_ms.queue == 0
    assert hit.raw_output is not None and hit_again.raw_output is None
    strip = {"timings_ms", "raw_output"}
    assert hit.model_dump(exclude=strip) == miss.model_dump(exclude=strip)
    assert hit_again.model_dump(exclude=strip) == miss.model_dump(exclude=strip)


def test_a_failed_call_is_not_cached(make_reasoner: ReasonerFactory) -> None:
    from m2_tools.errors import InternalError
    from m2_tools.testing import ScriptedReply

    engine = ScriptedEngine(replies=[ScriptedReply(error=InternalError("once"))])
    reasoner = make_reasoner(engine)
    with pytest.raises(InternalError):
        reasoner.run_tool("visual_math_reason", BASE)

    assert reasoner.run_tool("visual_math_reason", BASE).timings_ms.cache_hit is False
    assert reasoner.status().cache_entries == 1


_fields = st.fixed_dictionaries(
    {
        "tool": st.sampled_from(["visual_math_reason", "spatial_reason"]),
        "question": st.text(max_size=12),
        "choices": st.none() | st.lists(st.text(max_size=4), max_size=3),
        "max_new_tokens": st.integers(16, 20),
        "image_digests": st.lists(st.sampled_from(["d1", "d2", "d1d2"]), max_size=2),
        "context": st.lists(st.sampled_from(["m", 3136, None]), min_size=1, max_size=2),
    }
)


@settings(max_examples=300, deadline=None, database=None)
@given(_fields, _fields)
def test_keys_are_equal_only_for_equal_inputs(a: dict[str, Any], b: dict[str, Any]) -> None:
    # An empty choice list and no choices are the same prompt, so they may share a key.
    def normal(fields: dict[str, Any]) -> dict[str, Any]:
        return {**fields, "choices": fields["choices"] or None}

    assert (cache_key(**a) == cache_key(**b)) == (normal(a) == normal(b))
