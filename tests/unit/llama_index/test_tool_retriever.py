"""SemRouterToolRetriever: thresholds, stable ids, persistence, and a real FunctionAgent."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms import MockLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.objects.base import ObjectRetriever
from llama_index.core.tools import BaseTool, FunctionTool

from llama_index_semrouter import SemRouterToolRetriever
from llama_index_semrouter.retrievers import tool_node_id, tool_spec
from semrouter import ConfigurationError, EncodeCache, Encoder, FakeEncoder, ToolIndex

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
    """A retriever whose index has a cache of its own (the encoder's counts are the test's)."""
    index = ToolIndex(encoder=encoder, cache=EncodeCache())
    return SemRouterToolRetriever(tools, index, utterances=EXAMPLES, **kwargs)


def names(tools: Sequence[BaseTool]) -> list[str | None]:
    return [tool.metadata.name for tool in tools]


def test_is_an_object_retriever(fake_encoder: FakeEncoder) -> None:
    retriever = make(fake_encoder)
    assert isinstance(retriever, ObjectRetriever)
    assert SemRouterToolRetriever.class_name() == "SemRouterToolRetriever"
    assert names(retriever.tools) == ["get_weather", "book_flight", "convert_currency"]


async def test_retrieve_and_aretrieve_agree_and_never_come_back_empty(
    fake_encoder: FakeEncoder,
) -> None:
    retriever = make(fake_encoder, top_k=2)
    for query in ["will it rain tomorrow", "book a flight ticket", "zebra xylophone quantum"]:
        found = names(retriever.retrieve(query))
        assert found == names(await retriever.aretrieve(query)) and len(found) == 2
    assert names(retriever.retrieve("will it rain tomorrow"))[0] == "get_weather"
    # As ObjectIndex: a request close to no tool still gets the best top_k.
    assert len(retriever.retrieve("zebra xylophone quantum")) == 2


def test_abstains_only_when_asked(fake_encoder: FakeEncoder) -> None:
    retriever = make(fake_encoder, top_k=3, min_score=0.3)
    assert names(retriever.retrieve("will it rain tomorrow")) == ["get_weather"]
    assert retriever.retrieve("zebra xylophone quantum") == []
    strict = make(fake_encoder, top_k=3, thresholds={"get_weather": 1.0})
    assert "get_weather" not in names(strict.retrieve("will it rain tomorrow"))


def test_rank_gives_every_tool_with_its_scores(fake_encoder: FakeEncoder) -> None:
    retriever = make(fake_encoder, top_k=1)
    ranked = retriever.rank("will it rain tomorrow")
    assert ranked[0].name == "get_weather" and len(ranked) == 3
    assert ranked[0].scores["example"] > ranked[0].scores["description"]
    nodes = retriever.retriever.retrieve("will it rain tomorrow")
    assert nodes[0].score == ranked[0].similarity


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
    loop_guard_encoder.armed = False  # indexing the tools is sync work, before any query
    retriever = make(loop_guard_encoder, top_k=1)
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


def test_retrievers_over_the_same_tools_share_their_vectors() -> None:
    model_id = f"fake-{uuid.uuid4()}"  # a fingerprint no other test has filled the cache for
    first = FakeEncoder(model_id=model_id)
    SemRouterToolRetriever.from_defaults(TOOLS, encoder=first, utterances=EXAMPLES)
    assert first.encoded_texts == 12  # 3 names, 3 descriptions, 6 examples (bare args: none)
    second = FakeEncoder(model_id=model_id)
    retriever = SemRouterToolRetriever.from_defaults(TOOLS, encoder=second, utterances=EXAMPLES)
    assert second.encoded_texts == 0  # nothing re-embedded in the same process
    assert names(retriever.retrieve("book a flight ticket"))[0] == "book_flight"
    assert second.encoded_texts == 1


def test_set_tools_is_incremental(fake_encoder: FakeEncoder) -> None:
    retriever = make(fake_encoder)
    fake_encoder.reset_counts()
    retriever.set_tools(TOOLS[:2])
    assert fake_encoder.encoded_texts == 0
    assert "convert_currency" not in names(retriever.retrieve("convert euros to dollars"))


def test_bad_tools(fake_encoder: FakeEncoder) -> None:
    with pytest.raises(ConfigurationError, match="distinct"):
        make(fake_encoder, tools=[TOOLS[0], TOOLS[0]])
    with pytest.raises(ConfigurationError, match="top_k"):
        make(fake_encoder, top_k=0)
    with pytest.raises(ConfigurationError, match="router= is gone"):
        SemRouterToolRetriever.from_defaults(TOOLS, encoder=fake_encoder, router=object())
    with pytest.raises(ConfigurationError, match="only when the retriever builds"):
        make(fake_encoder, path="/nowhere")  # the index is given: it says where it lives
    with pytest.raises(ConfigurationError, match="LlamaIndex tools"):
        make(fake_encoder, tools=["not a tool"])  # type: ignore[list-item]


def test_tool_spec_drops_the_signature_line_and_reads_arguments() -> None:
    spec = tool_spec(TOOLS[0], ["is it sunny"])
    assert spec.description == "The weather forecast for a city: rain, sun and temperature."
    assert spec.arguments == {"city": ""} and spec.examples == ("is it sunny",)


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
    agent = FunctionAgent(tool_retriever=make(fake_encoder, top_k=1), llm=recording_llm(offered))
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
