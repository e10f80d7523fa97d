"""The tool selector middleware as a drop-in for LLMToolSelectorMiddleware (points 8, 10)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage

from langchain_semrouter import SemRouterToolSelector, SemRouterToolSelectorMiddleware
from semrouter import ConfigurationError, EncodeCache, FakeEncoder, ToolIndex

from .test_tools import TOOLS, _model


def _index() -> ToolIndex:
    return ToolIndex(encoder=FakeEncoder(), cache=EncodeCache())


# -- point 10: options changed after construction; LLMToolSelectorMiddleware's semantics -------
def test_max_tools_and_always_include_changed_after_construction() -> None:
    middleware = SemRouterToolSelectorMiddleware(_index(), max_tools=3)
    model = _model("search_flights")
    agent = create_agent(model, tools=TOOLS, middleware=[middleware])
    middleware.max_tools = 1
    middleware.always_include = ["search_backups"]
    agent.invoke({"messages": [HumanMessage("find cheap flights to Rome")]})
    assert model.bound[0] == ["search_flights", "search_backups"]
    with pytest.raises(ConfigurationError):
        middleware.max_tools = -1


def test_order_matches_the_llm_selector() -> None:
    provider = {"type": "web_search_preview"}
    selector = SemRouterToolSelector(_index(), max_tools=2, always_include=["search_weather"])
    tools: list[Any] = [provider, *TOOLS]
    picked = selector.select("stocks and flights today", tools)
    names = [t["type"] if isinstance(t, dict) else t.name for t in picked]
    # selected tools in their original order, then always_include, then provider tools
    assert names == ["search_stocks", "search_flights", "search_weather", "web_search_preview"]


def test_no_cap_never_strips_every_tool() -> None:
    selector = SemRouterToolSelector(_index())
    assert len(selector.select("zebra xylophone quantum", TOOLS)) == len(TOOLS)
    assert [t.name for t in selector.select("weather", TOOLS)] == ["search_weather"]


def test_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="max_tools"):
        SemRouterToolSelector(_index(), max_tools=-1)
    with pytest.raises(ConfigurationError, match="only when"):
        SemRouterToolSelector(_index(), encoder=FakeEncoder())
    with pytest.raises(ConfigurationError, match="either"):
        SemRouterToolSelectorMiddleware(_index(), selector=SemRouterToolSelector(_index()))


# -- point 9: copies share the index; pickling says how to share ---------------------------------
def test_deepcopy_shares_the_index_and_pickle_explains() -> None:
    import copy
    import pickle

    middleware = SemRouterToolSelectorMiddleware(_index(), max_tools=2)
    clone = copy.deepcopy(middleware)
    assert clone.selector.tool_index is middleware.selector.tool_index
    clone.max_tools = 1
    assert middleware.max_tools == 2  # options are the copy's own
    assert len(clone.selector.select("weather", TOOLS)) == 1
    with pytest.raises(ConfigurationError, match="cannot be pickled"):
        pickle.dumps(middleware)
