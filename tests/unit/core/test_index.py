"""The Qdrant route index: persistence, incremental sync, fingerprints, both stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient

from semrouter import FakeEncoder, IndexMismatchError, Route, SemanticRouter
from semrouter._index import point_id

ROUTES = [
    Route(
        "flights", ["book a flight to paris", "cheap flights to rome"], metadata={"team": "travel"}
    ),
    Route("weather", ["what is the weather today", "will it rain tomorrow"]),
]


def test_reopening_a_persistent_router_encodes_nothing(tmp_path: Path) -> None:
    first_encoder = FakeEncoder()
    SemanticRouter(ROUTES, encoder=first_encoder, path=tmp_path).close()
    assert first_encoder.encoded_texts == 4

    encoder = FakeEncoder()
    router = SemanticRouter(ROUTES, encoder=encoder, path=tmp_path)
    assert encoder.encoded_texts == 0
    assert router.last_sync.encoded == 0 and router.last_sync.kept == 4
    assert router.route("book a flight to paris").name == "flights"
    router.close()


def test_reopening_with_changed_routes_encodes_only_the_difference(tmp_path: Path) -> None:
    SemanticRouter(ROUTES, encoder=FakeEncoder(), path=tmp_path).close()
    changed = [
        Route("flights", ["book a flight to paris", "a new flight utterance"]),
        Route("music", ["play some jazz"]),
    ]
    encoder = FakeEncoder()
    router = SemanticRouter(changed, encoder=encoder, path=tmp_path, sync="replace")
    assert encoder.encoded_texts == 2  # the new flight utterance and the music one
    report = router.last_sync
    assert (report.encoded, report.deleted, report.updated) == (2, 3, 1)  # metadata dropped
    router.close()
    # the stale utterances are really gone from the collection
    again = SemanticRouter(changed, encoder=FakeEncoder(), path=tmp_path)
    assert again.index_size == 3 and again.last_sync.encoded == 0
    assert again.route("will it rain tomorrow").name != "weather"
    again.close()


def test_another_encoder_is_refused_then_rebuilt(tmp_path: Path) -> None:
    SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=64), path=tmp_path).close()
    with pytest.raises(IndexMismatchError, match="fake-bow\\|dim=64"):
        SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=32), path=tmp_path)
    with pytest.raises(IndexMismatchError, match="rebuild=True"):
        SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=64, model_id="other"), path=tmp_path)
    encoder = FakeEncoder(dimension=32)
    router = SemanticRouter(ROUTES, encoder=encoder, path=tmp_path, rebuild=True)
    assert encoder.encoded_texts == 4
    assert router.route("will it rain tomorrow").name == "weather"
    router.close()


def test_point_ids_are_content_hashes() -> None:
    assert point_id("a", "x") == point_id("a", "x")
    assert point_id("a", "x") != point_id("b", "x")
    assert point_id("a", "x") != point_id("a", "y")


def test_collections_are_separate(tmp_path: Path) -> None:
    a = SemanticRouter(ROUTES[:1], encoder=FakeEncoder(), path=tmp_path, collection="a")
    b = SemanticRouter(ROUTES[1:], encoder=FakeEncoder(), path=tmp_path, collection="b")
    assert a.route_names == ["flights"] and b.route_names == ["weather"]
    assert (tmp_path / "a").is_dir() and (tmp_path / "b").is_dir()
    a.close()
    b.close()


@pytest.mark.parametrize("search", ["exact", "qdrant"])
def test_injected_client_store(search: str) -> None:
    client = QdrantClient(":memory:")
    encoder = FakeEncoder()
    router = SemanticRouter(ROUTES, encoder=encoder, client=client, search=search)  # type: ignore[arg-type]
    assert router.route("book a flight to paris").name == "flights"
    payloads = {
        p.payload["utterance"]: p.payload
        for p in client.scroll("semrouter", limit=100)[0]
        if "utterance" in (p.payload or {})
    }
    assert payloads["book a flight to paris"] == {
        "route": "flights",
        "utterance": "book a flight to paris",
        "metadata": {"team": "travel"},
    }
    # a second router on the same collection reuses the vectors
    again_encoder = FakeEncoder()
    again = SemanticRouter(ROUTES, encoder=again_encoder, client=client, search=search)  # type: ignore[arg-type]
    assert again_encoder.encoded_texts == 0
    assert again.route("will it rain tomorrow").name == "weather"


async def test_async_search_goes_through_the_async_client() -> None:
    from qdrant_client import models

    client, aclient = QdrantClient(":memory:"), AsyncQdrantClient(":memory:")
    # local-mode clients cannot share storage: mirror the collection into the async one
    SemanticRouter(ROUTES, encoder=FakeEncoder(), client=client)
    points, _ = client.scroll("semrouter", limit=100, with_vectors=True)
    await aclient.create_collection(
        "semrouter",
        vectors_config=models.VectorParams(size=64, distance=models.Distance.COSINE),
        sparse_vectors_config={"lexical": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    await aclient.upsert(
        "semrouter",
        [models.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in points],
    )
    router = SemanticRouter(
        ROUTES, encoder=FakeEncoder(), client=client, aclient=aclient, search="qdrant"
    )
    client.delete_collection("semrouter")  # from now on only the async client can answer
    match = await router.aroute("will it rain tomorrow")
    assert match.name == "weather"


def test_exact_and_qdrant_search_agree(tmp_path: Path) -> None:
    encoder = FakeEncoder()
    routes = [
        Route(f"r{i}", [f"topic {i} word{i} alpha{i % 3}", f"subject {i} word{i}"])
        for i in range(30)
    ]
    exact = SemanticRouter(routes, encoder=encoder, search="exact", path=tmp_path / "e")
    hnsw = SemanticRouter(routes, encoder=encoder, search="qdrant", path=tmp_path / "h")
    queries = [f"word{i} topic" for i in range(30)]
    a, b = exact.route_many(queries), hnsw.route_many(queries)
    assert [m.name for m in a] == [m.name for m in b]
    assert np.allclose([m.score for m in a], [m.score for m in b], atol=1e-4)


def test_foreign_points_are_ignored_and_kept() -> None:
    from qdrant_client import models

    client = QdrantClient(":memory:")
    router = SemanticRouter(ROUTES, encoder=FakeEncoder(), client=client)
    foreign = models.PointStruct(id=1, vector=[1.0] + [0.0] * 63, payload={"owner": "someone else"})
    client.upsert("semrouter", [foreign])
    encoder = FakeEncoder()
    again = SemanticRouter(ROUTES, encoder=encoder, client=client, search="qdrant")
    assert again.index_size == 4 and encoder.encoded_texts == 0
    assert again.route("will it rain tomorrow").name == "weather"
    assert client.retrieve("semrouter", [1])  # not deleted
    router.close()


def test_vector_cache_is_only_a_cache(tmp_path: Path) -> None:
    routes = [Route("flights", ["book a flight", "cheap flights"]), Route("rain", ["will it rain"])]
    first = SemanticRouter(routes, encoder=FakeEncoder(), path=tmp_path)
    expected = first.route_many(["book a flight", "will it rain"])
    first.close()
    cache = tmp_path / "semrouter" / "semrouter-snapshot.bin"  # the readers' snapshot
    assert cache.exists()
    # a corrupt cache is ignored: the vectors are read back from Qdrant
    cache.write_bytes(b"not a numpy file")
    again = SemanticRouter(routes, encoder=FakeEncoder(), path=tmp_path)
    assert again.route_many(["book a flight", "will it rain"]) == expected
    assert again.last_sync.encoded == 0
    again.add(Route("music", ["play jazz"]))  # rewrites the cache with the new id
    again.close()
    # a cache that lacks ids (written before a crash) is completed from Qdrant
    third = SemanticRouter(routes, encoder=FakeEncoder(), path=tmp_path, sync="replace")
    assert third.route_many(["book a flight", "will it rain"]) == expected
    third.close()
