from __future__ import annotations

import asyncio

import numpy as np
import pytest

from semrouter import (
    ConfigurationError,
    FakeEncoder,
    InvalidQueryError,
    QueryTypeError,
    Route,
    RouteNotFoundError,
    SemanticRouter,
)

ROUTES = [
    Route("flights", ["book a flight to paris", "cheap flights to rome", "flight tickets please"]),
    Route("weather", ["what is the weather today", "will it rain tomorrow", "weather forecast"]),
    Route("music", ["play some jazz music", "put on a song", "play music by queen"]),
]


@pytest.fixture
def router(fake_encoder: FakeEncoder) -> SemanticRouter:
    return SemanticRouter(ROUTES, encoder=fake_encoder, threshold=0.3)


def test_route_picks_the_closest_route_and_says_why(router: SemanticRouter) -> None:
    match = router.route("book me a flight to paris")
    assert match.name == "flights"
    assert match.utterance == "book a flight to paris"
    assert match.score == max(match.scores.values())
    assert set(match.scores) <= {"flights", "weather", "music"}
    assert match.threshold == 0.3


def test_no_match_is_a_normal_result(router: SemanticRouter) -> None:
    match = router.route("zzz qqq xxx")
    assert match.name is None
    assert match.score < 0.3


def test_route_many_is_one_encoder_batch(router: SemanticRouter, fake_encoder: FakeEncoder) -> None:
    fake_encoder.reset_counts()
    matches = router.route_many(["weather forecast today", "play jazz", "cheap flights to rome"])
    assert [m.name for m in matches] == ["weather", "music", "flights"]
    assert fake_encoder.calls == 1 and fake_encoder.encoded_texts == 3
    assert router.route_many([]) == []


def test_route_many_equals_route(router: SemanticRouter) -> None:
    texts = ["will it rain", "play a song", "flight to rome", "nothing at all here"]
    batch, single = router.route_many(texts), [router.route(t) for t in texts]
    assert [m.name for m in batch] == [m.name for m in single]
    assert [m.utterance for m in batch] == [m.utterance for m in single]
    assert [m.score for m in batch] == pytest.approx([m.score for m in single], abs=1e-5)


def test_top_routes(router: SemanticRouter) -> None:
    ranked = router.top_routes("play music", limit=3, apply_threshold=False)
    assert ranked[0].name == "music"
    assert len(ranked) == 3
    scores = [m.score for m in ranked]
    assert scores == sorted(scores, reverse=True)
    assert router.top_routes("zzz qqq", limit=3) == []


async def test_async_paths_match_sync(router: SemanticRouter) -> None:
    texts = ["will it rain", "play a song", "flight to rome"]
    assert await router.aroute("will it rain") == router.route("will it rain")
    assert await router.aroute_many(texts) == router.route_many(texts)
    assert await router.atop_routes("play music", limit=2) == router.top_routes(
        "play music", limit=2
    )


async def test_aroute_does_not_block_the_event_loop(router: SemanticRouter) -> None:
    class SlowEncoder(FakeEncoder):
        def encode_batch(self, texts: list[str]) -> np.ndarray:
            import time

            time.sleep(0.2)
            return super().encode_batch(texts)

    slow = SemanticRouter(ROUTES, encoder=SlowEncoder(), threshold=0.3)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await slow.aroute("play music")
    task.cancel()
    assert ticks >= 10


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_empty_query_raises(router: SemanticRouter, bad: str) -> None:
    with pytest.raises(InvalidQueryError):
        router.route(bad)


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["a"]])
def test_non_str_query_raises_type_error(router: SemanticRouter, bad: object) -> None:
    with pytest.raises(TypeError):
        router.route(bad)  # type: ignore[arg-type]
    with pytest.raises(QueryTypeError):
        router.route(bad)  # type: ignore[arg-type]


def test_route_many_refuses_a_bare_string(router: SemanticRouter) -> None:
    with pytest.raises(QueryTypeError):
        router.route_many("play music")


