"""SemRouterToolRetriever: thresholds, stable ids, persistence, and a real FunctionAgent."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms import MockLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.objects.base import ObjectRetriever
from llama_index.core.tools import BaseTool, FunctionTool
from qdrant_client import QdrantClient

from llama_index_semrouter import SemRouterToolRetriever
from llama_index_semrouter.retrievers import tool_node_id
from semrouter import ConfigurationError, Encoder, FakeEncoder

from .conftest import LoopGuardEncoder

# LlamaIndex's workflow engine inspects pydantic models with deprecated attributes; not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore::pydantic.PydanticDeprecatedSince20"),
    pytest.mark.filterwarnings("ignore::pydantic.PydanticDeprecatedSince211"),
]

CALLED: list[str] = []


def get_weather(city: str = "Paris") -> str:
    """The weather forecast for a city: rain, sun and temperature."""
    CALLED.append("get_weather")
    return f"sunny in {city}"


def book_flight(city: str = "Rome") -> str:
    """Book a flight ticket to a city."""
    CALLED.append("book_flight")
    return f"flight to {city} booked"


def convert_currency(amount: float = 1.0) -> str:
    """Convert an amount of money from euros to dollars."""
    CALLED.append("convert_currency")
    return f"{amount * 1.1:.2f} USD"


TOOLS = [FunctionTool.from_defaults(f) for f in (get_weather, book_flight, convert_currency)]
EXAMPLES = {
    "get_weather": ["will it rain tomorrow", "weather forecast"],
    "book_flight": ["book a flight ticket", "I need a plane ticket"],
    "convert_currency": ["convert euros to dollars", "how much money is that in dollars"],
}


def make(
    encoder: Encoder, tools: Sequence[BaseTool] = TOOLS, **kwargs: Any
) -> SemRouterToolRetriever:
    kwargs.setdefault("client", QdrantClient(":memory:"))
    return SemRouterToolRetriever.from_defaults(
        tools, encoder=encoder, utterances=EXAMPLES, **kwargs
    )


def names(tools: Sequence[BaseTool]) -> list[str | None]:
    return [tool.metadata.name for tool in tools]


def test_is_an_object_retriever(fake_encoder: FakeEncoder) -> None:
    retriever = make(fake_encoder)
    assert isinstance(retriever, ObjectRetriever)
    assert SemRouterToolRetriever.class_name() == "SemRouterToolRetriever"
    assert names(retriever.tools) == ["get_weather", "book_flight", "convert_currency"]


async def test_retrieve_and_aretrieve_agree_under_the_threshold(fake_encoder: FakeEncoder) -> None:
    retriever = make(fake_encoder)
    for query in ["will it rain tomorrow", "book a flight ticket", "zebra xylophone quantum"]:
        assert names(retriever.retrieve(query)) == names(await retriever.aretrieve(query))
    assert names(retriever.retrieve("will it rain tomorrow")) == ["get_weather"]
    assert retriever.retrieve("zebra xylophone quantum") == []  # nothing passes: no tools


def test_without_threshold_returns_the_best_top_k(fake_encoder: FakeEncoder) -> None:
    retriever = make(fake_encoder, top_k=2, apply_threshold=False)
    found = names(retriever.retrieve("zebra xylophone quantum"))
    assert len(found) == 2
    assert names(retriever.retrieve("will it rain tomorrow"))[0] == "get_weather"


def test_one_embedding_call_per_message(fake_encoder: FakeEncoder) -> None:
    retriever = make(fake_encoder)
    fake_encoder.reset_counts()
    for query in ["will it rain tomorrow", "book a flight", "euros to dollars"]:
        retriever.retrieve(query)
    assert fake_encoder.calls == 3


def test_a_tool_name_returns_that_tool_without_embedding(fake_encoder: FakeEncoder) -> None:
    retriever = make(fake_encoder)
    fake_encoder.reset_counts()
    assert names(retriever.retrieve("convert_currency")) == ["convert_currency"]
    assert fake_encoder.calls == 0
    assert retriever.retrieve("   ") == []


async def test_async_retrieval_never_encodes_on_the_loop(
    loop_guard_encoder: LoopGuardEncoder,
) -> None:
    loop_guard_encoder.armed = False  # building the routes is sync work, before any query
    retriever = make(loop_guard_encoder)
    loop_guard_encoder.armed = True
    loop_guard_encoder.async_calls = 0
    assert names(await retriever.aretrieve("will it rain tomorrow")) == ["get_weather"]
    assert loop_guard_encoder.async_calls == 1


def test_node_ids_are_stable_across_processes() -> None:
    here = tool_node_id("get_weather")
    code = (
        "from llama_index_semrouter.retrievers import tool_node_id; "
        "print(tool_node_id('get_weather'))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert other == here
    node = make(FakeEncoder()).retriever.retrieve("will it rain tomorrow")[0]
    assert node.node.node_id == here


def test_routes_persist_in_qdrant_between_runs(tmp_path: Path) -> None:
    first = FakeEncoder()
    make(first, path=tmp_path / "tools", client=None).close()
    assert first.encoded_texts == 9  # three descriptions and six examples
    second = FakeEncoder()
    retriever = make(second, path=tmp_path / "tools", client=None)
    assert second.encoded_texts == 0  # nothing re-embedded
    assert names(retriever.retrieve("book a flight ticket")) == ["book_flight"]
    assert second.encoded_texts == 1
    retriever.close()


def test_set_tools_is_incremental(fake_encoder: FakeEncoder) -> None:
    retriever = make(fake_encoder)
    fake_encoder.reset_counts()
    report = retriever.set_tools(TOOLS[:2])
    assert fake_encoder.encoded_texts == 0 and report.deleted > 0
    assert "convert_currency" not in names(retriever.retrieve("convert euros to dollars"))


def test_bad_tools(fake_encoder: FakeEncoder) -> None:
    with pytest.raises(ConfigurationError, match="distinct"):
        make(fake_encoder, tools=[TOOLS[0], TOOLS[0]])
    with pytest.raises(ConfigurationError, match="top_k"):
        make(fake_encoder, top_k=0)


def recording_llm(offered: list[list[str]]) -> MockFunctionCallingLLM:
    """A function-calling LLM that records the tools it is offered and calls each once."""
    last: dict[str, Any] = {"tools": []}

    class Recording(MockFunctionCallingLLM):
        # Older llama-index-core (0.14.18 and before) does not pass the tools to the generator.
        def _prepare_chat_with_tools(self, tools: Any, *args: Any, **kwargs: Any) -> Any:
            last["tools"] = list(tools)
            return super()._prepare_chat_with_tools(tools, *args, **kwargs)

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        if any(m.role == MessageRole.TOOL for m in messages):
            return ChatMessage(role=MessageRole.ASSISTANT, content="done")
        tools = kwargs.get("tools") or last["tools"]
        offered.append([tool.metadata.name for tool in tools])
        calls = [
            ToolCallBlock(tool_call_id=f"call-{i}", tool_name=tool.metadata.name, tool_kwargs={})
            for i, tool in enumerate(tools)
        ]
        if not calls:
            return ChatMessage(role=MessageRole.ASSISTANT, content="no tools")
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=calls)

    return Recording(response_generator=respond)


async def test_function_agent_is_offered_only_the_retrieved_tools(
    fake_encoder: FakeEncoder,
) -> None:
    offered: list[list[str]] = []
    agent = FunctionAgent(tool_retriever=make(fake_encoder), llm=recording_llm(offered))
    CALLED.clear()
    result = await agent.run(user_msg="will it rain tomorrow in Paris")
    assert offered[0] == ["get_weather"]
    assert CALLED == ["get_weather"]  # the agent found the tool again by name and ran it
    assert "done" in str(result)


async def test_function_agent_with_the_local_encoder(local_encoder: Encoder) -> None:
    offered: list[list[str]] = []
    agent = FunctionAgent(tool_retriever=make(local_encoder), llm=recording_llm(offered))
    await agent.run(user_msg="How much is 20 euros in US dollars?")
    assert offered[0][:1] == ["convert_currency"]


def test_react_agent_accepts_it(fake_encoder: FakeEncoder) -> None:
    retriever = make(fake_encoder)
    agent = ReActAgent(tool_retriever=retriever, llm=MockLLM())
    assert agent.tool_retriever is retriever
