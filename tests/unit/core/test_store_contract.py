"""The Store contract, the same tests over every store: EdgeStore on disk, EdgeStore in a
temporary folder and ClientStore (qdrant-client's local mode); plus pinned point ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from semrouter._index import point_id
from semrouter._stores import ClientStore, EdgeStore, Store

DIM = 8
META = {"fingerprint": "test|dim=8|l2", "dimension": DIM, "schema_version": 1}


def unit(rows: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(params=["edge-path", "edge-temporary", "client"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store
    if request.param == "edge-path":
        made = EdgeStore(tmp_path / "db", "c")
    elif request.param == "edge-temporary":
        made = EdgeStore(None, "c")
    else:
        made = ClientStore(QdrantClient(":memory:"), "c")
    try:
        yield made
    finally:
        made.close()


def ids(n: int) -> list[str]:
    return [point_id("route", f"utterance {i}") for i in range(n)]


def payloads(n: int) -> list[dict[str, object]]:
    return [{"route": "route", "utterance": f"utterance {i}", "metadata": {}} for i in range(n)]


def test_meta_is_absent_then_recorded(store: Store) -> None:
    assert store.read_meta() is None
    store.create(META, DIM)
    assert store.read_meta() == META


def test_points_round_trip(store: Store) -> None:
    store.create(META, DIM)
    vectors = unit(5)
    stored = payloads(5)
    store.upsert(ids(5), vectors, stored)
    store.flush()
    scrolled = {pid: payload for pid, payload, _ in store.scroll(with_vectors=False)}
    assert scrolled == dict(zip(ids(5), stored))  # the metadata point is never listed
    assert np.allclose(store.retrieve_vectors(ids(5)[::-1]), vectors[::-1], atol=1e-6)


def test_delete_and_payload_rewrite(store: Store) -> None:
    store.create(META, DIM)
    stored = payloads(4)
    store.upsert(ids(4), unit(4), stored)
    store.delete(ids(4)[:2])
    store.delete([*ids(4)[:1], ids(5)[4]])  # ids no longer (or never) stored: no error
    store.delete([])
    store.set_payloads(ids(4)[2:3], [{"route": "route", "utterance": "x", "metadata": {"k": 1}}])
    store.flush()
    scrolled = {pid: payload for pid, payload, _ in store.scroll(with_vectors=False)}
    assert set(scrolled) == set(ids(4)[2:])
    assert scrolled[ids(4)[2]]["metadata"] == {"k": 1}


def searchable(store: Store, count: int, seed: int) -> np.ndarray:
    """Fill a new ``store`` with ``count`` points, ready to search; their vectors."""
    store.create(META, DIM)
    vectors = unit(count, seed=seed)
    store.upsert(ids(count), vectors, payloads(count))
    store.flush()
    store.prepare_search()
    return vectors


def test_search_finds_the_nearest_point_first(store: Store) -> None:
    vectors = searchable(store, 20, seed=1)
    hits = store.search(vectors[[3, 7]], 5)
    assert [h[0][0] for h in hits] == [ids(20)[3], ids(20)[7]]
    assert hits[0][0][1] == pytest.approx(1.0, abs=1e-4)


async def test_async_search_agrees(store: Store) -> None:
    vectors = searchable(store, 6, seed=2)
    assert (await store.asearch(vectors[:1], 3))[0][0][0] == ids(6)[0]


def test_drop_forgets_everything(store: Store) -> None:
    store.create(META, DIM)
    store.drop()
    assert store.read_meta() is None


# -- point ids are a stable, collision-free function of (route, utterance) ------------------------
def test_point_id_known_values() -> None:
    # Pinned: changing the id scheme re-encodes every user's collection.
    assert point_id("greet", "hello there") == "3e802701-ceba-5396-aebf-490204d1a9f8"
    assert point_id("a", "bc") == "26f827eb-c5f4-566c-b9d0-c0a7a4447cda"


def test_point_id_length_prefix_prevents_collisions() -> None:
    assert point_id("a", "bc") != point_id("ab", "c")
    assert point_id("a", "b\x1fc") != point_id("a\x1fb", "c")
