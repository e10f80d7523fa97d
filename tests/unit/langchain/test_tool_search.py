"""Enforcing the selection and searching for more tools, in create_agent with a fake model."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from langchain_semrouter import SemRouterToolSearchMiddleware, SemRouterToolSelectorMiddleware
from langchain_semrouter.tool_search import SEARCH_TOOL_NAME, found_tools
from semrouter import EncodeCache, FakeEncoder, ToolIndex

from .test_tools import TOOLS, ToolCallingFake


def _index() -> ToolIndex:
    return ToolIndex(encoder=FakeEncoder(), cache=EncodeCache())


def _calls(*steps: tuple[str, dict[str, Any]]) -> ToolCallingFake:
    messages = [
        AIMessage("", tool_calls=[{"name": n, "args": a, "id": f"call-{i}", "type": "tool_call"}])
        for i, (n, a) in enumerate(steps)
    ]
    return ToolCallingFake(messages=iter([*messages, AIMessage("done")]))


def _tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


# -- enforcement ---------------------------------------------------------------------------------
def test_a_tool_not_offered_is_answered_instead_of_run() -> None:
    middleware = SemRouterToolSelectorMiddleware(_index(), max_tools=2, enforce=True)
    model = _calls(("search_taxes", {"query": "x"}))  # the model calls a tool it was not given
    agent = create_agent(model, tools=TOOLS, middleware=[middleware])
    result = agent.invoke({"messages": [HumanMessage("find cheap flights to Rome")]})
    assert "search_taxes" not in model.bound[0]
    refusal = _tool_messages(result)[0]
    assert refusal.status == "error" and "not offered" in refusal.content
    assert "taxes result" not in refusal.content  # the tool did not run
    assert "search_flights" in refusal.content  # the model is told what it may call


def test_an_offered_tool_runs_and_without_enforce_everything_runs() -> None:
    for enforce, tool in ((True, "search_flights"), (False, "search_taxes")):
        middleware = SemRouterToolSelectorMiddleware(_index(), max_tools=2, enforce=enforce)
        model = _calls((tool, {"query": "x"}))
        agent = create_agent(model, tools=TOOLS, middleware=[middleware])
        result = agent.invoke({"messages": [HumanMessage("find cheap flights to Rome")]})
        assert _tool_messages(result)[0].content.endswith("result for x")


async def test_enforcement_on_the_async_path() -> None:
    middleware = SemRouterToolSelectorMiddleware(_index(), max_tools=2, enforce=True)
    model = _calls(("search_taxes", {"query": "x"}))
    agent = create_agent(model, tools=TOOLS, middleware=[middleware])
    result = await agent.ainvoke({"messages": [HumanMessage("find cheap flights to Rome")]})
    assert "not offered" in _tool_messages(result)[0].content


# -- tool search ---------------------------------------------------------------------------------
def test_the_model_searches_for_a_tool_and_then_calls_it() -> None:
    middleware = SemRouterToolSearchMiddleware(_index(), max_tools=2, enforce=True)
    model = _calls(
        (SEARCH_TOOL_NAME, {"query": "veterinary questions"}),
        ("search_veterinary", {"query": "x"}),
    )
    agent = create_agent(model, tools=TOOLS, middleware=[middleware])
    result = agent.invoke({"messages": [HumanMessage("find cheap flights to Rome")]})
    first, second, _ = model.bound
    assert len(first) == 3 and first[-1] == SEARCH_TOOL_NAME and "search_flights" in first
    assert "search_veterinary" not in first
    assert "search_veterinary" in second and second[-1] == SEARCH_TOOL_NAME
    found, ran = _tool_messages(result)
    assert "search_veterinary" in found.content and found.artifact[0] == "search_veterinary"
    assert ran.content == "veterinary result for x"  # found tools count as offered
    assert found_tools(result["messages"])[0] == "search_veterinary"


async def test_tool_search_on_the_async_path() -> None:
    middleware = SemRouterToolSearchMiddleware(_index(), max_tools=1, search_limit=1)
    model = _calls((SEARCH_TOOL_NAME, {"query": "podcasts"}), ("search_podcasts", {"query": "x"}))
    agent = create_agent(model, tools=TOOLS, middleware=[middleware])
    result = await agent.ainvoke({"messages": [HumanMessage("find cheap flights to Rome")]})
    assert model.bound[1] == ["search_flights", "search_podcasts", SEARCH_TOOL_NAME]
    assert _tool_messages(result)[1].content == "podcasts result for x"


def test_a_search_that_finds_nothing_says_so() -> None:
    middleware = SemRouterToolSearchMiddleware(_index())
    assert middleware.search("anything") == []  # no tools seen yet
    assert middleware.tools[0].invoke({"query": "anything"}) == "No tool matches that description."
