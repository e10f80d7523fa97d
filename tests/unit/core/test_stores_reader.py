"""A reader of an embedded folder answers every read of the Store interface exactly as the
folder's writer does, once the writer has flushed and the reader reloaded; it refuses writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from semrouter._exceptions import ReadOnlyRouterError
from semrouter._index import point_id
from semrouter._stores import META_ID, EdgeStore
from semrouter._stores._edge_files import SNAPSHOT_FILE

DIM = 8
META = {"fingerprint": "test|dim=8|l2", "dimension": DIM, "schema_version": 1}


def unit(rows: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def ids(n: int, route: str = "route") -> list[str]:
    return [point_id(route, f"utterance {i}") for i in range(n)]


def payloads(n: int, route: str = "route") -> list[dict[str, object]]:
    return [{"route": route, "utterance": f"utterance {i}", "metadata": {}} for i in range(n)]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[EdgeStore, EdgeStore]]:
    """A writer holding 30 points and a reader of the same folder."""
    writer = EdgeStore(tmp_path, "c", mode="write")
    writer.create(META, DIM)
    writer.upsert(ids(30), unit(30), payloads(30))
    writer.flush()
    reader = EdgeStore(tmp_path, "c", mode="read")
    try:
        yield writer, reader
    finally:
        reader.close()
        writer.close()


def _scrolled(store: EdgeStore) -> dict[str, dict[str, object]]:
    return {pid: payload for pid, payload, _ in store.scroll(with_vectors=False)}


def test_the_metadata_point_id_is_pinned() -> None:
    assert META_ID == "eb10d826-c192-5802-9bbb-c3a8fb878ca0"


def test_reads_agree_with_the_writer(pair: tuple[EdgeStore, EdgeStore]) -> None:
    writer, reader = pair
    assert reader.mode == "read" and writer.mode == "write"
    assert reader.read_meta() == writer.read_meta() == META
    assert _scrolled(reader) == _scrolled(writer)
    some = ids(30)[::7]
    assert np.allclose(reader.retrieve_vectors(some), writer.retrieve_vectors(some), atol=1e-6)
    cached_r, cached_w = (
        reader.load_vectors(META["fingerprint"], DIM),
        writer.load_vectors(META["fingerprint"], DIM),
    )
    assert cached_r is not None and cached_w is not None
    assert cached_r[0] == cached_w[0] and np.allclose(cached_r[1], cached_w[1])
    assert reader.load_vectors("another encoder", DIM) is None
    assert not reader.creation_interrupted()


def test_search_agrees_with_the_writer(pair: tuple[EdgeStore, EdgeStore]) -> None:
    writer, reader = pair
    queries = unit(30)[:5] + 0.05 * unit(5, seed=3)
    exact = reader.search(queries, 4)
    engine = [[hit for hit in hits if hit[0] != META_ID] for hits in writer.search(queries, 4)]
    for mine, theirs in zip(exact, engine):
        assert [pid for pid, _ in mine[:4]] == [pid for pid, _ in theirs[:4]]
        assert np.allclose([s for _, s in mine[:4]], [s for _, s in theirs[:4]], atol=1e-5)


async def test_async_search_agrees(pair: tuple[EdgeStore, EdgeStore]) -> None:
    _, reader = pair
    assert await reader.asearch(unit(30)[:2], 3) == reader.search(unit(30)[:2], 3)


def test_the_reader_follows_deletes_and_payload_rewrites(pair: tuple[EdgeStore, EdgeStore]) -> None:
    writer, reader = pair
    before = reader.loaded_revision
    writer.delete(ids(30)[:10])
    changed = [{**p, "metadata": {"v": 2}} for p in payloads(30)[10:12]]
    writer.set_payloads(ids(30)[10:12], changed)
    assert not reader.changed() and reader.revision() == before  # nothing before the flush
    writer.flush()
    assert reader.changed() and reader.revision() == writer.revision() > before
    assert reader.reload() and reader.loaded_revision == writer.revision()
    assert _scrolled(reader) == _scrolled(writer)
    assert _scrolled(reader)[ids(30)[10]]["metadata"] == {"v": 2}


def test_a_reader_refuses_every_write(pair: tuple[EdgeStore, EdgeStore]) -> None:
    _, reader = pair
    with pytest.raises(ReadOnlyRouterError, match="only reads"):
        reader.upsert(ids(1, "x"), unit(1), payloads(1, "x"))
    with pytest.raises(ReadOnlyRouterError):
        reader.delete(ids(1))
    with pytest.raises(ReadOnlyRouterError):
        reader.set_payloads(ids(1), payloads(1))
    with pytest.raises(ReadOnlyRouterError):
        reader.create(META, DIM)
    with pytest.raises(ReadOnlyRouterError):
        reader.drop()
    reader.flush()  # nothing to flush: harmless
    reader.prepare_search()


def test_a_reader_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    reader = EdgeStore(tmp_path, "nothing-here", mode="read", wait=0)
    assert reader.read_meta() is None and list(reader.scroll(with_vectors=False)) == []
    assert reader.search(unit(1), 3) == [[]]
    with pytest.raises(ReadOnlyRouterError, match="none is open"):
        reader.create(META, DIM)
    reader.close()


def test_the_writer_reopens_from_its_snapshot(tmp_path: Path) -> None:
    writer = EdgeStore(tmp_path, "c")
    writer.create(META, DIM)
    writer.upsert(ids(30), unit(30), payloads(30))
    writer.flush()
    revision = writer.revision()
    writer.close()
    again = EdgeStore(tmp_path, "c")
    assert again.revision() == revision  # a clean reopen publishes nothing
    cached = again.load_vectors(META["fingerprint"], DIM)
    assert cached is not None and np.allclose(cached[1], unit(30), atol=1e-6)
    again.close()


def test_a_bad_mode_is_refused(tmp_path: Path) -> None:
    from semrouter._exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="mode"):
        EdgeStore(tmp_path, "c", mode="readonly")  # type: ignore[arg-type]


def test_a_damaged_new_snapshot_leaves_the_reader_on_its_revision(
    pair: tuple[EdgeStore, EdgeStore], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import os

    _, reader = pair
    before, scrolled = reader.loaded_revision, _scrolled(reader)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"SEMRSNAP torn")
    os.replace(bad, tmp_path / "c" / SNAPSHOT_FILE)
    with caplog.at_level(logging.WARNING, logger="semrouter"):
        assert reader.changed() and not reader.reload()
    assert reader.loaded_revision == before and _scrolled(reader) == scrolled
    assert any("is damaged" in r.getMessage() for r in caplog.records)
    assert not reader.changed()  # the same damaged file is not read again on every refresh
