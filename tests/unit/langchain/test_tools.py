"""Tool preselection: the selector, the create_agent middleware on a fake tool-calling model."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool, tool
from pydantic import Field

from langchain_semrouter import (
    SemRouterToolSelector,
    SemRouterToolSelectorMiddleware,
    tool_spec,
)
from semrouter import ConfigurationError, EncodeCache, FakeEncoder, SemanticRouter, ToolIndex

TOPICS = [
    "weather",
    "stocks",
    "flights",
    "hotels",
    "recipes",
    "movies",
    "music",
    "football",
    "tennis",
    "news",
    "calendar",
    "email",
    "translation",
    "dictionary",
    "currency",
    "taxes",
    "mortgage",
    "insurance",
    "pharmacy",
    "doctor",
    "dentist",
    "gym",
    "yoga",
    "gardening",
    "plumbing",
    "electrician",
    "carpentry",
    "painting",
    "parking",
    "trains",
    "buses",
    "taxis",
    "bicycles",
    "museums",
    "concerts",
    "theatre",
    "restaurants",
    "groceries",
    "laundry",
    "pets",
    "veterinary",
    "babysitting",
    "tutoring",
    "library",
    "podcasts",
    "photography",
    "printing",
    "shipping",
    "passwords",
    "backups",
]


def _make_tool(topic: str) -> BaseTool:
    def run(query: str) -> str:
        return f"{topic} result for {query}"

    return StructuredTool.from_function(
        run,
        name=f"search_{topic}",
        description=f"Find {topic} details and answer {topic} questions.",
    )


TOOLS = [_make_tool(topic) for topic in TOPICS]
assert len(TOOLS) == 50


class ToolCallingFake(GenericFakeChatModel):
    """GenericFakeChatModel that records the tools each model call was bound with."""

    bound: list[list[str]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self.bound.append([t["name"] if isinstance(t, dict) else t.name for t in tools])
        return self


def _model(tool: str) -> ToolCallingFake:
    call = {"name": tool, "args": {"query": "x"}, "id": "call-1", "type": "tool_call"}
    return ToolCallingFake(messages=iter([AIMessage("", tool_calls=[call]), AIMessage("done")]))


class LoopGuard(FakeEncoder):
    """Refuses sync encoding on a running event loop (worker threads are fine)."""

    def encode(self, texts: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return super().encode(texts)
        raise AssertionError("sync encode on the event loop")


def _index(encoder: FakeEncoder, **options: Any) -> ToolIndex:
    """An index with a cache of its own, so the encoder's counts are this test's."""
    return ToolIndex(encoder=encoder, cache=EncodeCache(), **options)


def _middleware(encoder: FakeEncoder, **kwargs: Any) -> SemRouterToolSelectorMiddleware:
    return SemRouterToolSelectorMiddleware(_index(encoder), **kwargs)


def _selector(encoder: FakeEncoder, **kwargs: Any) -> SemRouterToolSelector:
    return SemRouterToolSelector(_index(encoder), **kwargs)


def _check_run(model: ToolCallingFake, result: dict[str, Any]) -> None:
    assert len(model.bound) == 2  # one model call per agent step
    for names in model.bound:
        assert len(names) == 4 and "search_flights" in names and "search_backups" in names
    tool_messages = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert tool_messages[0].content == "flights result for x"


def test_agent_sees_only_selected_tools(fake_encoder: FakeEncoder) -> None:
    middleware = _middleware(fake_encoder, max_tools=3, always_include=["search_backups"])
    model = _model("search_flights")
    agent = create_agent(model, tools=TOOLS, middleware=[middleware])
    result = agent.invoke({"messages": [HumanMessage("find cheap flights to Rome")]})
    _check_run(model, result)
    # Each distinct tool text was encoded once, the query once: the second model call
    # reuses its vector.
    texts = {text for t in TOOLS for _, text in tool_spec(t).texts()}
    assert fake_encoder.encoded_texts == len(texts) + 1


async def test_agent_async_path() -> None:
    encoder = LoopGuard()
    middleware = _middleware(encoder, max_tools=3, always_include=["search_backups"])
    model = _model("search_flights")
    agent = create_agent(model, tools=TOOLS, middleware=[middleware])
    result = await agent.ainvoke({"messages": [HumanMessage("find cheap flights to Rome")]})
    _check_run(model, result)


@pytest.mark.parametrize("topic", ["weather", "mortgage", "veterinary", "podcasts"])
def test_query_for_a_tool_keeps_it(fake_encoder: FakeEncoder, topic: str) -> None:
    selector = _selector(fake_encoder, max_tools=5)
    picked = selector.select(f"I have a {topic} question", TOOLS)
    assert f"search_{topic}" in [t.name for t in picked] and len(picked) == 5


def test_selected_tools_keep_their_order_and_dicts_pass(fake_encoder: FakeEncoder) -> None:
    provider_tool = {"type": "web_search_preview"}
    selector = _selector(fake_encoder, max_tools=2)
    tools = [provider_tool, *TOOLS]
    picked = selector.select([HumanMessage("weather and stocks today")], tools)
    assert picked[-1] is provider_tool  # LLMToolSelectorMiddleware puts provider dicts last
    names = [t.name for t in picked[:-1]]
    assert names == ["search_weather", "search_stocks"]


def test_rank_gives_scores_and_ranks_that_do_not_depend_on_the_limit(
    fake_encoder: FakeEncoder,
) -> None:
    selector = _selector(fake_encoder, max_tools=3)
    ranked = selector.rank("weather and stocks today", TOOLS)
    assert len(ranked) == len(TOOLS) and [m.rank for m in ranked[:3]] == [1, 2, 3]
    assert {m.name for m in ranked[:2]} == {"search_weather", "search_stocks"}
    assert {"description", "name", "lexical"} <= set(ranked[0].scores)
    for limit in (1, 3, 7):
        assert selector.rank("weather and stocks today", TOOLS, limit) == ranked[:limit]
    top3 = {m.name for m in ranked[:3]}
    picked = selector.select("weather and stocks today", TOOLS)
    assert [t.name for t in picked] == [t.name for t in TOOLS if t.name in top3]


def test_no_max_tools_uses_the_threshold(fake_encoder: FakeEncoder) -> None:
    selector = _selector(fake_encoder)
    picked = selector.select("weather", TOOLS)
    assert [t.name for t in picked] == ["search_weather"]
    strict = SemRouterToolSelector(selector.tool_index, max_tools=10, min_score=0.99)
    assert strict.select("weather", TOOLS) == []
    # Nothing passes the threshold: every tool is offered, never none.
    assert len(selector.select("zebra xylophone quantum", TOOLS)) == len(TOOLS)


def test_always_include_must_exist(fake_encoder: FakeEncoder) -> None:
    selector = _selector(fake_encoder, always_include=["nope"])
    with pytest.raises(ValueError, match="always_include"):
        selector.select("weather", TOOLS)


def test_changed_tool_is_reindexed(fake_encoder: FakeEncoder) -> None:
    selector = _selector(fake_encoder, max_tools=1)
    selector.select("weather", TOOLS[:3])
    fake_encoder.reset_counts()
    selector.select("weather", TOOLS[:3])
    assert fake_encoder.encoded_texts == 0  # tools and query known
    changed = StructuredTool.from_function(
        lambda query: "", name="search_weather", description="Umbrella advice."
    )
    assert [t.name for t in selector.select("umbrella advice", [changed, *TOOLS[1:3]])] == [
        "search_weather"
    ]


def test_selectors_over_the_same_tools_share_their_vectors() -> None:
    model_id = f"fake-{uuid.uuid4()}"  # a fingerprint no other test has filled the cache for
    first = FakeEncoder(model_id=model_id)
    SemRouterToolSelector.from_tools(TOOLS, encoder=first)
    assert first.encoded_texts == 100  # 50 names, 50 descriptions
    again = FakeEncoder(model_id=model_id)  # same fingerprint, same process
    selector = SemRouterToolSelector.from_tools(TOOLS, encoder=again, max_tools=2)
    assert again.encoded_texts == 0  # nothing re-encoded
    assert "search_taxes" in [t.name for t in selector.select("my taxes", TOOLS)]
    assert again.encoded_texts == 1


async def test_runnable_for_bind_tools_users(fake_encoder: FakeEncoder) -> None:
    selector = _selector(fake_encoder, max_tools=1)
    pick = selector.as_runnable(TOOLS)
    state = {"messages": [HumanMessage("the dentist appointment")]}
    assert [t.name for t in pick.invoke(state)] == ["search_dentist"]
    assert [t.name for t in await pick.ainvoke(state)] == ["search_dentist"]


def test_model_call_without_tools_or_human_is_untouched(fake_encoder: FakeEncoder) -> None:
    middleware = _middleware(fake_encoder, max_tools=1)
    model = GenericFakeChatModel(messages=itertools.cycle([AIMessage("hi")]))
    agent = create_agent(model, tools=[], middleware=[middleware])
    assert agent.invoke({"messages": [HumanMessage("hello")]})["messages"][-1].content == "hi"
    assert fake_encoder.encoded_texts == 0


def test_a_router_is_refused_with_a_clear_message(fake_encoder: FakeEncoder) -> None:
    from qdrant_client import QdrantClient

    router = SemanticRouter(encoder=fake_encoder, client=QdrantClient(":memory:"))
    with pytest.raises(ConfigurationError, match="ToolIndex"):
        SemRouterToolSelector(router)  # type: ignore[arg-type]
    router.close()


def test_tool_spec_reads_name_arguments_and_examples() -> None:
    @tool
    def getStockPrice(ticker: str) -> str:
        """Latest share price."""
        return "1"

    getStockPrice.metadata = {"examples": ["how is AAPL doing"]}
    spec = tool_spec(getStockPrice, ["price of tesla"])
    assert spec.name == "getStockPrice" and spec.arguments == {"ticker": ""}
    assert spec.examples == ("how is AAPL doing", "price of tesla")
    assert tool_spec(getStockPrice).texts()[0] == ("name", "get stock price")


def test_record_call_keeps_the_request_as_an_example_without_encoding(
    fake_encoder: FakeEncoder,
) -> None:
    selector = _selector(fake_encoder, max_tools=1)
    request = [HumanMessage("my cat needs a checkup")]
    selector.select(request, TOOLS)
    fake_encoder.reset_counts()
    assert selector.record_call(request, "search_veterinary")
    assert fake_encoder.encoded_texts == 0  # the ranked request's vector is reused
    assert selector.tool_index.examples("search_veterinary") == ["my cat needs a checkup"]
    assert [t.name for t in selector.select(request, TOOLS)] == ["search_veterinary"]
