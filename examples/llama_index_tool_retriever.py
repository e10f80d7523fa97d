"""SemRouterToolRetriever: give a FunctionAgent only the tools that fit the message.

Ten tools, but each message is offered only the best few (ranked by name, description,
arguments and examples in semrouter's ToolIndex): one embedding call, no LLM call, and a
smaller tool list for the model to read. A fake
function-calling LLM stands in for a real one (it prints the tools it is offered and calls
them), so this runs offline as it stands.

    python examples/llama_index_tool_retriever.py
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool

from llama_index_semrouter import SemRouterToolRetriever
from semrouter import LocalEncoder


def make_tool(name: str, doc: str) -> FunctionTool:
    def tool(query: str = "") -> str:
        return f"<{name} result>"

    tool.__doc__ = doc
    return FunctionTool.from_defaults(tool, name=name, description=doc)


TOOLS = [
    make_tool("get_weather", "Weather forecast for a city: rain, sun, temperature."),
    make_tool("book_flight", "Search and book flights between two cities."),
    make_tool("book_hotel", "Find and reserve hotel rooms."),
    make_tool("convert_currency", "Convert money between currencies at today's rate."),
    make_tool("translate", "Translate text into another language."),
    make_tool("calendar_add", "Add a meeting or event to the calendar."),
    make_tool("send_email", "Write and send an email to someone."),
    make_tool("stock_price", "Current share price of a listed company."),
    make_tool("recipe_search", "Find cooking recipes by ingredient or dish."),
    make_tool("news_headlines", "Today's top news headlines."),
]
EXAMPLES = {
    "get_weather": ["will it rain in Paris tomorrow", "how hot is it in Madrid"],
    "book_flight": ["I need a plane ticket to Tokyo", "flights from London to Rome"],
    "convert_currency": ["how much is 100 euros in dollars", "exchange rate yen to pounds"],
    "calendar_add": ["schedule a meeting with Anna on Monday", "put the dentist in my calendar"],
    "send_email": ["email Bob that I'm running late", "send a message to my boss"],
}


def fake_llm() -> MockFunctionCallingLLM:
    last: dict[str, Any] = {"tools": []}

    class Offered(MockFunctionCallingLLM):
        # Older llama-index-core does not pass the offered tools to the response generator.
        def _prepare_chat_with_tools(self, tools: Any, *args: Any, **kwargs: Any) -> Any:
            last["tools"] = list(tools)
            return super()._prepare_chat_with_tools(tools, *args, **kwargs)

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        if any(m.role == MessageRole.TOOL for m in messages):
            return ChatMessage(role=MessageRole.ASSISTANT, content="Done.")
        tools = kwargs.get("tools") or last["tools"]
        print(f"    LLM is offered {[t.metadata.name for t in tools]}")
        if not tools:
            return ChatMessage(role=MessageRole.ASSISTANT, content="No tool fits.")
        call = ToolCallBlock(tool_call_id="1", tool_name=tools[0].metadata.name, tool_kwargs={})
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])

    return Offered(response_generator=respond)


async def main() -> None:
    encoder = LocalEncoder()
    retriever = SemRouterToolRetriever.from_defaults(
        TOOLS, encoder=encoder, utterances=EXAMPLES, top_k=2
    )
    print(f"{len(TOOLS)} tools indexed")
    agent = FunctionAgent(tool_retriever=retriever, llm=fake_llm())
    for message in [
        "Is it going to rain in Berlin this weekend?",
        "Book me a flight to Lisbon and a hotel there",
        "What's 250 dollars in Swiss francs?",
        "Tell me a joke about penguins",
    ]:
        print(f"  {message!r}")
        handler = agent.run(user_msg=message)
        async for event in handler.stream_events():
            if type(event).__name__ == "ToolCallResult":
                print(f"    called {event.tool_name} -> {event.tool_output.content}")  # type: ignore[attr-defined]
        print(f"    agent: {await handler}")
    retriever.close()

    counting = LocalEncoder()
    calls = {"n": 0}
    original = counting.encode_batch

    def counted(texts: list[str]) -> Any:
        calls["n"] += len(texts)
        return original(texts)

    counting.encode_batch = counted  # type: ignore[method-assign]
    second = SemRouterToolRetriever.from_defaults(
        TOOLS, encoder=counting, utterances=EXAMPLES, top_k=2
    )
    print(f"\nA second retriever: {calls['n']} texts re-embedded (vectors shared in the process)")
    found = [t.metadata.name for t in second.retrieve("send an email to Carla")]
    print(f"  'send an email to Carla' -> {found}")
    for match in second.rank("send an email to Carla", 3):
        print(f"    {match.rank}. {match.name}: similarity {match.similarity:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
