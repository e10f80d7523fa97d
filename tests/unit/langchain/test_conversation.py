"""LangChain conversations -> semrouter turns, routed with the conversation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompt_values import ChatPromptValue

from langchain_semrouter._conversation import (
    aroute_conversation,
    conversation_turns,
    message_turn,
    route_conversation,
)
from semrouter import ConversationRouter, FakeEncoder, QueryTypeError, Route, SemanticRouter

ROUTES = [
    Route("flights", ["book a flight to paris", "find flights to rome", "cheap plane tickets"]),
    Route("weather", ["weather forecast for tomorrow", "will it rain today", "is it sunny"]),
]

MESSAGES = [
    SystemMessage("you help with travel and the weather forecast"),
    HumanMessage("book a flight to paris"),
    AIMessage("For which day? Will it rain today, is it sunny? Let me check the weather."),
    HumanMessage("what about tuesday to paris instead"),
]


@pytest.fixture
def conversation(fake_encoder: FakeEncoder) -> Iterator[ConversationRouter]:
    with SemanticRouter(ROUTES, encoder=fake_encoder, threshold=0.3) as router:
        fake_encoder.reset_counts()
        yield ConversationRouter(router)


def test_message_list_and_state_give_the_same_turns() -> None:
    expected = [
        ("system", "you help with travel and the weather forecast"),
        ("user", "book a flight to paris"),
        ("assistant", "For which day? Will it rain today, is it sunny? Let me check the weather."),
        ("user", "what about tuesday to paris instead"),
    ]
    assert conversation_turns(MESSAGES) == expected
    assert conversation_turns({"messages": MESSAGES, "other": 1}) == expected
    assert conversation_turns(ChatPromptValue(messages=MESSAGES)) == expected


def test_shorthands_tool_and_chat_messages() -> None:
    assert message_turn(("human", "hi")) == ("user", "hi")
    assert message_turn(("ai", "hello")) == ("assistant", "hello")
    assert message_turn({"role": "user", "content": "hi"}) == ("user", "hi")
    assert message_turn(ToolMessage("42", tool_call_id="c1")) == ("tool", "42")
    assert message_turn(ChatMessage(role="user", content="hi")) == ("user", "hi")
    image = HumanMessage(
        content=[
            {"type": "text", "text": "this flight"},
            {"type": "image_url", "image_url": {"url": "data:,"}},
        ]
    )
    assert message_turn(image) == ("user", "this flight")


@pytest.mark.parametrize("value", ["book a flight", HumanMessage("hi"), {"question": "hi"}, 42])
def test_a_single_text_is_not_a_conversation(value: object) -> None:
    assert conversation_turns(value) is None


def test_bad_messages_raise_query_type_error(conversation: ConversationRouter) -> None:
    with pytest.raises(QueryTypeError):
        conversation_turns([HumanMessage("hi"), 42])
    with pytest.raises(QueryTypeError):
        route_conversation(conversation, "book a flight")


def test_follow_up_routes_with_the_conversation(
    conversation: ConversationRouter, fake_encoder: FakeEncoder
) -> None:
    assert conversation.route_last(conversation_turns(MESSAGES) or []).name is None
    fake_encoder.reset_counts()
    match = route_conversation(conversation, {"messages": MESSAGES})
    assert match.name == "flights"
    assert match.context is True
    assert [t.index for t in match.turns] == [1, 3]  # the assistant and system turns skipped
    assert fake_encoder.encoded_texts == 1  # the last turn was cached by route_last


def test_async_and_switch(conversation: ConversationRouter, fake_encoder: FakeEncoder) -> None:
    switch = [*MESSAGES, HumanMessage("will it rain today or is it sunny")]
    match = asyncio.run(aroute_conversation(conversation, switch))
    assert match.name == "weather"
    assert match.context is False
    assert fake_encoder.encoded_texts == 2  # window=2: the first user turn is not looked at
