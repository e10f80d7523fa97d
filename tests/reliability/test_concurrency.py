"""Many threads and tasks on one router, routing during route changes, and shared clients."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient

from semrouter import FakeEncoder, Route, RouteMatch, SemanticRouter

from .conftest import QUERIES, ROUTES, assert_usable

SEARCH_MODES = ["exact", "qdrant"]


def _key(match: RouteMatch) -> tuple[Any, ...]:
    return (match.name, round(match.score, 5), match.utterance)


@pytest.fixture(params=SEARCH_MODES)
def shared_router(request: pytest.FixtureRequest) -> Any:
    with SemanticRouter(ROUTES, encoder=FakeEncoder(32), search=request.param) as router:
        yield router


def test_eight_threads_match_sequential(shared_router: SemanticRouter) -> None:
    work = QUERIES * 30
    expected = [_key(shared_router.route(q)) for q in work]
    expected_top = [[m.name for m in shared_router.top_routes(q, 3)] for q in QUERIES]
    barrier = threading.Barrier(8)

    def run(offset: int) -> list[tuple[Any, ...]]:
        barrier.wait()
        order = work[offset:] + work[:offset]
        got = [_key(shared_router.route(q)) for q in order]
        return got[len(work) - offset :] + got[: len(work) - offset]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(0, 8 * 7, 7)))
        batched = list(
            pool.map(lambda _: [_key(m) for m in shared_router.route_many(work)], range(8))
        )
        tops = list(
            pool.map(lambda q: [m.name for m in shared_router.top_routes(q, 3)], QUERIES * 8)
        )
    assert all(r == expected for r in results)
    assert all(b == expected for b in batched)
    assert tops == expected_top * 8


async def test_hundred_tasks_match_sequential(shared_router: SemanticRouter) -> None:
    work = [QUERIES[i % len(QUERIES)] for i in range(100)]
    expected = [_key(shared_router.route(q)) for q in work]
    got = await asyncio.gather(*(shared_router.aroute(q) for q in work))
    assert [_key(m) for m in got] == expected
    many = await asyncio.gather(
        *(shared_router.aroute_many(work[i : i + 10]) for i in range(0, 100, 10))
    )
    assert [_key(m) for chunk in many for m in chunk] == expected


async def test_tasks_and_threads_at_once(shared_router: SemanticRouter) -> None:
    expected = {q: _key(shared_router.route(q)) for q in QUERIES}
    stop = threading.Event()
    errors: list[str] = []

    def hammer() -> None:
        while not stop.is_set():
            for q in QUERIES:
                if _key(shared_router.route(q)) != expected[q]:
                    errors.append(q)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        work = QUERIES * 10
        got = await asyncio.gather(*(shared_router.aroute(q) for q in work))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert [_key(m) for m in got] == [expected[q] for q in work]
    assert errors == []


@pytest.mark.parametrize("search", SEARCH_MODES)
def test_routing_during_add_and_remove_never_answers_a_removed_route(search: str) -> None:
    marker = "temporary marker words"
    router = SemanticRouter(ROUTES, encoder=FakeEncoder(32), search=search)
    removed: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    violations: list[tuple[str, str]] = []
    seen_temp = 0
    seen_now = threading.Event()  # a reader saw the route just added

    def churn() -> None:
        try:
            for i in range(15):
                name = f"tmp{i}"
                seen_now.clear()
                router.add(Route(name, [marker, f"{marker} {i}"]))
                # let the readers meet the new route before it goes (whatever the machine load)
                seen_now.wait(timeout=5)
                router.remove(name)
                with lock:
                    removed.add(name)
        finally:
            stop.set()

    def reader() -> None:
        nonlocal seen_temp
        while not stop.is_set():
            with lock:
                gone = set(removed)  # removed before this query started
            for match in [
                router.route(marker),
                *router.top_routes(marker, 3, apply_threshold=False),
            ]:
                if match.name in gone:
                    violations.append((match.name, "after remove returned"))
                if match.name is not None and match.name.startswith("tmp"):
                    seen_temp += 1
                    seen_now.set()
                assert (
                    match.name is None
                    or match.name.startswith("tmp")
                    or match.name in {r.name for r in ROUTES}
                )

    with router:
        readers = [threading.Thread(target=reader) for _ in range(4)]
        for t in readers:
            t.start()
        churn()
        for t in readers:
            t.join()
        assert violations == []
        assert router.route_names == [r.name for r in ROUTES]
        assert router.index_size == 12
        assert router.route(marker).name is None
        assert_usable(router)
    assert seen_temp > 0  # the readers did run while temporary routes existed


# -- shared clients ------------------------------------------------------------------------------


def test_two_routers_one_client_different_collections() -> None:
    client = QdrantClient(":memory:")
    other_routes = [Route("alpha", ["alpha beta gamma"]), Route("omega", ["omega psi chi"])]
    with (
        SemanticRouter(ROUTES, encoder=FakeEncoder(32), client=client, collection="one") as a,
        SemanticRouter(other_routes, encoder=FakeEncoder(16), client=client, collection="two") as b,
    ):
        expected_a = {q: _key(a.route(q)) for q in QUERIES}

        def both(q: str) -> tuple[Any, ...]:
            return _key(a.route(q)), b.route("alpha beta gamma").name, b.route(q).name

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(both, QUERIES * 20))
        assert all(r[0] == expected_a[q] for r, q in zip(results, QUERIES * 20))
        assert all(r[1] == "alpha" for r in results)
        assert all(r[2] in (None, "alpha", "omega") for r in results)
        a.remove("bye")
        assert b.index_size == 2 and b.route("omega psi chi").name == "omega"
    # each collection: its utterances, the metadata point, the route set document and head
    assert client.count("one").count == 9 + 3 and client.count("two").count == 2 + 3


@pytest.mark.parametrize("search", SEARCH_MODES)
def test_two_routers_one_client_same_collection_same_routes(search: str) -> None:
    client = QdrantClient(":memory:")
    first_encoder, second_encoder = FakeEncoder(32), FakeEncoder(32)
    with (
        SemanticRouter(ROUTES, encoder=first_encoder, client=client, search=search) as a,
        SemanticRouter(ROUTES, encoder=second_encoder, client=client, search=search) as b,
    ):
        assert first_encoder.encoded_texts == 12 and second_encoder.encoded_texts == 0
        with ThreadPoolExecutor(8) as pool:
            pairs = list(pool.map(lambda q: (_key(a.route(q)), _key(b.route(q))), QUERIES * 10))
        assert all(x == y for x, y in pairs)


@pytest.mark.parametrize("search", SEARCH_MODES)
def test_two_routers_one_client_same_collection_different_routes(search: str) -> None:
    client = QdrantClient(":memory:")
    other = [Route("alpha", ["alpha beta gamma"]), ROUTES[0]]
    with (
        SemanticRouter(ROUTES, encoder=FakeEncoder(32), client=client, search=search) as a,
        SemanticRouter(other, encoder=FakeEncoder(32), client=client, search=search) as b,
    ):
        # b merged its routes into the stored set: nothing of a's was deleted
        assert set(b.route_names) == {*a.route_names, "alpha"}
        with ThreadPoolExecutor(8) as pool:
            pairs = list(
                pool.map(lambda q: (a.route(q).name, b.route(q).name), [*QUERIES, "alpha beta"])
            )
        assert all(x in (None, *a.route_names) and y in (None, *b.route_names) for x, y in pairs)
        assert b.route("alpha beta gamma").name == "alpha"
        assert a.refresh() and "alpha" in a.route_names  # a follows b's change
    # reopening with the first route set deletes nothing; sync="replace" makes the store match
    with SemanticRouter(ROUTES, encoder=FakeEncoder(32), client=client, search=search) as again:
        assert again.index_size == 13
        assert_usable(again)
    with SemanticRouter(
        ROUTES, encoder=FakeEncoder(32), client=client, search=search, sync="replace"
    ) as again:
        assert again.index_size == 12 and "alpha" not in again.route_names


async def test_two_routers_share_one_async_client() -> None:
    client, aclient = QdrantClient(":memory:"), AsyncQdrantClient(":memory:")
    other = [Route("alpha", ["alpha beta gamma"]), Route("omega", ["omega psi chi"])]
    a = SemanticRouter(
        ROUTES, encoder=FakeEncoder(32), client=client, aclient=aclient, collection="a"
    )
    b = SemanticRouter(
        other, encoder=FakeEncoder(32), client=client, aclient=aclient, collection="b"
    )
    with a, b:
        work = [QUERIES[i % len(QUERIES)] for i in range(100)]
        expected = [(_key(a.route(q)), _key(b.route(q))) for q in work]
        got_a, got_b = await asyncio.gather(
            asyncio.gather(*(a.aroute(q) for q in work)),
            asyncio.gather(*(b.aroute(q) for q in work)),
        )
        assert [(_key(x), _key(y)) for x, y in zip(got_a, got_b)] == expected
    await aclient.close()


async def test_async_client_on_other_storage_gives_a_semrouter_error() -> None:
    from semrouter import SemRouterError

    client, aclient = QdrantClient(":memory:"), AsyncQdrantClient(":memory:")
    router = SemanticRouter(
        ROUTES, encoder=FakeEncoder(32), client=client, aclient=aclient, search="qdrant"
    )
    with router, pytest.raises(SemRouterError):
        await router.aroute("hello there")
