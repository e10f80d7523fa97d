"""SemRouterBranch: construction, routing, invoke/batch/stream (sync and async), callbacks."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import (
    ConfigurableField,
    RunnableBranch,
    RunnableLambda,
    RunnablePassthrough,
)

from langchain_semrouter import SemRouterBranch
from semrouter import (
    ConfigurationError,
    FakeEncoder,
    NoRouteMatchedError,
    QueryTypeError,
    Route,
    SemanticRouter,
)

from ._helpers import ROUTES, collector, fake_chain


def _tag(name: str) -> RunnableLambda[Any, str]:
    return RunnableLambda(lambda x: name)


# -- construction ----------------------------------------------------------------------------
def test_tuple_and_mapping_forms_route_alike(router: SemanticRouter) -> None:
    pairs = SemRouterBranch(("weather", _tag("W")), ("math", _tag("M")), _tag("D"), router=router)
    mapping = SemRouterBranch(
        {"weather": _tag("W"), "math": _tag("M")}, default=_tag("D"), router=router
    )
    for text, want in [("rain tomorrow?", "W"), ("solve two plus two", "M"), ("zebra", "D")]:
        assert pairs.invoke(text) == mapping.invoke(text) == want


def test_routes_without_router_build_one(fake_encoder: FakeEncoder) -> None:
    branch = SemRouterBranch(
        (ROUTES[0], lambda x: "W"), (ROUTES[1], {"m": lambda x: "M"}), encoder=fake_encoder
    )  # the default embedded store, as users get it
    assert branch.router.route_names == ["weather", "math"]
    assert branch.invoke("solve this math equation") == {
        "m": "M"
    }  # a mapping branch is a RunnableParallel
    branch.router.close()


def test_a_given_router_is_never_changed(router: SemanticRouter) -> None:
    # Issue 11 point 8: the route used to be added to the user's router silently.
    extra = Route("greet", ["hello there friend"])
    with pytest.raises(ConfigurationError, match="never changes a router"):
        SemRouterBranch((extra, _tag("G")), ("weather", _tag("W")), router=router)
    assert "greet" not in router
    router.add(extra)
    branch = SemRouterBranch((extra, _tag("G")), ("weather", _tag("W")), router=router)
    assert branch.invoke("hello there") == "G"


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((("nope", _tag("x")),), {}, ConfigurationError),
        ((_tag("default only"),), {}, ConfigurationError),
        ((("weather", _tag("x")), _tag("d")), {"default": _tag("d")}, ConfigurationError),
        (
            (("weather", _tag("x")), ("math", _tag("y")), ("weather", _tag("z"))),
            {},
            ConfigurationError,
        ),
        (("weather", _tag("d")), {}, TypeError),
        ((("weather", _tag("x"), 3),), {}, ValueError),
        ((("weather", 42),), {}, TypeError),
    ],
)
def test_bad_construction(router: SemanticRouter, args: Any, kwargs: Any, error: type) -> None:
    with pytest.raises(error):
        SemRouterBranch(*args, router=router, **kwargs)


def test_names_without_router_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="router="):
        SemRouterBranch(("weather", _tag("x")))


def test_differing_route_object_is_refused(router: SemanticRouter) -> None:
    with pytest.raises(ConfigurationError, match="differs"):
        SemRouterBranch((Route("weather", ["something else"]), _tag("x")), router=router)


# -- routing ---------------------------------------------------------------------------------
def test_branch_gets_the_original_input_and_kwargs(router: SemanticRouter) -> None:
    seen: list[Any] = []

    class Recorder(RunnablePassthrough):
        def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
            seen.append((input, kwargs))
            return input

    payload = {"question": "will it rain tomorrow", "user": 7}
    branch = SemRouterBranch({"weather": Recorder()}, router=router, route_on="question")
    assert branch.invoke(payload, extra="yes") is payload
    assert seen == [(payload, {"extra": "yes"})]


def test_no_match_without_default_raises(router: SemanticRouter) -> None:
    branch = SemRouterBranch({"weather": _tag("W")}, router=router)
    runs = collector()
    with pytest.raises(NoRouteMatchedError, match="no default"):
        branch.invoke("zebra crossing", {"callbacks": [runs]})
    assert runs.traced_runs[0].error is not None


def test_match_of_a_route_without_branch_goes_to_default(router: SemanticRouter) -> None:
    branch = SemRouterBranch({"weather": _tag("W")}, default=_tag("D"), router=router)
    assert branch.invoke("solve this math equation") == "D"


@pytest.mark.parametrize(
    ("value", "route_on"),
    [
        ("will it rain tomorrow", None),
        ({"q": "will it rain tomorrow"}, "q"),
        ([SystemMessage("be nice"), HumanMessage("will it rain tomorrow"), AIMessage("hm")], None),
        ({"messages": [("human", "solve it"), ("user", "will it rain tomorrow")]}, None),
        ({"deep": {"text": "will it rain tomorrow"}}, lambda x: x["deep"]["text"]),
    ],
)
def test_route_on(router: SemanticRouter, value: Any, route_on: Any) -> None:
    branch = SemRouterBranch(
        {"weather": _tag("W")}, default=_tag("D"), router=router, route_on=route_on
    )
    assert branch.invoke(value) == "W"


def test_unroutable_inputs_without_default_raise(router: SemanticRouter) -> None:
    branch = SemRouterBranch({"weather": _tag("W")}, router=router)
    with pytest.raises(QueryTypeError, match="route_on"):
        branch.invoke({"a": "b", "c": "d"})
    with pytest.raises(QueryTypeError, match="human"):
        branch.invoke([AIMessage("hello")])
    with pytest.raises(ValueError, match="empty"):
        branch.invoke("   ")
    with pytest.raises(ValueError, match="None"):
        branch.invoke(None)


# -- async: the async encoder and index only ----------------------------------------------------
class _NoSync(FakeEncoder):
    def encode(self, texts: Any) -> Any:
        raise AssertionError("sync encode on the async path")


async def test_ainvoke_and_abatch_stay_async() -> None:
    router = SemanticRouter(ROUTES, encoder=FakeEncoder(), aggregation="max")
    router.encoder = _NoSync()  # utterances are indexed; from now on only queries are encoded

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("sync routing on the async path")

    router.route = router.route_many = router.top_routes = refuse  # type: ignore[method-assign]
    branch = SemRouterBranch(
        {"weather": _tag("W"), "math": _tag("M")}, default=_tag("D"), router=router
    )
    assert await branch.ainvoke("rain tomorrow") == "W"
    assert await branch.abatch(["rain tomorrow", "math equation", "zebra"]) == ["W", "M", "D"]
    assert [c async for c in branch.astream("math equation")] == ["M"]
    router.close()


# -- batch -----------------------------------------------------------------------------------
def test_batch_routes_once_and_keeps_order(router: SemanticRouter) -> None:
    calls: list[list[str]] = []
    route_many = router.route_many

    def counting(texts: list[str]) -> Any:
        calls.append(list(texts))
        return route_many(texts)

    router.route_many = counting  # type: ignore[method-assign]
    branch = SemRouterBranch(
        {"weather": _tag("W"), "math": _tag("M")}, default=_tag("D"), router=router
    )
    texts = ["rain tomorrow", "math equation", "zebra", "weather forecast", "sum of numbers"]
    assert branch.batch(texts) == ["W", "M", "D", "W", "M"]
    assert calls == [texts]


async def test_abatch_routes_once(router: SemanticRouter) -> None:
    calls: list[int] = []
    aroute_many = router.aroute_many

    async def counting(texts: list[str]) -> Any:
        calls.append(len(texts))
        return await aroute_many(texts)

    router.aroute_many = counting  # type: ignore[method-assign]
    branch = SemRouterBranch(
        {"weather": _tag("W"), "math": _tag("M")}, default=_tag("D"), router=router
    )
    assert await branch.abatch(["rain tomorrow", "math equation", "zebra"]) == ["W", "M", "D"]
    assert calls == [3]


def test_batch_errors_per_input(router: SemanticRouter) -> None:
    branch = SemRouterBranch({"weather": _tag("W")}, router=router)
    out = branch.batch(["rain tomorrow", "  ", "zebra"], return_exceptions=True)
    assert out[0] == "W"
    assert isinstance(out[1], ValueError)
    assert isinstance(out[2], NoRouteMatchedError)
    with pytest.raises(ValueError):
        branch.batch(["rain tomorrow", "  "])
    assert branch.batch([]) == []


def test_batch_traces_one_run_per_input(router: SemanticRouter) -> None:
    branch = SemRouterBranch({"weather": _tag("W"), "math": _tag("M")}, router=router)
    runs = collector()
    branch.batch(["rain tomorrow", "math equation"], {"callbacks": [runs]})
    tags = sorted(run.child_runs[0].tags[0] for run in runs.traced_runs)
    assert [run.name for run in runs.traced_runs] == ["SemRouterBranch", "SemRouterBranch"]
    assert tags == ["route:math", "route:weather"]


# -- stream ----------------------------------------------------------------------------------
def test_stream_passes_chunks_through(router: SemanticRouter) -> None:
    branch = SemRouterBranch(
        {"weather": fake_chain("it will rain a lot")}, default=fake_chain("no idea"), router=router
    )
    chunks = list(branch.stream({"question": "rain tomorrow?"}))
    assert len(chunks) > 3 and "".join(chunks) == "it will rain a lot"
    sequence = RunnableLambda(lambda x: {"question": x}) | branch
    assert list(sequence.stream("rain tomorrow?")) == chunks


async def test_astream_and_events(router: SemanticRouter) -> None:
    branch = SemRouterBranch({"weather": fake_chain("it will rain a lot")}, router=router)
    chunks = [c async for c in branch.astream({"question": "rain tomorrow?"})]
    assert "".join(chunks) == "it will rain a lot" and len(chunks) > 3
    events = [e async for e in branch.astream_events({"question": "rain tomorrow?"}, version="v2")]
    kinds = {e["event"] for e in events}
    assert {"on_chain_start", "on_chat_model_stream", "on_chain_end"} <= kinds
    child = next(
        e for e in events if e["event"] == "on_chain_start" and e["name"] != "SemRouterBranch"
    )
    assert child["name"] == "RunnableSequence" and "route:weather" in child["tags"]
    model_events = [e for e in events if e["event"] == "on_chat_model_stream"]
    assert len(model_events) > 3
    assert all(e["metadata"]["semrouter_route"] == "weather" for e in model_events)


# -- tracing, schema, graph --------------------------------------------------------------------
def test_child_run_tag_and_metadata(router: SemanticRouter) -> None:
    branch = SemRouterBranch({"weather": _tag("W")}, default=_tag("D"), router=router)
    runs = collector()
    branch.invoke("will it rain tomorrow", {"callbacks": [runs], "metadata": {"app": 1}})
    branch.invoke("zebra", {"callbacks": [runs]})
    hit, miss = (run.child_runs[0] for run in runs.traced_runs)
    assert runs.traced_runs[0].name == "SemRouterBranch"
    assert "route:weather" in hit.tags and "branch:default" in miss.tags
    assert hit.extra["metadata"]["semrouter_route"] == "weather"
    assert hit.extra["metadata"]["semrouter_utterance"] == "will it rain tomorrow"
    assert hit.extra["metadata"]["semrouter_score"] > 0.9
    assert hit.extra["metadata"]["app"] == 1
    assert miss.extra["metadata"]["semrouter_route"] is None


def test_input_schema_and_config_specs_are_delegated(router: SemanticRouter) -> None:
    chain = fake_chain("x")
    configurable = PromptTemplate.from_template("{question}").configurable_fields(
        template=ConfigurableField(id="style")
    )
    semantic = SemRouterBranch({"weather": chain, "math": configurable}, router=router)
    classic = RunnableBranch((lambda x: True, chain), (lambda x: False, configurable), chain)
    assert semantic.get_input_jsonschema() == classic.get_input_jsonschema()
    assert semantic.config_specs == classic.config_specs
    assert [spec.id for spec in semantic.config_specs] == ["style"]


def test_graph_shows_each_branch(router: SemanticRouter) -> None:
    branch = SemRouterBranch(
        {"weather": fake_chain("w"), "math": _tag("M")}, default=_tag("D"), router=router
    )
    graph = branch.get_graph()
    names = {node.name for node in graph.nodes.values()}
    assert {"SemRouterBranch", "ChatPromptTemplate", "GenericFakeChatModel"} <= names
    labels = sorted(str(e.data) for e in graph.edges if e.conditional)
    assert labels == ["default", "math", "weather"]
    assert "SemRouterBranch" in graph.draw_mermaid()
