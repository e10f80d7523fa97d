"""Where route vectors live: Qdrant's embedded engine or a Qdrant server, behind one interface.

``EdgeStore`` keeps a collection in-process with Qdrant Edge (``qdrant-edge-py``): a folder on
disk with a write-ahead log, or a temporary folder for ``":memory:"``. ``ClientStore`` talks to a
Qdrant server (or any ready ``QdrantClient``, ``":memory:"`` included) through qdrant-client.
The route index (``_index.py``) only uses the methods of :class:`Store`.

Every collection holds one metadata point (fixed id, payload key ``semrouter_meta``) recording
the encoder fingerprint, dimension and schema version; it carries a unit vector and is skipped
when results are read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._exceptions import (
    ConfigurationError,
    IndexMismatchError,
    backend_errors,
)

__all__ = ["META_ID", "META_KEY", "ClientStore", "EdgeStore", "Hit", "Store", "StoredPoint"]

NAMESPACE = uuid.UUID("6f1d3c4e-5a2b-5d8e-9c7f-0a1b2c3d4e5f")
META_ID = str(uuid.uuid5(NAMESPACE, "semrouter:collection-meta"))
META_KEY = "semrouter_meta"
_SCROLL_PAGE = 2048
_WRITE_BATCH = 512

# (id, payload, vector or None)
StoredPoint = tuple[str, dict[str, Any], "list[float] | None"]
# (id, score)
Hit = tuple[str, float]


class Store(ABC):
    """One Qdrant collection, seen by the route index."""

    #: What a user would recognise: a folder, a URL or a collection name.
    target: str

    @abstractmethod
    def read_meta(self) -> dict[str, Any] | None:
        """The collection's metadata, or ``None`` if the collection does not exist yet."""

    @abstractmethod
    def create(self, meta: dict[str, Any], dimension: int) -> None:
        """Create the (empty) collection with its metadata point and route-name index."""

    def creation_interrupted(self) -> bool:
        """Whether an earlier :meth:`create` died before writing the metadata point.

        Only a store that alone creates its collections can tell; a server collection with
        no metadata point may be anyone's, so the default answer is no.
        """
        return False

    @abstractmethod
    def drop(self) -> None:
        """Delete the collection and everything in it."""

    @abstractmethod
    def scroll(self, *, with_vectors: bool) -> Iterator[StoredPoint]:
        """Every point except the metadata point."""

    @abstractmethod
    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]
    ) -> None:
        """Insert or replace points."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None:
        """Delete points by id."""

    @abstractmethod
    def set_payloads(self, ids: Sequence[str], payloads: Sequence[dict[str, Any]]) -> None:
        """Replace the payload of existing points."""

    @abstractmethod
    def search(self, vectors: np.ndarray, limit: int) -> list[list[Hit]]:
        """Nearest points for each query vector, best first (may include foreign points)."""

    async def asearch(self, vectors: np.ndarray, limit: int) -> list[list[Hit]]:
        """Asynchronous :meth:`search`; stores with real async I/O override it."""
        import asyncio

        return await asyncio.to_thread(self.search, vectors, limit)

    def prepare_search(self) -> None:  # noqa: B027 - optional hook
        """Build whatever makes :meth:`search` fast (an HNSW graph); may take a while."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Make the writes so far durable (called once at the end of each sync)."""

    @abstractmethod
    def retrieve_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The vectors of existing points, in the order of ``ids``."""

    def load_vectors(self, fingerprint: str, dimension: int) -> tuple[list[str], np.ndarray] | None:
        """Ids and vectors kept by :meth:`save_vectors`, if this store keeps such a cache."""
        return None

    def save_vectors(  # noqa: B027
        self, ids: Sequence[str], matrix: np.ndarray, fingerprint: str
    ) -> None:
        """Keep a copy of the exact-search matrix beside the collection (optional)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""


def _meta_vector(dimension: int) -> list[float]:
    vector = [0.0] * dimension
    vector[0] = 1.0
    return vector


