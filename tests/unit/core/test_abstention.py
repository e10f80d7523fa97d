"""Abstaining matches say why and which threshold they missed; blank requests in a batch
(issue 23, point 5)."""

from __future__ import annotations

import asyncio

import pytest

from semrouter import FakeEncoder, InvalidQueryError, Route, RouteMatch, SemanticRouter

ROUTES = [
    Route("greet", ["hello there", "hi how are you", "good morning friend"]),
    Route("weather", ["what is the weather", "will it rain tomorrow", "is it sunny today"]),
]


@pytest.fixture
def router() -> SemanticRouter:
    return SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=32), learn=False)


def test_abstaining_match_carries_the_threshold_it_missed(router: SemanticRouter) -> None:
    router.configure(threshold=0.99)
    match = router.route("hello there friend of mine")
    assert match.name is None and match.reason == "below_threshold"
    assert match.threshold == 0.99
    best = max(match.scores, key=match.scores.__getitem__)
    assert match.score == match.scores[best] < match.threshold


def test_matched_route_has_no_reason(router: SemanticRouter) -> None:
    match = router.route("hello there")
    assert match.name == "greet" and match.reason is None
    assert match.threshold == router.threshold_for("greet")


def test_per_route_threshold_missed_is_that_routes(router: SemanticRouter) -> None:
    router.update(ROUTES[0].model_copy(update={"threshold": 1.0}))
    match = router.route("hi how are you")
    assert match.name is None and match.threshold == 1.0 and match.reason == "below_threshold"


@pytest.mark.parametrize("blank", ["", " ", "\t\n", "\u3000"])
def test_blank_request_in_a_batch_abstains_alone(router: SemanticRouter, blank: str) -> None:
    encoder = router.encoder
    assert isinstance(encoder, FakeEncoder)
    encoder.reset_counts()
    out = router.route_many(["hello there", blank, "will it rain tomorrow", blank])
    assert [m.name for m in out] == ["greet", None, "weather", None]
    assert [m.reason for m in out] == [None, "blank", None, "blank"]
    assert out[1] == RouteMatch(name=None, score=0.0, reason="blank")
    assert (encoder.calls, encoder.encoded_texts) == (1, 2)  # one batch, blanks not encoded
    assert router.route_many([blank, blank]) == [out[1], out[1]]
    with pytest.raises(InvalidQueryError):
        router.route(blank)


def test_blank_request_in_an_async_batch(router: SemanticRouter) -> None:
    out = asyncio.run(router.aroute_many(["", "hello there"]))
    assert [(m.name, m.reason) for m in out] == [(None, "blank"), ("greet", None)]
    with pytest.raises(InvalidQueryError):
        asyncio.run(router.aroute("  "))


def test_reason_is_validated() -> None:
    with pytest.raises(ValueError):
        RouteMatch(name=None, score=0.0, reason="tired")  # type: ignore[arg-type]
