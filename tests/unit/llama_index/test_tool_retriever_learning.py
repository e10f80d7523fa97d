"""SemRouterToolRetriever on a stored tool set (path=, client=) and learning from the agent's
tool calls (learn_from_calls=True): a FunctionAgent's call is learnt, stored with the tools and
seen by a second retriever on the same location; nothing is encoded again."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from qdrant_client import QdrantClient

from llama_index_semrouter import SemRouterToolRetriever
from semrouter import EncodeCache, FakeEncoder, QdrantLocation, ToolIndex

from .test_tool_retriever import TOOLS, recording_llm

pytestmark = [
    pytest.mark.filterwarnings("ignore::pydantic.PydanticDeprecatedSince20"),
    pytest.mark.filterwarnings("ignore::pydantic.PydanticDeprecatedSince211"),
]

REQUEST = "will it rain tomorrow in Paris"


def test_tools_stored_in_a_folder_are_read_back_without_encoding(tmp_path: Path) -> None:
    encoder = FakeEncoder()
    first = SemRouterToolRetriever.from_defaults(
        TOOLS, encoder=encoder, path=tmp_path, cache=EncodeCache(), top_k=1
    )
    first.close()
    encoder.reset_counts()
    second = SemRouterToolRetriever.from_defaults(
        TOOLS, encoder=encoder, path=tmp_path, cache=EncodeCache(), top_k=1
    )
    try:
        assert encoder.encoded_texts == 0  # every tool text came from the collection
        assert second.index.location.kind == "path"
        assert [t.metadata.name for t in second.retrieve("book a flight ticket")] == ["book_flight"]
    finally:
        second.close()


async def test_a_function_agent_call_is_learnt_and_shared_through_an_injected_client() -> None:
    client, encoder = QdrantClient(":memory:"), FakeEncoder()
    learning = SemRouterToolRetriever.from_defaults(
        TOOLS, encoder=encoder, client=client, cache=EncodeCache(), top_k=1,
        learn_from_calls=True,
    )  # fmt: skip
    agent = FunctionAgent(tool_retriever=learning, llm=recording_llm([]))
    await agent.run(user_msg=REQUEST)
    assert learning.index.examples("get_weather") == [REQUEST]  # looked up by name: called
    assert learning.index.examples("book_flight") == []  # not offered, not called

    encoder.reset_counts()
    other = SemRouterToolRetriever.from_defaults(
        TOOLS, encoder=encoder, location=QdrantLocation(client=client), cache=EncodeCache()
    )
    assert encoder.encoded_texts == 0
    assert other.index.examples("get_weather") == [REQUEST]
    best = other.rank(REQUEST, 1)[0]
    assert best.name == "get_weather" and best.scores["example"] == pytest.approx(1.0)
    other.index.clear_examples("get_weather")
    assert learning.index.examples("get_weather") == []


def test_without_the_flag_a_lookup_teaches_nothing_and_record_call_does(
    fake_encoder: FakeEncoder,
) -> None:
    index = ToolIndex(encoder=fake_encoder, cache=EncodeCache())
    retriever = SemRouterToolRetriever(TOOLS, index, top_k=1)
    retriever.retrieve(REQUEST)
    retriever.retrieve("get_weather")
    assert index.examples("get_weather") == []
    retriever.learn_from_calls = True
    retriever.retrieve(REQUEST)
    retriever.retrieve("book_flight")  # never offered for a message: nothing to learn
    retriever.retrieve("get_weather")
    retriever.retrieve("get_weather")  # once per offer
    assert index.examples("get_weather") == [REQUEST] and index.examples("book_flight") == []
    assert retriever.record_call("a plane to Oslo", "book_flight")
    assert index.examples("book_flight") == ["a plane to Oslo"]
    retriever.close()  # the index was given: its owner closes it
    assert index.observe("book_flight", "fly me to Rome")