class EdgeStore(Store):
    """A collection in Qdrant's embedded engine, in this process.

    Args:
        path: the parent folder; the collection lives in ``path/collection``. ``None`` keeps it
            in a temporary folder removed on :meth:`close`.
        collection: the collection (sub-folder) name.
    """

    def __init__(self, path: str | Path | None, collection: str) -> None:
        import qdrant_edge

        self._edge = qdrant_edge
        self._tmp = None if path is not None else _make_temp_dir()
        # A temporary folder (in RAM where possible) goes when the store is closed or collected.
        self._cleanup = (
            weakref.finalize(self, shutil.rmtree, self._tmp, True) if self._tmp else None
        )
        root = Path(path) if path is not None else Path(self._tmp or ".")
        if root.exists() and not root.is_dir():
            raise ConfigurationError(f"path {root} exists and is not a folder")
        self._dir = root / collection
        self.target = str(self._dir) if path is not None else ":memory:"
        self._shard: Any = None
        self._indexed = False
        if (self._dir / "edge_config.json").exists() or any(self._dir.glob("segments*")):
            self._shard = self._edge.EdgeShard.load(str(self._dir))

    def read_meta(self) -> dict[str, Any] | None:
        if self._shard is None:
            return None
        records = self._shard.retrieve([META_ID], with_payload=True, with_vector=False)
        if not records:
            return {}
        meta = (records[0].payload or {}).get(META_KEY)
        return dict(meta) if isinstance(meta, dict) else {}

    def create(self, meta: dict[str, Any], dimension: int) -> None:
        edge = self._edge
        if self._shard is None:
            self._dir.mkdir(parents=True, exist_ok=True)
            config = edge.EdgeConfig(
                vectors=edge.EdgeVectorParams(size=dimension, distance=edge.Distance.Cosine),
                # a temporary collection needs no write-ahead log: nothing outlives the process
                wal_enabled=self._tmp is None,
            )
            self._shard = edge.EdgeShard.create(str(self._dir), config)
            self._shard.update(
                edge.UpdateOperation.create_field_index("route", edge.PayloadSchemaType.Keyword)
            )
        point = edge.Point(id=META_ID, vector=_meta_vector(dimension), payload={META_KEY: meta})
        self._shard.update(edge.UpdateOperation.upsert_points([point]))
        self.flush()

    def creation_interrupted(self) -> bool:
        # An Edge folder is only ever created by create(): empty means it died half-way.
        if self._shard is None:
            return False
        return int(self._shard.count(self._edge.CountRequest(exact=True))) == 0

    def drop(self) -> None:
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        shutil.rmtree(self._dir, ignore_errors=True)
        self._indexed = False

    def scroll(self, *, with_vectors: bool) -> Iterator[StoredPoint]:
        if self._shard is None:
            return
        offset: Any = None
        while True:
            request = self._edge.ScrollRequest(
                offset=offset, limit=_SCROLL_PAGE, with_payload=True, with_vector=with_vectors
            )
            records, offset = self._shard.scroll(request)
            yield from _points(records, with_vectors)
            if offset is None:
                return

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]
    ) -> None:
        edge = self._edge
        for start in range(0, len(ids), _WRITE_BATCH):
            stop = start + _WRITE_BATCH
            points = [
                edge.Point(id=point_id, vector=vector.tolist(), payload=payload)
                for point_id, vector, payload in zip(
                    ids[start:stop], vectors[start:stop], payloads[start:stop]
                )
            ]
            self._shard.update(edge.UpdateOperation.upsert_points(points))
        self._indexed = False

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), _WRITE_BATCH):
            chunk: list[Any] = list(ids[start : start + _WRITE_BATCH])
            self._shard.update(self._edge.UpdateOperation.delete_points(chunk))

    def set_payloads(self, ids: Sequence[str], payloads: Sequence[dict[str, Any]]) -> None:
        edge = self._edge
        for point_id, payload in zip(ids, payloads):
            self._shard.update(edge.UpdateOperation.overwrite_payload([point_id], payload))

    def flush(self) -> None:
        # A temporary (":memory:") collection dies with the process: fsync buys nothing there.
        if self._shard is not None and self._tmp is None:
            self._shard.flush()

    def retrieve_vectors(self, ids: Sequence[str]) -> np.ndarray:
        found: dict[str, Any] = {}
        for start in range(0, len(ids), _SCROLL_PAGE):
            chunk: list[Any] = list(ids[start : start + _SCROLL_PAGE])
            for record in self._shard.retrieve(chunk, with_payload=False, with_vector=True):
                found[str(record.id)] = _plain_vector(record.vector)
        return _stack(ids, found)

    # The exact-search matrix, saved beside a persistent collection: reading 10k vectors back
    # through the engine's Python API is most of a reopen (benchmarks/results/core_perf.txt).
    # Only a cache: an id's vector never changes, so a stale file can only lack ids.
    def _cache_file(self) -> Path | None:
        return None if self._tmp is not None else self._dir / "semrouter-vectors.npz"

    def load_vectors(self, fingerprint: str, dimension: int) -> tuple[list[str], np.ndarray] | None:
        file = self._cache_file()
        if file is None or not file.exists():
            return None
        try:
            with np.load(file, allow_pickle=False) as data:
                ids, matrix, stamp = data["ids"], data["matrix"], str(data["fingerprint"])
        except (OSError, ValueError, KeyError):
            return None
        if stamp != fingerprint or matrix.shape != (len(ids), dimension):
            return None
        return [str(i) for i in ids], np.asarray(matrix, dtype=np.float32)

    def save_vectors(self, ids: Sequence[str], matrix: np.ndarray, fingerprint: str) -> None:
        file = self._cache_file()
        if file is None:
            return
        partial = file.with_name(file.name + ".partial.npz")
        np.savez(partial, ids=np.asarray(ids), matrix=matrix, fingerprint=fingerprint)
        os.replace(partial, file)

    def prepare_search(self) -> None:
        if not self._indexed:
            self._shard.optimize()
            self._indexed = True

    def search(self, vectors: np.ndarray, limit: int) -> list[list[Hit]]:
        edge = self._edge
        requests = [
            edge.QueryRequest(query=edge.Query.Nearest(vector.tolist()), limit=limit + 1)
            for vector in vectors
        ]
        results = self._shard.query_batch(edge.QueryBatchRequest(requests))
        return [[(str(p.id), float(p.score)) for p in result] for result in results]

    def close(self) -> None:
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        if self._cleanup is not None:
            self._cleanup()


