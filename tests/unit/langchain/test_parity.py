"""Parity with RunnableBranch: same outputs, same streamed chunks, same run tree (tags aside).

The same chains are routed by a ``RunnableBranch`` of keyword predicates and by a
``SemRouterBranch``; inputs are chosen so both pick the same branch. ``RunnableBranch`` also
traces one run per evaluated condition; those are left out of the comparison (a semantic
branch has no per-branch predicate).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.runnables import Runnable, RunnableBranch, RunnableLambda

from langchain_semrouter import SemRouterBranch
from semrouter import Encoder, SemanticRouter
from tests.support.examples import load_example

from ._helpers import collector, fake_chain, shape

INPUTS = [
    {"question": "will it rain tomorrow in Paris?"},
    {"question": "solve this math equation for me"},
    {"question": "tell me a story about a dragon"},
]


def _chains() -> dict[str, Runnable[Any, str]]:
    return {
        "weather": fake_chain("Bring an umbrella, rain is likely.", template="Weather: {question}"),
        "math": fake_chain("The answer is forty two.", template="Math: {question}"),
        "default": fake_chain("I can only help with weather and math.", template="{question}"),
    }


def _pair(router: SemanticRouter) -> tuple[Runnable[Any, str], Runnable[Any, str]]:
    chains = _chains()
    classic = RunnableBranch(
        (lambda x: "rain" in x["question"], chains["weather"]),
        (lambda x: "math" in x["question"], chains["math"]),
        chains["default"],
    )
    semantic = SemRouterBranch(
        ("weather", chains["weather"]),
        ("math", chains["math"]),
        chains["default"],
        router=router,
        route_on="question",
    )
    return classic, semantic


@pytest.fixture
def pair(router: SemanticRouter) -> tuple[Runnable[Any, str], Runnable[Any, str]]:
    return _pair(router)


def _traced(call: Callable[[dict[str, Any]], Any]) -> tuple[Any, tuple[Any, ...]]:
    runs = collector()
    out = call({"callbacks": [runs]})
    return out, shape(runs.traced_runs[0])


@pytest.mark.parametrize("value", INPUTS)
def test_invoke_parity(pair: Any, value: dict[str, str]) -> None:
    classic, semantic = pair
    out_c, tree_c = _traced(lambda cfg: classic.invoke(value, cfg))
    out_s, tree_s = _traced(lambda cfg: semantic.invoke(value, cfg))
    assert out_c == out_s
    assert tree_c == tree_s
    assert tree_s[1][0][0] == "RunnableSequence"  # the branch is a child run of the branch run


@pytest.mark.parametrize("value", INPUTS)
def test_stream_parity(pair: Any, value: dict[str, str]) -> None:
    classic, semantic = pair
    chunks_c, tree_c = _traced(lambda cfg: list(classic.stream(value, cfg)))
    chunks_s, tree_s = _traced(lambda cfg: list(semantic.stream(value, cfg)))
    assert chunks_c == chunks_s and len(chunks_s) > 3
    assert tree_c == tree_s
    # Inside a sequence, chunks still pass through one by one.
    prefix = RunnableLambda(lambda x: x)
    assert list((prefix | classic).stream(value)) == list((prefix | semantic).stream(value))


@pytest.mark.parametrize("value", INPUTS)
async def test_async_parity(pair: Any, value: dict[str, str]) -> None:
    classic, semantic = pair
    runs_c, runs_s = collector(), collector()
    assert await classic.ainvoke(value, {"callbacks": [runs_c]}) == await semantic.ainvoke(
        value, {"callbacks": [runs_s]}
    )
    assert shape(runs_c.traced_runs[0]) == shape(runs_s.traced_runs[0])
    chunks_c = [c async for c in classic.astream(value)]
    chunks_s = [c async for c in semantic.astream(value)]
    assert chunks_c == chunks_s


def test_batch_parity(pair: Any) -> None:
    classic, semantic = pair
    runs_c, runs_s = collector(), collector()
    assert classic.batch(INPUTS, {"callbacks": [runs_c]}) == semantic.batch(
        INPUTS, {"callbacks": [runs_s]}
    )
    shapes_c = sorted(map(repr, map(shape, runs_c.traced_runs)))
    shapes_s = sorted(map(repr, map(shape, runs_s.traced_runs)))
    assert shapes_c == shapes_s


async def test_abatch_parity(pair: Any) -> None:
    classic, semantic = pair
    assert await classic.abatch(INPUTS) == await semantic.abatch(INPUTS)


# -- the seed example, end to end with the real local encoder ---------------------------------
SEED = load_example("langchain_branch")
SEED_ROUTES = SEED.ROUTES
SEED_QUESTIONS = dict(zip(SEED.QUESTIONS, ["langchain", "anthropic", "default"], strict=True))


@pytest.mark.slow
def test_seed_example_end_to_end(local_encoder: Encoder, make_router: Any) -> None:
    router = make_router(SEED_ROUTES, encoder=local_encoder)
    chains = {
        name: fake_chain(f"As a {name} expert: ...", template="{question}")
        for name in ("langchain", "anthropic", "default")
    }
    classic = RunnableBranch(
        (lambda x: "langchain" in x["question"].lower(), chains["langchain"]),
        (lambda x: "claude" in x["question"].lower(), chains["anthropic"]),
        chains["default"],
    )
    semantic = SemRouterBranch(
        {"langchain": chains["langchain"], "anthropic": chains["anthropic"]},
        default=chains["default"],
        router=router,
        route_on="question",
    )
    for question, expected in SEED_QUESTIONS.items():
        value = {"question": question}
        assert semantic.invoke(value) == classic.invoke(value) == f"As a {expected} expert: ..."
        assert list(semantic.stream(value)) == list(classic.stream(value))
    assert semantic.batch([{"question": q} for q in SEED_QUESTIONS]) == [
        f"As a {name} expert: ..." for name in SEED_QUESTIONS.values()
    ]
