"""LlamaIndex chat history -> semrouter turns, routed with the conversation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core.base.llms.types import ImageBlock, TextBlock
from llama_index.core.llms import ChatMessage
from llama_index.core.schema import QueryBundle

from llama_index_semrouter._conversation import achat_route, chat_route, chat_turns, message_turn
from semrouter import ConversationRouter, FakeEncoder, QueryTypeError, Route, SemanticRouter

ROUTES = [
    Route("flights", ["book a flight to paris", "find flights to rome", "cheap plane tickets"]),
    Route("weather", ["weather forecast for tomorrow", "will it rain today", "is it sunny"]),
]

HISTORY = [
    ChatMessage(role="system", content="you help with travel and the weather forecast"),
    ChatMessage(role="user", content="book a flight to paris"),
    ChatMessage(role="assistant", content="Which day? Will it rain today? Is it sunny?"),
]
FOLLOW_UP = "what about tuesday to paris instead"


@pytest.fixture
def conversation(fake_encoder: FakeEncoder) -> Iterator[ConversationRouter]:
    with SemanticRouter(ROUTES, encoder=fake_encoder, threshold=0.3) as router:
        fake_encoder.reset_counts()
        yield ConversationRouter(router)


def test_chat_turns_roles_and_query() -> None:
    assert chat_turns(HISTORY, FOLLOW_UP) == [
        ("system", "you help with travel and the weather forecast"),
        ("user", "book a flight to paris"),
        ("assistant", "Which day? Will it rain today? Is it sunny?"),
        ("user", FOLLOW_UP),
    ]
    assert chat_turns(HISTORY, QueryBundle(FOLLOW_UP))[-1] == ("user", FOLLOW_UP)


def test_query_already_in_the_memory_is_not_added_twice() -> None:
    history = [*HISTORY, ChatMessage(role="user", content=FOLLOW_UP)]
    assert chat_turns(history, FOLLOW_UP) == chat_turns(history)
    assert len(chat_turns(history, FOLLOW_UP)) == 4


def test_message_turn_shapes() -> None:
    blocks = ChatMessage(
        role="user", blocks=[TextBlock(text="this flight"), ImageBlock(url="http://x/a.png")]
    )
    assert message_turn(blocks) == ("user", "this flight")
    assert message_turn(ChatMessage(role="chatbot", content="hi")) == ("assistant", "hi")
    assert message_turn(ChatMessage(role="tool", content=None)) == ("tool", "")
    assert message_turn({"role": "user", "content": "hi"}) == ("user", "hi")
    with pytest.raises(QueryTypeError):
        message_turn("hi")
    with pytest.raises(QueryTypeError):
        chat_turns("book a flight")  # type: ignore[arg-type]
    with pytest.raises(QueryTypeError):
        chat_turns(HISTORY, 42)  # type: ignore[arg-type]


def test_follow_up_routes_with_the_history(
    conversation: ConversationRouter, fake_encoder: FakeEncoder
) -> None:
    assert conversation.router.route(FOLLOW_UP).name is None
    fake_encoder.reset_counts()
    match = chat_route(conversation, HISTORY, FOLLOW_UP)
    assert match.name == "flights"
    assert match.context is True
    assert [t.index for t in match.turns] == [1, 3]
    assert fake_encoder.encoded_texts == 2
    asyncio.run(achat_route(conversation, HISTORY, FOLLOW_UP))
    assert fake_encoder.encoded_texts == 2  # nothing re-encoded


def test_switch_and_out_of_scope(conversation: ConversationRouter) -> None:
    assert chat_route(conversation, HISTORY, "will it rain today or is it sunny").name == "weather"
    assert chat_route(conversation, HISTORY, "who painted the mona lisa").name is None


# -- wired into the tool retriever ----------------------------------------------------------------
def _tools() -> list[Any]:
    from llama_index.core.tools import FunctionTool

    def book_flight(city: str) -> str:
        """Book a flight to paris or find flights to rome; cheap plane tickets."""
        return "booked"

    def get_weather(city: str) -> str:
        """Weather forecast for tomorrow: will it rain today, is it sunny."""
        return "sunny"

    return [FunctionTool.from_defaults(book_flight), FunctionTool.from_defaults(get_weather)]


def test_tool_retriever_reads_the_chat_memory(fake_encoder: FakeEncoder) -> None:
    from llama_index.core.memory import Memory

    from llama_index_semrouter import SemRouterToolRetriever

    memory = Memory.from_defaults(session_id="conversation-test")
    memory.put(ChatMessage(role="user", content="book a flight to paris"))
    memory.put(ChatMessage(role="assistant", content="Which day? Will it rain today?"))
    follow_up = "tomorrow instead"  # alone it reads as weather ("tomorrow")
    memory.put(ChatMessage(role="user", content=follow_up))
    with_memory = SemRouterToolRetriever.from_defaults(
        _tools(), encoder=fake_encoder, memory=memory, top_k=1
    )
    alone = SemRouterToolRetriever.from_defaults(_tools(), encoder=FakeEncoder(), top_k=1)
    try:
        assert [t.metadata.name for t in alone.retrieve(follow_up)] == ["get_weather"]
        assert [t.metadata.name for t in with_memory.retrieve(follow_up)] == ["book_flight"]
        picked = asyncio.run(with_memory.aretrieve(follow_up))
        assert [t.metadata.name for t in picked] == ["book_flight"]
        # A tool looked up by name still skips routing.
        assert [t.metadata.name for t in with_memory.retrieve("get_weather")] == ["get_weather"]
    finally:
        with_memory.close()
        alone.close()
