"""SemRouterSelector as a drop-in for EmbeddingSingleSelector (issue 11 points 3, 4, 8-10)."""

from __future__ import annotations

import asyncio
import copy
import pickle
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.selectors import EmbeddingSingleSelector
from llama_index.core.tools import ToolMetadata
from qdrant_client import QdrantClient

from llama_index_semrouter import SemRouterEmbedding, SemRouterSelector
from semrouter import ConfigurationError, FakeEncoder, LocalEncoder, Route, SemanticRouter

SUPPORT = [
    ToolMetadata(name="billing", description="Billing: invoices, payments, refunds and charges"),
    ToolMetadata(name="shipping", description="Shipping: parcel delivery, tracking and returns"),
    ToolMetadata(name="account", description="Account: login, password and profile settings"),
]
PARAPHRASES = [
    ("Can I get my money back?", 0),
    ("Why is my bill so high?", 0),
    ("I was charged twice for one order", 0),
    ("How do I pay my invoice?", 0),
    ("Where is my package?", 1),
    ("My order has not arrived yet", 1),
    ("How long does delivery take?", 1),
    ("What is my tracking number?", 1),
    ("I forgot my password", 2),
    ("I can't sign in", 2),
    ("How do I change my email address?", 2),
    ("Update my profile picture", 2),
]


def _memory(**kwargs: Any) -> SemRouterSelector:
    return SemRouterSelector.from_defaults(client=QdrantClient(":memory:"), **kwargs)


# -- point 3: descriptions alone route as the built-in does --------------------------------------
def test_description_only_choices_answer_like_the_embedding_selector() -> None:
    encoder = LocalEncoder.shared()
    ours = _memory(encoder=encoder)
    theirs = EmbeddingSingleSelector.from_defaults(embed_model=SemRouterEmbedding(encoder))
    for query, expected in PARAPHRASES:
        picked = ours.select(SUPPORT, query).ind  # never raises: no abstention was asked for
        assert picked == theirs.select(SUPPORT, query).ind, query
        assert picked == expected, query


def test_abstention_only_when_asked_for() -> None:
    off_topic = "zebra xylophone quantum"
    assert _memory(encoder=FakeEncoder()).select(SUPPORT, off_topic).ind in (0, 1, 2)
    with pytest.raises(LookupError):
        _memory(encoder=FakeEncoder(), threshold=0.3).select(SUPPORT, off_topic)
    fallback = _memory(encoder=FakeEncoder(), fallback="account")
    assert fallback.select(SUPPORT, off_topic).ind == 2


# -- point 4: several choice sets, concurrent async calls, no re-encoding -------------------------
SET_A = [
    ToolMetadata(name="weather", description="weather forecast rain sun"),
    ToolMetadata(name="flights", description="book a flight ticket"),
]
SET_B = [
    ToolMetadata(name="recipes", description="cooking recipes dinner"),
    ToolMetadata(name="weather", description="climate statistics history"),  # same name
    ToolMetadata(name="music", description="play a song playlist"),
]


async def test_concurrent_aselect_with_two_choice_sets() -> None:
    selector = _memory(encoder=FakeEncoder())
    jobs = []
    for i in range(40):
        if i % 2:
            jobs.append((selector.aselect(SET_A, "book a flight ticket to Rome"), 1))
        else:
            jobs.append((selector.aselect(SET_B, "play a song from my playlist"), 2))
    results = await asyncio.gather(*(job for job, _ in jobs))
    assert [r.ind for r in results] == [expected for _, expected in jobs]


def test_alternating_choice_sets_encode_nothing_new() -> None:
    encoder = FakeEncoder()
    selector = _memory(encoder=encoder)
    selector.select(SET_A, "weather forecast")
    selector.select(SET_B, "cooking recipes")
    encoder.reset_counts()
    for _ in range(5):
        assert selector.select(SET_A, "rain and sun forecast").ind == 0
        assert selector.select(SET_B, "climate statistics").ind == 1
    assert encoder.encoded_texts == 10  # the queries only


# -- point 8: a given router is never changed -----------------------------------------------------
def test_a_router_with_other_routes_is_refused_untouched() -> None:
    router = SemanticRouter(
        [Route("math", ["two plus two"])], encoder=FakeEncoder(), client=QdrantClient(":memory:")
    )
    with pytest.raises(ConfigurationError, match="router of its own"):
        SemRouterSelector(router)
    assert router.route_names == ["math"]
    router.close()


# -- point 9: copies share the router; pickles rebuild ------------------------------------------
class PicklableFake(FakeEncoder):
    def __reduce__(self) -> Any:
        return (PicklableFake, (self.dimension,))


def test_deepcopy_shares_the_router() -> None:
    selector = _memory(encoder=FakeEncoder())
    clone = copy.deepcopy(selector)
    assert clone.router is selector.router
    assert clone.select(SET_A, "book a flight").ind == 1
    clone.close()  # a copy does not close the shared router
    assert selector.select(SET_A, "weather forecast").ind == 0


def test_pickle_rebuilds_from_the_arguments(tmp_path: Path) -> None:
    selector = SemRouterSelector.from_defaults(
        SET_A, encoder=PicklableFake(64), path=tmp_path / "store", fallback="weather"
    )
    assert selector.select(SET_A, "book a flight").ind == 1
    data = pickle.dumps(selector)
    selector.close()
    clone = pickle.loads(data)
    try:
        assert clone.select(SET_A, "book a flight").ind == 1
        assert clone.fallback == "weather"
    finally:
        clone.close()


def test_pickle_with_a_ready_client_says_how_to_share() -> None:
    with pytest.raises(ConfigurationError, match="cannot be pickled"):
        pickle.dumps(_memory(encoder=FakeEncoder()))


# -- point 10: a misspelled key is not ignored ---------------------------------------------------
def test_misspelled_utterances_key_is_reported() -> None:
    with pytest.raises(ConfigurationError, match="wether"):
        _memory(encoder=FakeEncoder(), choices=SET_A, utterances={"wether": ["rain?"]})
    selector = _memory(encoder=FakeEncoder(), utterances={"wether": ["rain?"]})
    with pytest.warns(UserWarning, match="wether"):
        selector.select(SET_A, "rain")


def test_tool_retriever_refuses_a_router() -> None:
    from llama_index.core.tools import FunctionTool

    from llama_index_semrouter import SemRouterToolRetriever

    def get_weather(city: str) -> str:
        """The weather forecast for a city."""
        return "sunny"

    router = SemanticRouter(
        [Route("math", ["two plus two"])], encoder=FakeEncoder(), client=QdrantClient(":memory:")
    )
    with pytest.raises(ConfigurationError, match="ToolIndex"):
        SemRouterToolRetriever([FunctionTool.from_defaults(get_weather)], router)  # type: ignore[arg-type]
    assert router.route_names == ["math"]
    router.close()
