"""The same router behaviour on a real Qdrant server: runs when QDRANT_URL is set.

QDRANT_URL=http://localhost:6333 [QDRANT_API_KEY=...] pytest tests/integration
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from semrouter import FakeEncoder, IndexMismatchError, Route, SemanticRouter
from tests.support.threads import in_threads

URL = os.environ.get("QDRANT_URL")
KEY = os.environ.get("QDRANT_API_KEY")
pytestmark = pytest.mark.skipif(not URL, reason="set QDRANT_URL to run against a Qdrant server")

ROUTES = [
    Route("flights", ["book a flight to paris", "cheap flights to rome"]),
    Route("weather", ["what is the weather today", "will it rain tomorrow"]),
]


@pytest.fixture
def collection() -> Iterator[str]:
    name = f"semrouter-test-{uuid.uuid4().hex[:8]}"
    yield name
    from qdrant_client import QdrantClient

    QdrantClient(url=URL, api_key=KEY).delete_collection(name)


def _open(collection: str, routes: list[Route] | None = None, **options: object) -> SemanticRouter:
    return SemanticRouter(
        routes,
        encoder=FakeEncoder(),
        url=URL,
        api_key=KEY,
        collection=collection,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("search", ["exact", "qdrant"])
async def test_route_sync_and_async_on_a_server(collection: str, search: str) -> None:
    router = _open(collection, ROUTES, search=search)
    assert router.route("book a flight to paris").name == "flights"
    assert (await router.aroute("will it rain tomorrow")).name == "weather"
    router.close()


def test_coalesced_callers_share_one_server_search(collection: str) -> None:
    """With coalescing on, concurrent route() calls are searched as one batch query on the
    server (search="qdrant"), each caller getting the answer it gets alone."""
    router = _open(collection, ROUTES, search="qdrant")
    queries = [f"{text} please {i}" for i in range(4) for text in ROUTES[0].utterances]
    queries += [f"{text} please {i}" for i in range(4) for text in ROUTES[1].utterances]
    alone = {q: router.route(q).name for q in queries}
    router.encoder.coalesce_ms = 5
    got: dict[str, str | None] = {}
    assert (
        in_threads(lambda i: got.__setitem__(queries[i], router.route(queries[i]).name), 16) == []
    )
    assert got == alone
    router.close()


def test_reopen_encodes_nothing_and_refuses_another_encoder(collection: str) -> None:
    _open(collection, ROUTES).close()
    encoder = FakeEncoder()
    again = SemanticRouter(ROUTES, encoder=encoder, url=URL, api_key=KEY, collection=collection)
    assert encoder.encoded_texts == 0 and again.last_sync.kept == 4
    again.close()
    with pytest.raises(IndexMismatchError):
        SemanticRouter(ROUTES, encoder=FakeEncoder(32), url=URL, api_key=KEY, collection=collection)


# -- deployment: replicas sharing one collection on the server -----------------------------------
def test_replicas_merge_follow_and_never_delete_each_other(collection: str) -> None:
    extra = Route("music", ["play some jazz", "next song please"])
    with _open(collection, ROUTES) as first, _open(collection, [extra]) as second:
        assert set(second.route_names) == {"flights", "weather", "music"}  # merged, not replaced
        assert first.refresh() and first.route("play some jazz").name == "music"
        second.remove("weather")
        assert first.refresh() and "weather" not in first.route_names
    with _open(collection) as opened:  # no routes in code: the stored set, nothing deleted
        assert opened.route_names == ["flights", "music"] and opened.last_sync.encoded == 0
    with _open(collection, [extra], sync="replace") as replaced:
        assert replaced.route_names == ["music"]


async def test_async_refresh_on_a_server(collection: str) -> None:
    with _open(collection, ROUTES) as writer, _open(collection, refresh_interval=0) as reader:
        writer.add(Route("music", ["play some jazz"]))
        assert (await reader.aroute("play some jazz")).name == "music"


def test_tenants_on_a_server(collection: str) -> None:
    with (
        _open(collection, ROUTES, tenant="acme") as acme,
        _open(collection, [Route("music", ["play some jazz"])], tenant="globex") as globex,
    ):
        acme.set_routes(ROUTES[:1])
        assert globex.route_names == ["music"] and acme.tenants() == ["acme", "globex"]
        globex.delete_route_set()
        assert acme.tenants() == ["acme"]


async def test_hybrid_on_a_server_scores_like_in_process(collection: str) -> None:
    """The server's sparse search (IDF modifier) ranks routes as the in-process BM25 does."""
    routes = [
        Route(f"r{i}", [f"device D{i}{j} fails with code C{i} step {j}" for j in range(3)])
        for i in range(12)
    ]
    queries = [f"C{i} failure on device D{(i + 5) % 12}0" for i in range(12)]
    answers = []
    for search in ("exact", "qdrant"):
        router = _open(collection, routes, search=search, hybrid="dbsf")
        answers.append([[m.name for m in ms] for ms in router.top_routes_many(queries, 3)])
        answers.append([(await router.atop_routes(q, 3))[0].name for q in queries])
        router.close()
    assert answers[0] == answers[2]
    assert answers[1] == answers[3]


def test_a_tenants_qdrant_search_is_not_crowded_out(collection: str) -> None:
    crowd = [Route("crowd", [f"book a flight to paris please {i}" for i in range(80)])]
    common = {"encoder": FakeEncoder(), "url": URL, "api_key": KEY, "collection": collection}
    other = SemanticRouter(crowd, tenant="globex", search="qdrant", hybrid="dbsf", **common)
    mine = SemanticRouter(
        [Route("flights", ["book a flight"]), Route("weather", ["rain tomorrow"])],
        tenant="acme",
        search="qdrant",
        hybrid="dbsf",
        candidates=8,
        **common,
    )
    assert mine.route("book a flight to paris please").name == "flights"
    other.close()
    mine.close()


def test_concurrent_writers_on_a_server_lose_nothing(collection: str) -> None:
    """Replicas writing at once: the conditional update of the head keeps every change."""
    options = {"encoder": FakeEncoder(), "url": URL, "api_key": KEY, "collection": collection}
    SemanticRouter(ROUTES, **options).close()  # type: ignore[arg-type]

    def write(me: int) -> None:
        with SemanticRouter.open(**options) as router:  # type: ignore[arg-type]
            for i in range(15):
                router.add(Route(f"r{me}-{i}", [f"utterance {me} {i}"]))

    assert in_threads(write, 3) == []
    with SemanticRouter.open(**options) as router:  # type: ignore[arg-type]
        assert len(router.routes) == 2 + 45 and router.revision == 1 + 45


def test_a_server_follower_sees_a_deleted_and_re_created_route_set(collection: str) -> None:
    options = {"encoder": FakeEncoder(), "url": URL, "api_key": KEY, "collection": collection}
    with (
        SemanticRouter(ROUTES, **options) as writer,  # type: ignore[arg-type]
        SemanticRouter.open(**options) as reader,  # type: ignore[arg-type]
    ):
        writer.delete_route_set()
        assert reader.refresh() and reader.routes == [] and reader.identity is None
        writer.add(ROUTES[0])
        assert reader.refresh() and reader.route_names == ["flights"]
        assert reader.identity == writer.identity and writer.revision == 1
