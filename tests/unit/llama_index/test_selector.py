"""SemRouterSelector on its own: mapping choices to routes, thresholds, counts, async, spans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.base_selector import BaseSelector
from llama_index.core.selectors import EmbeddingSingleSelector
from llama_index.core.tools import ToolMetadata
from qdrant_client import QdrantClient

from llama_index_semrouter import SemRouterEmbedding, SemRouterSelector
from llama_index_semrouter.selectors import choice_of
from semrouter import (
    ConfigurationError,
    Encoder,
    FakeEncoder,
    NoRouteMatchedError,
    QdrantLocation,
    SemanticRouter,
)

from .conftest import LoopGuardEncoder

CHOICES = [
    ToolMetadata(name="flights", description="book a flight ticket to another city"),
    ToolMetadata(name="weather", description="the weather forecast rain sun temperature"),
    ToolMetadata(name="recipes", description="cooking recipes for dinner"),
]


def make(encoder: Encoder, **kwargs: Any) -> SemRouterSelector:
    """A selector on an in-memory Qdrant client (the embedded store takes ~0.4 s to open)."""
    return SemRouterSelector.from_defaults(
        encoder=encoder, client=QdrantClient(":memory:"), **kwargs
    )


def test_is_a_base_selector_with_class_name(fake_encoder: FakeEncoder) -> None:
    selector = make(fake_encoder)
    assert isinstance(selector, BaseSelector)
    assert SemRouterSelector.class_name() == "SemRouterSelector"


def test_selects_the_closest_choice_with_a_reason(fake_encoder: FakeEncoder) -> None:
    result = make(fake_encoder).select(CHOICES, "what is the weather forecast tomorrow")
    assert result.ind == 1
    assert "'weather'" in result.reason
    assert "best score" in result.reason  # no threshold asked for: the best choice
    assert "the weather forecast" in result.reason  # the matched utterance


def test_one_embedding_call_per_query(fake_encoder: FakeEncoder) -> None:
    selector = make(fake_encoder)
    selector.select(CHOICES, "book a flight")  # first call encodes the three descriptions
    fake_encoder.reset_counts()
    for query in [
        "book a flight to Rome",
        "weather forecast tomorrow",
        "cooking recipes for tonight",
    ]:
        selector.select(CHOICES, query)
    assert fake_encoder.calls == 3
    assert fake_encoder.encoded_texts == 3


def test_llama_index_embedding_selector_embeds_every_choice_each_query(
    fake_encoder: FakeEncoder,
) -> None:
    theirs = EmbeddingSingleSelector.from_defaults(embed_model=SemRouterEmbedding(fake_encoder))
    theirs.select(CHOICES, "book a flight")
    fake_encoder.reset_counts()
    theirs.select(CHOICES, "book a flight")
    assert fake_encoder.calls == 1 + len(CHOICES)


def test_changed_choices_are_synced_incrementally(fake_encoder: FakeEncoder) -> None:
    selector = make(fake_encoder)
    selector.select(CHOICES, "book a flight")
    fake_encoder.reset_counts()
    more = [*CHOICES, ToolMetadata(name="hotels", description="reserve a hotel room")]
    assert selector.select(more, "reserve a hotel room for tonight").ind == 3
    assert fake_encoder.encoded_texts == 2  # the new description and the query
    fake_encoder.reset_counts()
    assert selector.select(CHOICES[:2], "book a flight ticket").ind == 0
    assert fake_encoder.encoded_texts == 1  # removing a choice encodes nothing
    assert sorted({choice_of(n) for n in selector.router.route_names}) == [
        "flights",
        "hotels",
        "recipes",
        "weather",
    ]  # both choice sets stay indexed


def test_string_choices_are_keyed_by_a_content_hash(fake_encoder: FakeEncoder) -> None:
    selector = make(fake_encoder, utterances={"cooking recipes": ["what should I cook"]})
    result = selector.select(["flight tickets", "cooking recipes"], "what should I cook tonight")
    assert result.ind == 1
    names = selector.router.route_names
    assert all(name.startswith("choice-") for name in names)
    again = make(FakeEncoder(), utterances={"cooking recipes": ["what should I cook"]})
    again.select(["flight tickets", "cooking recipes"], "flight tickets")
    assert again.router.route_names == names  # the same content, the same keys


def test_example_utterances_widen_a_choice(fake_encoder: FakeEncoder) -> None:
    query = "should I take an umbrella"
    with pytest.raises(NoRouteMatchedError):
        make(FakeEncoder(), threshold=0.3).select(CHOICES, query)
    selector = make(
        fake_encoder, utterances={"weather": ["should I take an umbrella today"]}, threshold=0.3
    )
    assert selector.select(CHOICES, query).ind == 1


def test_multi_selection_is_best_first_and_capped(fake_encoder: FakeEncoder) -> None:
    selector = make(fake_encoder, max_outputs=2, threshold=0.1)
    result = selector.select(CHOICES, "book a flight ticket and check the weather forecast")
    assert len(result.selections) == 2
    assert set(result.inds) == {0, 1}
    assert all(0 <= i < len(CHOICES) for i in result.inds)


def test_no_match_raises_a_clear_error_without_fallback(fake_encoder: FakeEncoder) -> None:
    with pytest.raises(NoRouteMatchedError) as info:
        make(fake_encoder, threshold=0.3).select(CHOICES, "zebra xylophone quantum")
    message = str(info.value)
    assert "best was" in message and "threshold" in message and "fallback=" in message


def test_fallback_choice_when_nothing_passes(fake_encoder: FakeEncoder) -> None:
    result = make(fake_encoder, fallback="recipes").select(CHOICES, "zebra xylophone quantum")
    assert result.ind == 2
    assert result.reason.startswith("fallback 'recipes'")
    assert "threshold" in result.reason


def test_unknown_fallback_is_a_configuration_error(fake_encoder: FakeEncoder) -> None:
    with pytest.raises(ConfigurationError, match="not one of the choices"):
        make(fake_encoder, fallback="nope").select(CHOICES, "zebra xylophone quantum")


def test_per_choice_thresholds(fake_encoder: FakeEncoder) -> None:
    selector = make(fake_encoder, thresholds={"weather": 0.99}, fallback="recipes")
    assert selector.select(CHOICES, "the weather forecast").ind == 2
    weather = next(n for n in selector.router.route_names if choice_of(n) == "weather")
    assert selector.router.threshold_for(weather) == 0.99


@pytest.mark.parametrize(
    ("choices", "error"),
    [
        ([], "at least one choice"),
        (
            [ToolMetadata(name="a", description="x"), ToolMetadata(name="a", description="y")],
            "distinct",
        ),
        ([ToolMetadata(name="a", description="  ")], "no description"),
    ],
)
def test_bad_choices(fake_encoder: FakeEncoder, choices: list[ToolMetadata], error: str) -> None:
    with pytest.raises(ConfigurationError, match=error):
        make(fake_encoder).select(choices, "hello")


def test_bad_arguments(fake_encoder: FakeEncoder) -> None:
    router = SemanticRouter(encoder=fake_encoder, client=QdrantClient(":memory:"))
    with pytest.raises(ConfigurationError):
        SemRouterSelector(router, max_outputs=0)
    with pytest.raises(ConfigurationError):
        SemRouterSelector(router, utterances={"a": "one string"})
    with pytest.raises(ConfigurationError):
        SemRouterSelector("router")  # type: ignore[arg-type]


def test_prompts_are_empty_and_updatable(fake_encoder: FakeEncoder) -> None:
    selector = make(fake_encoder)
    assert selector.get_prompts() == {}
    selector.update_prompts({})
    assert selector.get_prompts() == {}


def test_spans_are_recorded_like_builtin_selectors(fake_encoder: FakeEncoder, spans) -> None:  # type: ignore[no-untyped-def]
    make(fake_encoder).select(CHOICES, "book a flight")
    ids = [span.id_ for span in spans.completed_spans]
    assert any(i.startswith("SemRouterSelector._select-") for i in ids), ids


async def test_async_select_never_encodes_on_the_loop(
    loop_guard_encoder: LoopGuardEncoder,
    spans,  # type: ignore[no-untyped-def]
) -> None:
    selector = make(loop_guard_encoder)
    result = await selector.aselect(CHOICES, "the weather forecast")
    assert result.ind == 1
    loop_guard_encoder.reset_counts()
    loop_guard_encoder.async_calls = 0
    assert (await selector.aselect(CHOICES, "book a flight ticket")).ind == 0
    assert loop_guard_encoder.async_calls == 1 and loop_guard_encoder.calls == 1
    ids = [span.id_ for span in spans.completed_spans]
    assert any(i.startswith("SemRouterSelector._aselect-") for i in ids)


async def test_async_and_sync_agree(fake_encoder: FakeEncoder) -> None:
    selector = make(fake_encoder, max_outputs=3, threshold=0.0)
    sync = selector.select(CHOICES, "flight forecast dinner")
    assert (await selector.aselect(CHOICES, "flight forecast dinner")).inds == sync.inds


def test_real_local_encoder_end_to_end(local_encoder) -> None:  # type: ignore[no-untyped-def]
    selector = make(
        local_encoder,
        utterances={
            "billing": ["I want a refund", "why was I charged twice"],
            "tech": ["the app keeps crashing", "I get an error when I log in"],
        },
    )
    choices = [
        ToolMetadata(name="billing", description="Questions about invoices, payments and refunds"),
        ToolMetadata(name="tech", description="Technical support: crashes, bugs, error messages"),
    ]
    assert selector.select(choices, "I was charged twice, can I get my money back?").ind == 0
    assert selector.select(choices, "the app crashes when I open it").ind == 1


def test_declared_choices_reuse_persisted_vectors(tmp_path: Path) -> None:
    first = FakeEncoder()
    SemRouterSelector.from_defaults(CHOICES, encoder=first, path=tmp_path / "sel").close()
    assert first.encoded_texts == 3
    second = FakeEncoder()
    selector = SemRouterSelector.from_defaults(CHOICES, encoder=second, path=tmp_path / "sel")
    assert selector.select(CHOICES, "book a flight ticket").ind == 0
    assert second.encoded_texts == 1  # only the query
    selector.close()


def test_from_defaults_takes_a_location(tmp_path: Path) -> None:
    where = QdrantLocation(path=tmp_path / "sel")
    with_location = SemRouterSelector.from_defaults(CHOICES, encoder=FakeEncoder(), location=where)
    assert with_location.router.location == where
    with_location.close()
    encoder = FakeEncoder()
    with_path = SemRouterSelector.from_defaults(CHOICES, encoder=encoder, path=tmp_path / "sel")
    assert with_path.router.location == where and encoder.encoded_texts == 0  # the same folder
    with_path.close()


def test_location_keywords_among_router_options_go_into_the_location() -> None:
    selector = SemRouterSelector.from_defaults(
        CHOICES, encoder=FakeEncoder(), client=QdrantClient(":memory:"), timeout=2.5
    )
    assert selector.router.location.timeout == 2.5
    assert selector.router.location.client is not None
    selector.close()


def test_location_and_location_keywords_are_refused_together(tmp_path: Path) -> None:
    where = QdrantLocation(path=tmp_path / "sel")
    with pytest.raises(ConfigurationError, match="location= or path="):
        SemRouterSelector.from_defaults(CHOICES, location=where, path=tmp_path / "other")
    with pytest.raises(ConfigurationError, match="location= or timeout="):
        SemRouterSelector.from_defaults(CHOICES, location=where, timeout=1.0)