def test_thresholds_route_over_router_over_encoder(fake_encoder: FakeEncoder) -> None:
    strict = Route("music", ["play some jazz music"], threshold=0.99)
    router = SemanticRouter([strict, ROUTES[0]], encoder=fake_encoder)
    assert router.threshold_for("music") == 0.99
    assert router.threshold_for("flights") == fake_encoder.default_threshold
    assert router.route("play some jazz").name is None
    router2 = SemanticRouter([ROUTES[0]], encoder=fake_encoder, threshold=0.1)
    assert router2.threshold_for("flights") == 0.1


def test_max_and_mean_aggregation(fake_encoder: FakeEncoder) -> None:
    r_max = SemanticRouter(ROUTES, encoder=fake_encoder, aggregation="max", threshold=-1)
    r_mean = SemanticRouter(ROUTES, encoder=fake_encoder, aggregation="mean", top_k=3, threshold=-1)
    query = "play some jazz music"
    assert r_max.route(query).score == pytest.approx(1.0, abs=1e-5)
    assert r_mean.route(query).score < r_max.route(query).score
    vectors = fake_encoder.encode([query, *ROUTES[2].utterances])
    assert r_mean.route(query).score == pytest.approx(
        float(np.mean(vectors[1:] @ vectors[0])), abs=1e-5
    )


def test_add_update_remove(router: SemanticRouter, fake_encoder: FakeEncoder) -> None:
    fake_encoder.reset_counts()
    router.add(Route("food", ["order a pizza", "get me some sushi"]))
    assert fake_encoder.encoded_texts == 2
    assert router.route("order pizza").name == "food"
    with pytest.raises(ConfigurationError, match="duplicate"):
        router.add(Route("food", ["x"]))
    fake_encoder.reset_counts()
    report = router.update(Route("food", ["order a pizza", "order a burger"]))
    assert (report.encoded, report.deleted) == (1, 1)
    assert fake_encoder.encoded_texts == 1
    router.remove("food")
    assert "food" not in router and router.route("order a pizza").name != "food"
    with pytest.raises(RouteNotFoundError):
        router.remove("food")
    with pytest.raises(KeyError):
        router.get("food")


def test_set_routes_is_incremental_and_a_noop_when_unchanged(
    router: SemanticRouter, fake_encoder: FakeEncoder
) -> None:
    fake_encoder.reset_counts()
    report = router.set_routes(ROUTES)
    assert report.encoded == 0 and fake_encoder.calls == 0
    report = router.set_routes([*ROUTES[:2], Route("music", ["play some jazz music", "next song"])])
    assert (report.encoded, report.deleted, report.kept) == (1, 2, 7)


def test_metadata_change_updates_payload_without_encoding(
    router: SemanticRouter, fake_encoder: FakeEncoder
) -> None:
    fake_encoder.reset_counts()
    changed = Route("music", list(ROUTES[2].utterances), metadata={"team": "audio"})
    report = router.update(changed)
    assert (report.encoded, report.updated) == (0, 3)
    assert fake_encoder.encoded_texts == 0


def test_invalid_options(fake_encoder: FakeEncoder) -> None:
    with pytest.raises(ConfigurationError):
        SemanticRouter(ROUTES, encoder=fake_encoder, aggregation="sum")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        SemanticRouter(ROUTES, encoder=fake_encoder, collection="../etc")
    with pytest.raises(ConfigurationError):
        SemanticRouter(ROUTES, encoder=fake_encoder, threshold=3)
    with pytest.raises(ConfigurationError):
        SemanticRouter(ROUTES, encoder=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="duplicate"):
        SemanticRouter([ROUTES[0], ROUTES[0]], encoder=fake_encoder)


def test_an_empty_router_routes_nothing(fake_encoder: FakeEncoder) -> None:
    router = SemanticRouter([], encoder=fake_encoder)
    assert router.route("anything").name is None
    assert router.top_routes("anything") == []


def test_repr_and_context_manager(fake_encoder: FakeEncoder) -> None:
    with SemanticRouter(ROUTES, encoder=fake_encoder) as router:
        assert "routes=3" in repr(router) and "utterances=9" in repr(router)
