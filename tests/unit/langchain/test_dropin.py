"""SemRouterBranch as a true drop-in for RunnableBranch (issue 11 points 5-10)."""

from __future__ import annotations

import asyncio
import copy
import pickle
import threading
import time
from typing import Any

import pytest
from langchain_core.runnables import RunnableBranch, RunnableConfig, RunnableLambda

from langchain_semrouter import SemRouterBranch
from semrouter import ConfigurationError, FakeEncoder, LocalEncoder, Route, SemanticRouter

from ._helpers import ROUTES


def _weather(x: Any) -> str:
    return "W"


def _math(x: Any) -> str:
    return "M"


def _default(x: Any) -> str:
    return "D"


class PicklableFake(FakeEncoder):
    """FakeEncoder keeps a lock for its call counts; this one pickles as its dimension."""

    def __reduce__(self) -> Any:
        return (PicklableFake, (self.dimension,))


def _own_branch() -> SemRouterBranch[Any, str]:
    return SemRouterBranch(
        (ROUTES[0], _weather), (ROUTES[1], _math), _default, encoder=PicklableFake(64)
    )


# -- point 5: max_concurrency --------------------------------------------------------------------
class _Gauge:
    def __init__(self) -> None:
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


def _gauged(gauge: _Gauge, answer: str) -> RunnableLambda[Any, str]:
    def run(x: Any) -> str:
        gauge.enter()
        time.sleep(0.02)
        gauge.leave()
        return answer

    async def arun(x: Any) -> str:
        gauge.enter()
        await asyncio.sleep(0.02)
        gauge.leave()
        return answer

    return RunnableLambda(run, afunc=arun)


INPUTS = ["weather forecast today", "calculate two plus two", "will it rain tomorrow"] * 4


@pytest.mark.parametrize("limit", [1, 2])
def test_batch_respects_max_concurrency(router: SemanticRouter, limit: int) -> None:
    gauge = _Gauge()
    branch = SemRouterBranch(
        {"weather": _gauged(gauge, "W"), "math": _gauged(gauge, "M")}, router=router
    )
    out = branch.batch(INPUTS, {"max_concurrency": limit})
    assert out == ["W", "M", "W"] * 4
    assert gauge.peak <= limit


@pytest.mark.parametrize("limit", [1, 2])
async def test_abatch_respects_max_concurrency(router: SemanticRouter, limit: int) -> None:
    gauge = _Gauge()
    branch = SemRouterBranch(
        {"weather": _gauged(gauge, "W"), "math": _gauged(gauge, "M")}, router=router
    )
    out = await branch.abatch(INPUTS, {"max_concurrency": limit})
    assert out == ["W", "M", "W"] * 4
    assert gauge.peak <= limit


# -- point 6: unroutable inputs run the default, as RunnableBranch does -------------------------
def _metadata(x: Any, config: RunnableConfig) -> dict[str, Any]:
    return dict(config.get("metadata") or {})


UNROUTABLE = ["", "   ", None, 42, {"a": "weather today", "b": "two plus two"}]


@pytest.mark.parametrize("value", UNROUTABLE)
def test_unroutable_input_runs_the_default_with_the_reason(
    router: SemanticRouter, value: Any
) -> None:
    semantic = SemRouterBranch({"weather": _weather}, default=_metadata, router=router)
    meta = semantic.invoke(value)
    assert meta["semrouter_route"] is None
    assert meta["semrouter_reason"].split(":")[0] in ("InvalidQueryError", "QueryTypeError")
    classic = RunnableBranch((lambda x: isinstance(x, str) and "weather" in x, _weather), _default)
    assert classic.invoke(value) == "D"  # what a RunnableBranch user gets: the default


async def test_unroutable_inputs_in_batches_and_async(router: SemanticRouter) -> None:
    semantic = SemRouterBranch({"weather": _weather}, default=_default, router=router)
    values = ["weather forecast today", *UNROUTABLE]
    assert semantic.batch(values) == ["W"] + ["D"] * len(UNROUTABLE)
    assert await semantic.abatch(values) == ["W"] + ["D"] * len(UNROUTABLE)
    assert await semantic.ainvoke(None) == "D"
    assert [c for c in semantic.stream("")] == ["D"]


# -- point 7: one shared model ---------------------------------------------------------------------
def test_branches_without_encoder_share_one_model() -> None:
    branches = [SemRouterBranch((Route(f"r{i}", ["hello"]), _weather)) for i in range(10)]
    try:
        encoders = {id(b.router.encoder) for b in branches}
        assert encoders == {id(LocalEncoder.shared())}
    finally:
        for branch in branches:
            branch.close()


