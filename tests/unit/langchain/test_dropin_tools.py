"""The tool selector middleware as a drop-in for LLMToolSelectorMiddleware (points 8, 10)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from qdrant_client import QdrantClient

from langchain_semrouter import (
    SemRouterBranch,
    SemRouterToolSelector,
    SemRouterToolSelectorMiddleware,
)
from semrouter import ConfigurationError, FakeEncoder, Route, SemanticRouter

from .test_tools import TOOLS, _model


def _router(routes: list[Route] | None = None) -> SemanticRouter:
    return SemanticRouter(
        routes or [], encoder=FakeEncoder(), aggregation="max", client=QdrantClient(":memory:")
    )


# -- point 8: sharing a branch's router with the middleware changes nothing ----------------------
def test_middleware_refuses_a_branch_router_and_leaves_it_alone() -> None:
    router = _router([Route("math", ["calculate two plus two", "sum of numbers"])])
    branch = SemRouterBranch({"math": lambda x: "MATH"}, default=lambda x: "DEFAULT", router=router)
    assert branch.invoke("calculate 2+2 two plus two") == "MATH"
    with pytest.raises(ConfigurationError, match="not tool routes"):
        SemRouterToolSelectorMiddleware(router, max_tools=3)
    assert router.route_names == ["math"]
    assert branch.invoke("calculate 2+2 two plus two") == "MATH"
    router.close()


def test_routes_added_later_by_someone_else_are_not_overwritten() -> None:
    router = _router()
    selector = SemRouterToolSelector(router, max_tools=2)
    selector.select("weather", TOOLS[:5])
    router.add(Route("math", ["two plus two"]))
    with pytest.raises(ConfigurationError, match="not tool routes"):
        selector.select("weather", TOOLS[:6])  # a new tool would replace the routes
    assert "math" in router
    router.close()


# -- point 10: options changed after construction; LLMToolSelectorMiddleware's semantics -------
def test_max_tools_and_always_include_changed_after_construction() -> None:
    middleware = SemRouterToolSelectorMiddleware(_router(), max_tools=3)
    model = _model("search_flights")
    agent = create_agent(model, tools=TOOLS, middleware=[middleware])
    middleware.max_tools = 1
    middleware.always_include = ["search_backups"]
    agent.invoke({"messages": [HumanMessage("find cheap flights to Rome")]})
    assert model.bound[0] == ["search_flights", "search_backups"]


def test_order_matches_the_llm_selector() -> None:
    provider = {"type": "web_search_preview"}
    selector = SemRouterToolSelector(_router(), max_tools=2, always_include=["search_weather"])
    tools: list[Any] = [provider, *TOOLS]
    picked = selector.select("stocks and flights today", tools)
    names = [t["type"] if isinstance(t, dict) else t.name for t in picked]
    # selected tools in their original order, then always_include, then provider tools
    assert names == ["search_stocks", "search_flights", "search_weather", "web_search_preview"]


def test_no_cap_never_strips_every_tool() -> None:
    selector = SemRouterToolSelector(_router())
    assert len(selector.select("zebra xylophone quantum", TOOLS)) == len(TOOLS)
    assert [t.name for t in selector.select("weather", TOOLS)] == ["search_weather"]


def test_close_closes_only_an_own_router() -> None:
    given = _router()
    SemRouterToolSelectorMiddleware(given).close()
    assert len(SemRouterToolSelector(given).select("weather", TOOLS[:3])) >= 1  # still open
    given.close()
    own = SemRouterToolSelector.from_tools(TOOLS[:3], encoder=FakeEncoder())
    own.close()
    assert own.router.closed


# -- point 9: copies share the router; pickling says how to share --------------------------------
def test_deepcopy_shares_the_router_and_pickle_explains() -> None:
    import copy
    import pickle

    middleware = SemRouterToolSelectorMiddleware(_router(), max_tools=2)
    clone = copy.deepcopy(middleware)
    assert clone.selector.router is middleware.selector.router
    clone.max_tools = 1
    assert middleware.max_tools == 2  # options are the copy's own
    assert len(clone.selector.select("weather", TOOLS)) == 1
    with pytest.raises(ConfigurationError, match="cannot be pickled"):
        pickle.dumps(middleware)
    middleware.selector.router.close()
