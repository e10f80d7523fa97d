"""Bad queries, bad routes, foreign collections and unreachable servers.

Each bad input gets a clear semrouter error (or a defined result), and the router keeps working.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from semrouter import (
    BackendUnavailableError,
    ConfigurationError,
    FakeEncoder,
    IndexMismatchError,
    InvalidQueryError,
    QueryTypeError,
    Route,
    RouteNotFoundError,
    SemanticRouter,
    SemRouterError,
    SyncReport,
)

from .conftest import ROUTES, assert_usable

# -- queries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", " ", "\t\n\r ", "\u3000\u2003", "\x1c\x1d\x1e\x1f"])
def test_empty_or_whitespace_query_is_invalid(router: SemanticRouter, query: str) -> None:
    with pytest.raises(InvalidQueryError):
        router.route(query)
    # In a batch, the blank request gets its own abstaining match; the others are routed.
    first, blank = router.route_many(["hello there", query])
    assert first.name == "greet"
    assert blank.name is None and blank.reason == "blank" and blank.threshold is None
    assert_usable(router)


@pytest.mark.parametrize("query", [None, 5, 1.5, b"hello there", ["hello there"], object()])
def test_non_str_query_is_a_type_error(router: SemanticRouter, query: Any) -> None:
    with pytest.raises(QueryTypeError):
        router.route(query)
    with pytest.raises(TypeError):  # QueryTypeError is a TypeError too
        router.top_routes(query)
    assert_usable(router)


def test_route_many_refuses_one_string(router: SemanticRouter) -> None:
    with pytest.raises(QueryTypeError):
        router.route_many("hello there")
    assert router.route_many([]) == []


async def test_bad_queries_async(any_router: SemanticRouter) -> None:
    router = any_router
    with pytest.raises(InvalidQueryError):
        await router.aroute("   ")
    with pytest.raises(QueryTypeError):
        await router.aroute(None)  # type: ignore[arg-type]
    assert (await router.aroute("see you later")).name == "bye"


@pytest.mark.parametrize(
    "huge",
    [
        "x" * 1_000_000,
        "lorem ipsum " * 20_000 + "z" * 800_000,
        "é" * 500_000,  # 1 MB of UTF-8
        "book a flight " + "\x00" * 1_000_000,
    ],
    ids=["one-word", "words-and-one-word", "two-byte-chars", "nul-padding"],
)
def test_one_megabyte_query_gets_a_defined_result(any_router: SemanticRouter, huge: str) -> None:
    router = any_router
    assert len(huge.encode()) >= 1_000_000
    match = router.route(huge)
    assert match.name is None or match.name in router.route_names
    assert router.route_many([huge, "hello there"])[1].name == "greet"
    assert_usable(router)


@pytest.mark.parametrize(
    "query",
    ["\x00", "\x00\x01\x02\x7f", "hello\x00there", "\u200b\u200d", "\ufeff", "\x1b[31mred\x1b[0m"],
)
def test_control_characters_get_a_defined_result(any_router: SemanticRouter, query: str) -> None:
    router = any_router
    match = router.route(query)
    assert match.name is None or match.name in router.route_names
    assert_usable(router)


def test_mixed_script_queries_and_utterances(encoder: FakeEncoder) -> None:
    routes = [
        *ROUTES,
        Route("multi", ["привет мир hello 世界", "مرحبا بالعالم", "ℌ𝔢𝔩𝔩𝔬 🎉 emoji"]),
    ]
    with SemanticRouter(routes, encoder=encoder, aggregation="max") as router:
        assert router.route("привет мир hello 世界").name == "multi"
        assert router.route("مرحبا بالعالم").name == "multi"
        assert router.route("ℌ𝔢𝔩𝔩𝔬 🎉 emoji").name == "multi"
        assert_usable(router)


def test_lone_surrogate_query_is_invalid(router: SemanticRouter) -> None:
    with pytest.raises(InvalidQueryError):
        router.route("\ud800")


def test_lone_surrogate_query_leaves_router_usable(router: SemanticRouter) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the type is the bug above; usability is not
        router.route("\ud800")
    assert_usable(router)


# -- routes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("utterances", [[], (), None, "one string", [""], ["  "], ["ok", "\t"]])
def test_route_without_usable_utterances(utterances: Any) -> None:
    with pytest.raises(ConfigurationError):
        if utterances is None:
            Route(name="empty")
        else:
            Route("empty", utterances)


@pytest.mark.parametrize("utterances", [[1, 2], ["ok", None], [b"bytes"], [["nested"]], 5, 3.5])
def test_non_str_utterances(utterances: Any) -> None:
    with pytest.raises(ConfigurationError, match="utterances"):
        Route("bad", utterances)


@pytest.mark.parametrize("name", [None, 5, "", "   ", " lead", "trail "])
def test_bad_route_names(name: Any) -> None:
    with pytest.raises(ConfigurationError):
        Route(name, ["hello"]) if name is not None else Route(utterances=["hello"])


def test_duplicate_route_names(router: SemanticRouter, encoder: FakeEncoder) -> None:
    with pytest.raises(ConfigurationError, match="duplicate"):
        SemanticRouter([ROUTES[0], Route("greet", ["other"])], encoder=encoder)
    with pytest.raises(ConfigurationError, match="duplicate"):
        router.add(Route("greet", ["other words"]))
    with pytest.raises(ConfigurationError, match="duplicate"):
        router.set_routes([*ROUTES, Route("bye", ["again"])])
    with pytest.raises(RouteNotFoundError):
        router.remove("nope")
    with pytest.raises(RouteNotFoundError):
        router.update(Route("nope", ["x"]))
    assert router.route_names == [r.name for r in ROUTES]
    assert_usable(router)


def test_duplicate_utterances_are_kept_once(encoder: FakeEncoder) -> None:
    route = Route("r", ["a b", "c d", "a b", "c d", "e"])
    assert route.utterances == ("a b", "c d", "e")
    with SemanticRouter([route], encoder=encoder) as router:
        assert router.index_size == 3


def test_bad_input_on_add_leaves_router_unchanged(router: SemanticRouter) -> None:
    before = (router.route_names, router.index_size)
    for bad in (None, "route", {"name": "x"}, 5):
        with pytest.raises((ConfigurationError, AttributeError, TypeError)):
            router.add(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        router.set_routes("not a list")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        router.set_routes([{"name": "x", "utterances": [1]}])  # type: ignore[list-item]
    assert (router.route_names, router.index_size) == before
    assert_usable(router)


@pytest.mark.parametrize("bad", ["a route", None, 3, ["x"], {"name": "x", "utterances": []}])
def test_add_non_route_is_a_configuration_error(router: SemanticRouter, bad: object) -> None:
    with pytest.raises(ConfigurationError):
        router.add(bad)  # type: ignore[arg-type]


def test_add_accepts_a_route_mapping(router: SemanticRouter) -> None:
    router.add({"name": "x", "utterances": ["yonder words"]})  # type: ignore[arg-type]
    assert "x" in router


def test_lone_surrogate_utterance_is_a_configuration_error(encoder: FakeEncoder) -> None:
    with pytest.raises(ConfigurationError):
        SemanticRouter([Route("r", ["fine", "bad \udc80"])], encoder=encoder)


def test_hundred_thousand_utterances_in_one_route() -> None:
    encoder = FakeEncoder(dimension=8)
    utterances = [f"u{i}" for i in range(100_000)]
    routes = [Route("big", utterances), Route("small", ["zebra crossing", "zebra stripes"])]
    with SemanticRouter(routes, encoder=encoder) as router:
        assert router.index_size == 100_002
        assert router.last_sync.encoded == 100_002
        assert router.route("u99999").name == "big"
        assert router.route("zebra crossing").name == "small"
        encoder.reset_counts()
        report = router.remove("small")
        assert report == SyncReport(deleted=2, kept=100_000)
        assert encoder.encoded_texts == 0
        assert "small" not in router
        assert router.route("zebra crossing").name != "small"


# -- route validation, property based ----------------------------------------------------------

_junk = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.binary(max_size=5),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    name=st.one_of(st.text(max_size=12), _junk),
    utterances=st.one_of(
        st.lists(st.one_of(st.text(max_size=12), _junk), max_size=6), st.text(), _junk
    ),
    threshold=st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=3)),
)
def test_route_validation_property(name: Any, utterances: Any, threshold: Any) -> None:
    try:
        route = Route(name, utterances, threshold=threshold)
    except ConfigurationError:
        return
    # what was accepted is exactly what was asked for, cleaned in the documented ways only
    assert isinstance(route.name, str) and route.name == route.name.strip() and route.name
    assert isinstance(route.utterances, tuple) and route.utterances
    assert all(isinstance(u, str) and u.strip() for u in route.utterances)
    assert list(route.utterances) == list(dict.fromkeys(utterances))
    assert route.threshold is None or -1.0 <= route.threshold <= 1.0


_word = st.text(alphabet="abcxyz \x1f", min_size=1, max_size=5).filter(
    lambda s: s.strip() == s and s
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@example(pairs={"a": ["b\x1fc"], "a\x1fb": ["c"]})
@given(
    pairs=st.dictionaries(_word, st.lists(_word, min_size=1, max_size=3), min_size=1, max_size=4)
)
def test_every_distinct_route_utterance_pair_is_indexed(pairs: dict[str, list[str]]) -> None:
    routes = [Route(name, utts) for name, utts in pairs.items()]
    client = QdrantClient(":memory:")
    with SemanticRouter(routes, encoder=FakeEncoder(dimension=8), client=client) as router:
        assert router.index_size == sum(len(r.utterances) for r in routes)


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.dictionaries(
        st.text(alphabet="abcdef", min_size=1, max_size=4),
        st.lists(
            st.text(alphabet="abc def", min_size=1, max_size=8).filter(str.strip),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_index_matches_declared_routes_property(pairs: dict[str, list[str]]) -> None:
    routes = [Route(name, utts) for name, utts in pairs.items()]
    client = QdrantClient(":memory:")
    with SemanticRouter(routes, encoder=FakeEncoder(dimension=8), client=client) as router:
        assert router.index_size == sum(len(r.utterances) for r in routes)
        for route in routes:
            for utt in route.utterances:
                match = router.route(utt)
                assert match.name is None or match.name in pairs


# -- foreign collections -------------------------------------------------------------------------


def test_collection_from_another_encoder_or_dimension(tmp_path: Any) -> None:
    with SemanticRouter(ROUTES, encoder=FakeEncoder(32), path=tmp_path):
        pass
    for other in (FakeEncoder(32, model_id="other-model"), FakeEncoder(16)):
        with pytest.raises(IndexMismatchError, match="rebuild=True"):
            SemanticRouter(ROUTES, encoder=other, path=tmp_path)
    # the refused open left the collection intact: the first encoder reopens without encoding
    encoder = FakeEncoder(32)
    with SemanticRouter(ROUTES, encoder=encoder, path=tmp_path) as router:
        assert encoder.encoded_texts == 0
        assert_usable(router)
    # and rebuild=True replaces it
    with SemanticRouter(ROUTES, encoder=FakeEncoder(16), path=tmp_path, rebuild=True) as router:
        assert router.last_sync.encoded == router.index_size == 12
        assert_usable(router)


def test_client_collection_from_another_encoder_or_not_semrouter() -> None:
    client = QdrantClient(":memory:")
    SemanticRouter(ROUTES, encoder=FakeEncoder(32), client=client, collection="c").close()
    with pytest.raises(IndexMismatchError):
        SemanticRouter(ROUTES, encoder=FakeEncoder(24), client=client, collection="c")
    client.create_collection(
        "plain", vectors_config=models.VectorParams(size=32, distance=models.Distance.DOT)
    )
    with pytest.raises(IndexMismatchError, match="not made by semrouter"):
        SemanticRouter(ROUTES, encoder=FakeEncoder(32), client=client, collection="plain")
    assert client.collection_exists("plain")  # refused, not dropped
    with SemanticRouter(ROUTES, encoder=FakeEncoder(32), client=client, collection="c") as router:
        assert router.last_sync.encoded == 0
        assert_usable(router)


def _foreign_points(dimension: int) -> list[models.PointStruct]:
    return [
        models.PointStruct(id=10**6 + i, vector=[1.0 + i] * dimension, payload={"owner": "someone"})
        for i in range(50)
    ] + [
        models.PointStruct(
            id=f"00000000-0000-4000-8000-00000000000{i}",
            vector=[0.5] * dimension,
            payload={"title": "not ours", "route": 7},
        )
        for i in range(3)
    ]


@pytest.mark.parametrize("search", ["exact", "qdrant"])
def test_collection_with_foreign_points(search: str) -> None:
    client = QdrantClient(":memory:")
    SemanticRouter(ROUTES, encoder=FakeEncoder(32), client=client, collection="c").close()
    client.upsert("c", _foreign_points(32), wait=True)
    before = client.count("c").count
    with SemanticRouter(
        ROUTES, encoder=FakeEncoder(32), client=client, collection="c", search=search, candidates=64
    ) as router:
        assert router.last_sync == SyncReport(kept=12)
        assert_usable(router)
        for query in ("someone", "not ours", "1", "zzz"):
            assert router.route(query).name in (None, *router.route_names)
    assert client.count("c").count == before  # foreign points were left alone


def test_foreign_integer_id_point_with_our_keys_is_synced_once() -> None:
    client = QdrantClient(":memory:")
    SemanticRouter(ROUTES, encoder=FakeEncoder(32), client=client, collection="c").close()
    client.upsert(
        "c",
        [
            models.PointStruct(
                id=6, vector=[0.5] * 32, payload={"route": "ghost", "utterance": "boo"}
            )
        ],
        wait=True,
    )
    SemanticRouter(ROUTES, encoder=FakeEncoder(32), client=client, collection="c").close()
    with SemanticRouter(ROUTES, encoder=FakeEncoder(32), client=client, collection="c") as router:
        assert router.last_sync == SyncReport(kept=12)


# -- unreachable servers ----------------------------------------------------------------------


def test_refusing_url_fails_fast_naming_the_url(refusing_url: str, encoder: FakeEncoder) -> None:
    start = time.monotonic()
    with pytest.raises(BackendUnavailableError) as info:
        SemanticRouter(ROUTES, encoder=encoder, url=refusing_url, timeout=2)
    assert time.monotonic() - start < 2 + 3
    assert refusing_url in str(info.value)
    assert isinstance(info.value, ConnectionError) and isinstance(info.value, SemRouterError)
    assert info.value.__cause__ is not None


def test_hanging_url_fails_within_the_timeout(hanging_url: str, encoder: FakeEncoder) -> None:
    start = time.monotonic()
    with pytest.raises(BackendUnavailableError) as info:
        SemanticRouter(ROUTES, encoder=encoder, url=hanging_url, timeout=1)
    elapsed = time.monotonic() - start
    assert elapsed < 1 + 3, elapsed
    assert hanging_url in str(info.value)


def test_unreachable_load_then_local_router_still_works(
    refusing_url: str, tmp_path: Any, encoder: FakeEncoder
) -> None:
    config = tmp_path / "r.yaml"
    config.write_text(
        "routes: [{name: a, utterances: [hello there]}]\n"
        f"encoder: {{type: fake, dimension: 8}}\nindex: {{url: '{refusing_url}', timeout: 1}}\n"
    )
    with pytest.raises(BackendUnavailableError, match=r"127\.0\.0\.1"):
        SemanticRouter.load(config)
    with SemanticRouter.load(config, client=QdrantClient(":memory:")) as router:
        assert router.route("hello there").name == "a"


def test_load_with_index_path_override(refusing_url: str, tmp_path: Any) -> None:
    config = tmp_path / "r.yaml"
    config.write_text(
        "routes: [{name: a, utterances: [hello there]}]\n"
        f"encoder: {{type: fake, dimension: 8}}\nindex: {{url: '{refusing_url}', timeout: 1}}\n"
    )
    with SemanticRouter.load(config, path=tmp_path / "idx") as router:
        assert router.route("hello there").name == "a"