class ClientStore(Store):
    """A collection on a Qdrant server, or in any ready ``QdrantClient``.

    Args:
        client: a ``QdrantClient`` (server, ``":memory:"`` or ``path=``).
        aclient: an optional ``AsyncQdrantClient`` on the same storage, for :meth:`asearch`.
        collection: the collection name.
        target: how to name the server in errors (the URL).
        timeout: seconds for server requests.
    """

    def __init__(
        self,
        client: Any,
        collection: str,
        *,
        aclient: Any = None,
        target: str | None = None,
        timeout: float | None = None,
    ) -> None:
        from qdrant_client import models

        self._models = models
        self._client = client
        self._aclient = aclient
        self._collection = collection
        self._timeout = int(timeout) if timeout else None
        self.target = target or f"collection {collection!r}"

    def read_meta(self) -> dict[str, Any] | None:
        with backend_errors(self.target):
            if not self._client.collection_exists(self._collection):
                return None
            records = self._client.retrieve(self._collection, [META_ID], with_payload=True)
        if not records:
            return {}
        meta = (records[0].payload or {}).get(META_KEY)
        return dict(meta) if isinstance(meta, dict) else {}

    def create(self, meta: dict[str, Any], dimension: int) -> None:
        models = self._models
        with backend_errors(self.target):
            if not self._client.collection_exists(self._collection):
                self._client.create_collection(
                    self._collection,
                    vectors_config=models.VectorParams(
                        size=dimension, distance=models.Distance.COSINE
                    ),
                )
                with warnings.catch_warnings():  # local mode warns that it has no indexes
                    warnings.simplefilter("ignore", UserWarning)
                    self._client.create_payload_index(
                        self._collection, "route", field_schema=models.PayloadSchemaType.KEYWORD
                    )
            point = models.PointStruct(
                id=META_ID, vector=_meta_vector(dimension), payload={META_KEY: meta}
            )
            self._client.upsert(self._collection, [point], wait=True)

    def drop(self) -> None:
        with backend_errors(self.target):
            self._client.delete_collection(self._collection)

    def scroll(self, *, with_vectors: bool) -> Iterator[StoredPoint]:
        offset: Any = None
        while True:
            with backend_errors(self.target):
                records, offset = self._client.scroll(
                    self._collection,
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=True,
                    with_vectors=with_vectors,
                )
            yield from _points(records, with_vectors)
            if offset is None:
                return

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]
    ) -> None:
        models = self._models
        for start in range(0, len(ids), _WRITE_BATCH):
            stop = start + _WRITE_BATCH
            batch = models.Batch(
                ids=list(ids[start:stop]),
                vectors=vectors[start:stop].tolist(),
                payloads=list(payloads[start:stop]),
            )
            with backend_errors(self.target):
                self._client.upsert(self._collection, batch, wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        selector = self._models.PointIdsList(points=list(ids))
        with backend_errors(self.target):
            self._client.delete(self._collection, selector, wait=True)

    def set_payloads(self, ids: Sequence[str], payloads: Sequence[dict[str, Any]]) -> None:
        with backend_errors(self.target):
            for point_id, payload in zip(ids, payloads):
                self._client.overwrite_payload(self._collection, payload, [point_id], wait=True)

    def retrieve_vectors(self, ids: Sequence[str]) -> np.ndarray:
        found: dict[str, Any] = {}
        for start in range(0, len(ids), _SCROLL_PAGE):
            with backend_errors(self.target):
                records = self._client.retrieve(
                    self._collection, list(ids[start : start + _SCROLL_PAGE]), with_vectors=True
                )
            found.update((str(r.id), _plain_vector(r.vector)) for r in records)
        return _stack(ids, found)

    def _requests(self, vectors: np.ndarray, limit: int) -> list[Any]:
        return [self._models.QueryRequest(query=v.tolist(), limit=limit + 1) for v in vectors]

    def search(self, vectors: np.ndarray, limit: int) -> list[list[Hit]]:
        with backend_errors(self.target):
            responses = self._client.query_batch_points(
                self._collection, self._requests(vectors, limit), timeout=self._timeout
            )
        return [[(str(p.id), float(p.score)) for p in r.points] for r in responses]

    async def asearch(self, vectors: np.ndarray, limit: int) -> list[list[Hit]]:
        if self._aclient is None:
            return await super().asearch(vectors, limit)
        try:
            with backend_errors(self.target):
                responses = await self._aclient.query_batch_points(
                    self._collection, self._requests(vectors, limit), timeout=self._timeout
                )
        except ValueError as exc:  # local mode: "Collection ... not found"
            raise ConfigurationError(
                f"the async client cannot see collection {self._collection!r}: client= and "
                "aclient= must point at the same Qdrant storage"
            ) from exc
        return [[(str(p.id), float(p.score)) for p in r.points] for r in responses]

    def close(self) -> None:
        # The client was handed to us or made by the router, which closes what it made.
        pass


def _make_temp_dir() -> str:
    """A folder for a temporary collection, named after this process.

    Folders left by processes that died without cleaning up (SIGKILL) are removed first, so a
    crash never leaks RAM in /dev/shm for longer than the next start.
    """
    parent = _ram_dir()
    for stale in Path(parent or tempfile.gettempdir()).glob("semrouter-*-*"):
        pid = stale.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"semrouter-{os.getpid()}-", dir=parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _ram_dir() -> str | None:
    """A RAM-backed folder for temporary collections (fsync on disk costs ~100 ms a flush)."""
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and shutil.disk_usage(shm).free > 1 << 30:
            return str(shm)
    except OSError:
        pass
    return None


def _points(records: Sequence[Any], with_vectors: bool) -> Iterator[StoredPoint]:
    """Scrolled records (of either client) as stored points, the metadata point left out."""
    for record in records:
        point_id = str(record.id)
        if point_id != META_ID:
            vector = _plain_vector(record.vector) if with_vectors else None
            yield point_id, dict(record.payload or {}), vector


def _stack(ids: Sequence[str], found: dict[str, Any]) -> np.ndarray:
    lost = [pid for pid in ids if found.get(pid) is None]
    if lost:
        raise IndexMismatchError(
            f"{len(lost)} points vanished from the collection while it was being read "
            f"(first: {lost[0]}); is another process writing to it?"
        )
    return np.asarray([found[pid] for pid in ids], dtype=np.float32)


def _plain_vector(vector: Any) -> list[float] | None:
    if vector is None or isinstance(vector, list):
        return vector  # already a fresh list: no copy
    if isinstance(vector, dict):  # named vectors: take the default one
        vector = vector.get("") or next(iter(vector.values()), None)
    return list(vector) if vector is not None else None