# -- point 8: a given router is never changed ----------------------------------------------------
def test_building_a_branch_leaves_the_given_router_alone(router: SemanticRouter) -> None:
    before = router.routes
    SemRouterBranch({"weather": _weather}, default=_default, router=router)
    with pytest.raises(ConfigurationError):
        SemRouterBranch((Route("greet", ["hello"]), _weather), router=router)
    assert router.routes == before


# -- point 9: copies share the router; pickles rebuild it ---------------------------------------
def test_deepcopy_and_model_copy_share_the_router(router: SemanticRouter) -> None:
    branch = SemRouterBranch({"weather": _weather}, default=_default, router=router)
    for clone in (copy.deepcopy(branch), branch.model_copy(deep=True), copy.copy(branch)):
        assert clone.router is router
        assert clone.invoke("weather forecast today") == "W"
    assert branch.with_config(tags=["x"]).invoke("two plus two") == "D"


def test_pickle_rebuilds_an_own_router() -> None:
    branch = _own_branch()
    try:
        clone = pickle.loads(pickle.dumps(branch))
        try:
            assert clone.router is not branch.router
            assert clone.router.routes == branch.router.routes
            assert clone.invoke("calculate two plus two") == "M"
            assert clone.invoke("the moon") == branch.invoke("the moon")
        finally:
            clone.close()
        copied = copy.deepcopy(branch)
        copied.close()  # a copy does not own the shared router
        assert branch.invoke("weather forecast today") == "W"
    finally:
        branch.close()


def test_pickle_of_a_given_router_says_how_to_share(router: SemanticRouter) -> None:
    branch = SemRouterBranch({"weather": _weather}, default=_default, router=router)
    with pytest.raises(ConfigurationError, match=r"cannot be pickled.*Share the branch"):
        pickle.dumps(branch)


# -- point 10: close() ---------------------------------------------------------------------------
def test_close_closes_only_an_own_router(router: SemanticRouter) -> None:
    SemRouterBranch({"weather": _weather}, router=router).close()
    assert router.route("weather forecast today").name == "weather"  # still open
    own = _own_branch()
    own.close()
    with pytest.raises(Exception):  # noqa: B017 - closing twice or using a closed router
        own.router.add(Route("x", ["y"]))


# -- point 10: LangChainEncoder infers the dimension, as LlamaIndexEncoder does -----------------
def test_langchain_encoder_infers_the_dimension() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

    from langchain_semrouter import LangChainEncoder, SemRouterEmbeddings

    assert LangChainEncoder(DeterministicFakeEmbedding(size=16)).dimension == 16
    assert LangChainEncoder(SemRouterEmbeddings(FakeEncoder(dimension=8))).dimension == 8

    class Unsized(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0, 0.0] for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return [1.0, 0.0]

    with pytest.raises(ConfigurationError, match="pass dimension="):
        LangChainEncoder(Unsized())
    assert LangChainEncoder(Unsized(), dimension=2).encode(["x"]).shape == (1, 2)


def test_decision_model_closes_the_routers_it_built() -> None:
    decisions = pytest.importorskip("langchain_core.decisions")
    from langchain_semrouter import SemRouterDecisionModel

    model = SemRouterDecisionModel(encoder=FakeEncoder())
    question = decisions.Choice(
        instructions="team?", criteria={"billing": "invoice refund", "tech": "bug in the code"}
    )
    answer = model.invoke({"state": "a bug in my code", "questions": {"q": question}})
    assert answer.choices["q"].choice == "tech"
    built = list(model._routers.values())
    model.close()
    assert built and all(router.closed for router in built)


def test_decision_model_copies_and_pickles() -> None:
    decisions = pytest.importorskip("langchain_core.decisions")
    from langchain_semrouter import SemRouterDecisionModel

    model = SemRouterDecisionModel(encoder=LocalEncoder.shared())
    question = decisions.Choice(
        instructions="team?", criteria={"billing": "invoice refund", "tech": "bug in the code"}
    )
    state = {"state": "there is a bug in my code", "questions": {"q": question}}
    for clone in (
        copy.deepcopy(model),
        model.model_copy(deep=True),
        pickle.loads(pickle.dumps(model)),
    ):
        assert clone.encoder is model.encoder
        assert clone.invoke(state).choices["q"].choice == "tech"
        clone.close()
    model.close()
