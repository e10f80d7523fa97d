"""LangChain conversations -> semrouter turns, routed with the conversation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompt_values import ChatPromptValue
from langchain_core.runnables import RunnableLambda

from langchain_semrouter import SemRouterBranch
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
    assert fake_encoder.encoded_texts == 3  # window=3: the three user turns, each once


# -- wired into the adapters ---------------------------------------------------------------------
def _branch(router: SemanticRouter, **options: Any) -> SemRouterBranch[Any, str]:
    return SemRouterBranch(
        ("flights", RunnableLambda(lambda x: "flights")),
        ("weather", RunnableLambda(lambda x: "weather")),
        RunnableLambda(lambda x: "default"),
        router=router,
        **options,
    )


def test_branch_routes_message_lists_and_state_with_the_conversation(
    conversation: ConversationRouter,
) -> None:
    branch = _branch(conversation.router)
    assert branch.invoke(MESSAGES) == "flights"
    assert branch.invoke({"messages": MESSAGES}) == "flights"
    assert asyncio.run(branch.ainvoke({"messages": MESSAGES})) == "flights"
    inputs = [MESSAGES, {"messages": MESSAGES}, "will it rain today", [HumanMessage("hi")]]
    assert branch.batch(inputs) == ["flights", "flights", "weather", "default"]
    assert asyncio.run(branch.abatch(inputs)) == ["flights", "flights", "weather", "default"]
    # Last message only, as before, when asked.
    last_only = _branch(conversation.router, conversation=False)
    assert last_only.invoke(MESSAGES) == "default"
    assert last_only.batch([MESSAGES]) == ["default"]


def test_branch_run_metadata_names_the_turns(conversation: ConversationRouter) -> None:
    from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

    runs = RunCollectorCallbackHandler()
    _branch(conversation.router).invoke({"messages": MESSAGES}, {"callbacks": [runs]})
    metadata = runs.traced_runs[0].child_runs[0].extra["metadata"]
    assert metadata["semrouter_route"] == "flights"
    assert metadata["semrouter_turns"] == [1, 3]


def _lc_tools() -> list[Any]:
    from langchain_core.tools import tool

    @tool
    def book_flight(city: str) -> str:
        """Book a flight to paris, find flights to rome, cheap plane tickets."""
        return "booked"

    @tool
    def get_weather(city: str) -> str:
        """Weather forecast for tomorrow, will it rain today, is it sunny."""
        return "sunny"

    return [book_flight, get_weather]


def test_tool_selector_keeps_the_tools_of_the_request_a_follow_up_follows(
    fake_encoder: FakeEncoder,
) -> None:
    from langchain_semrouter import SemRouterToolSelector

    tools = _lc_tools()
    state = {
        "messages": [
            HumanMessage("book a flight to paris"),
            AIMessage("Which day?"),
            # Alone it is nearer the weather (the fake encoder's words: "for"); with its cue
            # ("for") and its flights score within cue_margin, it follows the flight request.
            HumanMessage("for cheap"),
        ]
    }
    with_conversation = SemRouterToolSelector.from_tools(tools, encoder=fake_encoder, max_tools=1)
    alone = SemRouterToolSelector.from_tools(
        tools, encoder=FakeEncoder(), max_tools=1, conversation=False
    )
    try:
        assert [t.name for t in alone.select(state, tools)] == ["get_weather"]
        assert [t.name for t in with_conversation.select(state, tools)] == ["book_flight"]
        picked = asyncio.run(with_conversation.aselect(state["messages"], tools))
        assert [t.name for t in picked] == ["book_flight"]
        # A plain str is one text, as before.
        assert [t.name for t in with_conversation.select("tomorrow instead", tools)] == [
            "get_weather"
        ]
    finally:
        with_conversation.close()
        alone.close()


def test_decision_model_answers_a_follow_up_as_the_request_it_follows(
    fake_encoder: FakeEncoder,
) -> None:
    pytest.importorskip("langchain_core.decisions", reason="langchain-core < 1.8 (lowest pins)")
    from langchain_core.decisions import Choice

    from langchain_semrouter import SemRouterDecisionModel

    question = Choice(
        instructions="Which desk?",
        criteria={
            "flights": "book a flight to paris, find flights to rome, cheap plane tickets",
            "weather": "weather forecast for tomorrow, will it rain today, is it sunny",
        },
    )
    state = {
        "messages": [
            HumanMessage("book a flight to paris"),
            AIMessage("Which day?"),
            # Alone it is nearer the weather (the fake encoder's words: "for"); with its cue
            # ("for") and its flights score within cue_margin, it follows the flight request.
            HumanMessage("for cheap"),
        ]
    }
    with_conversation = SemRouterDecisionModel(encoder=fake_encoder)
    alone = SemRouterDecisionModel(encoder=FakeEncoder(), conversation=False)
    ask = {"state": state, "questions": {"desk": question}}
    assert alone.invoke(ask).choices["desk"].choice == "weather"
    assert with_conversation.invoke(ask).choices["desk"].choice == "flights"
    assert asyncio.run(with_conversation.ainvoke(ask)).choices["desk"].choice == "flights"
