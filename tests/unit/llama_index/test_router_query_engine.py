"""The selector inside real RouterQueryEngine and RouterRetriever pipelines."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RouterQueryEngine
from llama_index.core.retrievers import RouterRetriever
from llama_index.core.tools import QueryEngineTool, RetrieverTool
from qdrant_client import QdrantClient

from llama_index_semrouter import SemRouterSelector
from semrouter import Encoder, FakeEncoder, NoRouteMatchedError

from .conftest import ENGINES, LoopGuardEncoder

EXAMPLES = {
    "billing": ["I want a refund for my invoice", "why was my payment charged twice"],
    "shipping": ["where is my parcel", "track my delivery"],
    "weather": ["will it rain tomorrow", "what is the temperature outside"],
}


def engine(tools: list[QueryEngineTool], encoder: Encoder, **kwargs: Any) -> RouterQueryEngine:
    selector = SemRouterSelector.from_defaults(
        encoder=encoder, utterances=EXAMPLES, client=QdrantClient(":memory:"), **kwargs
    )
    return RouterQueryEngine(selector=selector, query_engine_tools=tools, llm=MockLLM())


def test_the_right_engine_answers(
    engine_tools: list[QueryEngineTool], fake_encoder: FakeEncoder
) -> None:
    router = engine(engine_tools, fake_encoder)
    assert "BILLING-DOC" in str(router.query("I want a refund for my invoice"))
    response = router.query("where is my parcel")
    assert "SHIPPING-DOC" in str(response)
    assert "BILLING-DOC" not in str(response)
    selection = response.metadata["selector_result"]
    assert selection.ind == 1 and "'shipping'" in selection.reason


def test_one_embedding_call_per_query_inside_the_engine(
    engine_tools: list[QueryEngineTool], fake_encoder: FakeEncoder
) -> None:
    router = engine(engine_tools, fake_encoder)
    router.query("track my delivery")
    fake_encoder.reset_counts()
    for _ in range(3):
        router.query("will it rain tomorrow")
    assert fake_encoder.calls == 3


def test_multi_select_combines_the_answers(
    engine_tools: list[QueryEngineTool], fake_encoder: FakeEncoder
) -> None:
    router = engine(engine_tools, fake_encoder, max_outputs=2, threshold=0.15)
    response = router.query("track my delivery and will it rain tomorrow")
    assert sorted(response.metadata["selector_result"].inds) == [1, 2]
    text = str(response)
    assert "SHIPPING-DOC" in text and "WEATHER-DOC" in text  # the summary saw both answers


def test_fallback_engine_answers_when_nothing_matches(
    engine_tools: list[QueryEngineTool], fake_encoder: FakeEncoder
) -> None:
    router = engine(engine_tools, fake_encoder, fallback="weather")
    response = router.query("zebra xylophone quantum")
    assert "WEATHER-DOC" in str(response)
    assert response.metadata["selector_result"].reason.startswith("fallback 'weather'")


def test_no_match_says_why_instead_of_failed_to_select(
    engine_tools: list[QueryEngineTool], fake_encoder: FakeEncoder
) -> None:
    router = engine(engine_tools, fake_encoder, threshold=0.3)  # abstention asked for
    with pytest.raises(NoRouteMatchedError, match=r"best was .* below its threshold"):
        router.query("zebra xylophone quantum")


async def test_async_query_path(
    engine_tools: list[QueryEngineTool], loop_guard_encoder: LoopGuardEncoder
) -> None:
    router = engine(engine_tools, loop_guard_encoder)
    response = await router.aquery("will it rain tomorrow")
    assert "WEATHER-DOC" in str(response)
    multi = engine(engine_tools, loop_guard_encoder, max_outputs=3, threshold=0.2)
    response = await multi.aquery("refund my invoice and track my delivery")
    assert sorted(response.metadata["selector_result"].inds)[:2] == [0, 1]
    assert loop_guard_encoder.async_calls >= 2


def test_router_retriever(engine_retrievers: dict[str, Any], fake_encoder: FakeEncoder) -> None:
    tools = [
        RetrieverTool.from_defaults(retriever, name=name, description=ENGINES[name][0])
        for name, retriever in engine_retrievers.items()
    ]
    selector = SemRouterSelector.from_defaults(
        encoder=fake_encoder, utterances=EXAMPLES, client=QdrantClient(":memory:")
    )
    retriever = RouterRetriever(selector=selector, retriever_tools=tools, llm=MockLLM())
    nodes = retriever.retrieve("where is my parcel")
    assert [n.node.get_content() for n in nodes] == [ENGINES["shipping"][1]]


def test_router_engine_with_the_local_encoder(
    engine_tools: list[QueryEngineTool], local_encoder: Encoder
) -> None:
    router = engine(engine_tools, local_encoder)
    assert "BILLING-DOC" in str(router.query("Could I get my money back for this bill?"))
    assert "WEATHER-DOC" in str(router.query("Is it going to be sunny this weekend?"))
