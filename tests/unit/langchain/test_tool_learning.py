"""Learning from the agent's tool calls (learn_from_calls=True) and tool sets stored in Qdrant:
what one selector or middleware learns is stored with the tools and seen by every other one on
the same folder or client; nothing is encoded again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from qdrant_client import QdrantClient

from langchain_semrouter import SemRouterToolSelector, SemRouterToolSelectorMiddleware
from langchain_semrouter._calls import turn_calls
from semrouter import ConfigurationError, EncodeCache, FakeEncoder, QdrantLocation, ToolIndex

from .test_tools import TOOLS, ToolCallingFake

REQUEST = "my cat needs a checkup"


def _turn(tool: str, *, status: str = "success", request: str = REQUEST) -> list[Any]:
    call = {"name": tool, "args": {"query": "x"}, "id": "call-1", "type": "tool_call"}
    return [
        HumanMessage("hello"),
        AIMessage("hi"),
        HumanMessage(request),
        AIMessage("", tool_calls=[call]),
        ToolMessage("ok", tool_call_id="call-1", name=tool, status=status),
    ]


def test_turn_calls_reads_the_calls_that_ran_since_the_last_human_message() -> None:
    assert turn_calls(_turn("search_doctor")) == (REQUEST, ["search_doctor"])
    assert turn_calls({"messages": _turn("search_doctor", status="error")}) == (REQUEST, [])
    unanswered = _turn("search_doctor")[:-1]
    assert turn_calls(unanswered) == (REQUEST, [])
    assert turn_calls("a str") is None and turn_calls([AIMessage("no human")]) is None


def test_selection_learns_the_calls_of_the_turn_once_without_encoding(
    fake_encoder: FakeEncoder,
) -> None:
    index = ToolIndex(encoder=fake_encoder, cache=EncodeCache())
    selector = SemRouterToolSelector(index, max_tools=3, learn_from_calls=True)
    selector.select([HumanMessage(REQUEST)], TOOLS)  # the first model call ranks the request
    fake_encoder.reset_counts()
    selector.select(_turn("search_veterinary"), TOOLS)  # the next one sees the call
    assert fake_encoder.encoded_texts == 0  # the ranked request's vector is stored
    assert index.examples("search_veterinary") == [REQUEST]
    version = index.version
    selector.select(_turn("search_veterinary"), TOOLS)
    assert index.version == version  # learnt once: nothing written again
    selector.select(_turn("search_taxes", status="error"), TOOLS)
    assert index.examples("search_taxes") == []  # a failed or refused call teaches nothing
    assert selector.rank(REQUEST, TOOLS, limit=1)[0].name == "search_veterinary"


def test_without_the_flag_nothing_is_learnt(fake_encoder: FakeEncoder) -> None:
    index = ToolIndex(encoder=fake_encoder, cache=EncodeCache())
    selector = SemRouterToolSelector(index, max_tools=3)
    selector.select(_turn("search_veterinary"), TOOLS)
    assert index.examples("search_veterinary") == []
    assert selector.record_calls(_turn("search_veterinary")) == 1  # the explicit seam
    assert index.examples("search_veterinary") == [REQUEST]


async def test_async_selection_learns_too(fake_encoder: FakeEncoder) -> None:
    index = ToolIndex(encoder=fake_encoder, cache=EncodeCache())
    selector = SemRouterToolSelector(index, max_tools=3, learn_from_calls=True)
    await selector.aselect(_turn("search_veterinary"), TOOLS)
    assert index.examples("search_veterinary") == [REQUEST]


def _agent_run(middleware: SemRouterToolSelectorMiddleware, tool: str, request: str) -> None:
    call = {"name": tool, "args": {"query": "x"}, "id": "call-1", "type": "tool_call"}
    model = ToolCallingFake(messages=iter([AIMessage("", tool_calls=[call]), AIMessage("done")]))
    agent = create_agent(model, tools=TOOLS, middleware=[middleware])
    agent.invoke({"messages": [HumanMessage(request)]})


def test_middleware_learns_in_create_agent_and_a_second_worker_on_the_folder_sees_it(
    tmp_path: Path,
) -> None:
    encoder = FakeEncoder()
    first = SemRouterToolSelectorMiddleware.from_tools(
        TOOLS, encoder=encoder, max_tools=3, learn_from_calls=True, path=tmp_path,
        cache=EncodeCache(),
    )  # fmt: skip
    assert first.learn_from_calls
    _agent_run(first, "search_veterinary", REQUEST)
    encoder.reset_counts()
    second = SemRouterToolSelectorMiddleware.from_tools(
        TOOLS, encoder=encoder, max_tools=1, path=tmp_path, cache=EncodeCache()
    )
    try:
        assert encoder.encoded_texts == 0  # tools and example: vectors from the collection
        assert second.selector.tool_index.examples("search_veterinary") == [REQUEST]
        picked = second.selector.select([HumanMessage(REQUEST)], TOOLS)
        assert [t.name for t in picked] == ["search_veterinary"]
    finally:
        first.close()
        second.close()
    with pytest.raises(Exception, match="closed"):
        first.selector.tool_index.observe("search_veterinary", "again")


def test_two_selectors_on_one_injected_client(fake_encoder: FakeEncoder) -> None:
    client = QdrantClient(":memory:")
    one = SemRouterToolSelector.from_tools(
        TOOLS, encoder=fake_encoder, client=client, cache=EncodeCache()
    )
    two = SemRouterToolSelector.from_tools(
        TOOLS, encoder=fake_encoder, location=QdrantLocation(client=client),
        cache=EncodeCache(), refresh_interval=0,
    )  # fmt: skip
    assert one.record_call(REQUEST, "search_veterinary")
    assert two.rank(REQUEST, limit=1)[0].scores["example"] == pytest.approx(1.0)
    assert two.tool_index.examples("search_veterinary") == [REQUEST]
    two.tool_index.clear_examples("search_veterinary")
    assert one.tool_index.examples("search_veterinary") == []


def test_index_keywords_go_with_a_built_index_only(fake_encoder: FakeEncoder) -> None:
    index = ToolIndex(encoder=fake_encoder, cache=EncodeCache())
    with pytest.raises(ConfigurationError, match="only when the selector builds"):
        SemRouterToolSelector(index, path="/nowhere")
    with pytest.raises(ConfigurationError, match="either selector"):
        SemRouterToolSelectorMiddleware(
            selector=SemRouterToolSelector(index), client=QdrantClient(":memory:")
        )
    with pytest.raises(ConfigurationError, match="no tool"):
        SemRouterToolSelector(index).record_call(REQUEST, "nope")
