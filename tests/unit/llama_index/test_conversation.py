"""LlamaIndex chat history -> semrouter turns, routed with the conversation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

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
