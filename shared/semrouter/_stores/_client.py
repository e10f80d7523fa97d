"""A collection on a Qdrant server, or in any ready ``QdrantClient``, through qdrant-client."""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np

from .._exceptions import (
    ConfigurationError,
    backend_errors,
)
from .._lexical import SPARSE_NAME, sparse_query
from ._base import (
    _SCROLL_PAGE,
    _WRITE_BATCH,
    META_ID,
    META_KEY,
    Hit,
    Store,
    StoredPoint,
    _meta_vector,
    _plain_vector,
    _points,
    _stack,
    payload_sparse,
)

__all__ = ["ClientStore"]


def _conditional_upsert(client: Any) -> bool:
    """Whether this qdrant-client's ``upsert`` takes ``update_filter`` and ``update_mode``."""
    import inspect

    try:
        parameters = inspect.signature(client.upsert).parameters
    except (TypeError, ValueError):
        return False
    return "update_filter" in parameters and "update_mode" in parameters


_LOCAL_LOCKS: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_LOCAL_LOCKS_GUARD = threading.Lock()


def _local_mode_lock(client: Any) -> Any:
    """A process-wide lock for a qdrant-client in local mode (its in-process engine corrupts
    its arrays when two threads write at once); a no-op for a server client."""
    engine = getattr(client, "_client", None)
    if engine is None or type(engine).__name__ != "QdrantLocal":
        return nullcontext()
    with _LOCAL_LOCKS_GUARD:
        lock = _LOCAL_LOCKS.get(engine)
        if lock is None:
            lock = _LOCAL_LOCKS[engine] = threading.RLock()
        return lock

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
        self._serial = _local_mode_lock(client)
        self._collection = collection
        self._timeout = int(timeout) if timeout else None
        self.target = target or f"collection {collection!r}"
        self._lexical: bool | None = None  # whether the collection has sparse vectors

    @contextmanager
    def _calling(self) -> Iterator[None]:
        """One call to Qdrant: errors mapped to ours; a local-mode client (``":memory:"`` or
        ``path=``, which is not thread-safe) is called by one thread at a time."""
        with self._serial, backend_errors(self.target):
            yield

    def read_meta(self) -> dict[str, Any] | None:
        with self._calling():
            if not self._client.collection_exists(self._collection):
                return None
            records = self._client.retrieve(self._collection, [META_ID], with_payload=True)
        if not records:
            return {}
        meta = (records[0].payload or {}).get(META_KEY)
        return dict(meta) if isinstance(meta, dict) else {}

    def create(self, meta: dict[str, Any], dimension: int) -> None:
        models = self._models
        with self._calling():
            if not self._client.collection_exists(self._collection):
                self._client.create_collection(
                    self._collection,
                    vectors_config=models.VectorParams(
                        size=dimension, distance=models.Distance.COSINE
                    ),
                    # BM25 per utterance for hybrid routing; Qdrant applies the IDF
                    sparse_vectors_config={
                        SPARSE_NAME: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                )
                self._lexical = True
                with warnings.catch_warnings():  # local mode warns that it has no indexes
                    warnings.simplefilter("ignore", UserWarning)
                    self._client.create_payload_index(
                        self._collection, "route", field_schema=models.PayloadSchemaType.KEYWORD
                    )
                    # Many route sets in one collection: Qdrant's tenant index groups each
                    # tenant's points on disk (https://qdrant.tech/documentation/guides/multiple-partitions/)
                    self._client.create_payload_index(
                        self._collection,
                        "tenant",
                        field_schema=models.KeywordIndexParams(type="keyword", is_tenant=True),
                    )
            point = models.PointStruct(
                id=META_ID, vector=_meta_vector(dimension), payload={META_KEY: meta}
            )
            self._client.upsert(self._collection, [point], wait=True)

    def drop(self) -> None:
        with self._calling():
            self._client.delete_collection(self._collection)

    def scroll(self, *, with_vectors: bool) -> Iterator[StoredPoint]:
        yield from self._scroll(with_vectors, None)

    def scroll_tenant(self, tenant: str) -> Iterator[StoredPoint]:
        models = self._models
        match = models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant))
        yield from self._scroll(False, models.Filter(must=[match]))

    def _scroll(self, with_vectors: bool, where: Any) -> Iterator[StoredPoint]:
        offset: Any = None
        while True:
            with self._calling():
                records, offset = self._client.scroll(
                    self._collection,
                    scroll_filter=where,
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
        lexical = self._has_lexical()
        for start in range(0, len(ids), _WRITE_BATCH):
            stop = start + _WRITE_BATCH
            batch: Any
            if lexical:
                batch = [
                    models.PointStruct(
                        id=pid, vector=self._vectors(vector, payload), payload=payload
                    )
                    for pid, vector, payload in zip(
                        ids[start:stop], vectors[start:stop].tolist(), payloads[start:stop]
                    )
                ]
            else:
                batch = models.Batch(
                    ids=list(ids[start:stop]),
                    vectors=vectors[start:stop].tolist(),
                    payloads=list(payloads[start:stop]),
                )
            with self._calling():
                self._client.upsert(self._collection, batch, wait=True)

    def _vectors(self, vector: list[float], payload: dict[str, Any]) -> Any:
        """A point's vectors: the dense one, and BM25 when it is an utterance."""
        sparse = payload_sparse(payload)
        if sparse is None:
            return vector
        indices, values = sparse
        return {"": vector, SPARSE_NAME: self._models.SparseVector(indices=indices, values=values)}

    def _has_lexical(self) -> bool:
        if self._lexical is None:
            with self._calling():
                params = self._client.get_collection(self._collection).config.params
            self._lexical = SPARSE_NAME in (params.sparse_vectors or {})
        return self._lexical

    def delete(self, ids: Sequence[str]) -> None:
        """Delete these points; ids that are not stored are no error. (An id list would do on a
        server, but local mode before qdrant-client 1.13 raises ``KeyError`` on a missing id.)"""
        if not ids:
            return
        models = self._models
        selector = models.FilterSelector(
            filter=models.Filter(must=[models.HasIdCondition(has_id=list(ids))])
        )
        with self._calling():
            self._client.delete(self._collection, selector, wait=True)

    def set_payloads(self, ids: Sequence[str], payloads: Sequence[dict[str, Any]]) -> None:
        with self._calling():
            for point_id, payload in zip(ids, payloads):
                self._client.overwrite_payload(self._collection, payload, [point_id], wait=True)

    def read_payloads(
        self, ids: Sequence[str], keys: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        selector: Any = True
        if keys is not None:
            selector = self._models.PayloadSelectorInclude(include=list(keys))
        with self._calling():
            records = self._client.retrieve(
                self._collection, list(ids), with_payload=selector, with_vectors=False
            )
        return {str(r.id): dict(r.payload or {}) for r in records}

    def _write_conditionally(
        self, point: str, vector: np.ndarray, payload: dict[str, Any], key: str, expected: Any
    ) -> bool | None:
        """Qdrant's conditional update (qdrant-client 1.16+, server 1.16+): the point is
        replaced only while it matches ``expected`` (or inserted only while it does not
        exist), so of two replicas that started from one revision exactly one wins. Whether
        this write won is read back from the nonce in ``payload[key]`` (``"write"``, or among
        the ``"recent"`` nonces a later write carried forward). An older client has none:
        ``write_if`` then compares and writes, which two replicas can interleave."""
        if not _conditional_upsert(self._client):
            return None
        models = self._models
        options: dict[str, Any] = {}
        if expected is None:
            options["update_mode"] = models.UpdateMode.INSERT_ONLY
        else:
            options["update_filter"] = models.Filter(
                must=[
                    models.FieldCondition(key=f"{key}.{name}", match=models.MatchValue(value=value))
                    for name, value in expected.items()
                ]
            )
        record = models.PointStruct(id=point, vector=self._vectors(vector.tolist(), payload),
                                    payload=payload)
        with self._calling():
            self._client.upsert(self._collection, [record], wait=True, **options)
        # Read back: another writer may already have built on this write, so look for its
        # nonce among the head's recent writes, not only in its latest.
        found = (self.read_payloads([point], keys=(key,)).get(point) or {}).get(key)
        nonce = payload.get(key, {}).get("write")
        if not isinstance(found, dict):
            return False
        recent = found.get("recent")
        return found.get("write") == nonce or (isinstance(recent, list) and nonce in recent)

    def retrieve_vectors(self, ids: Sequence[str]) -> np.ndarray:
        found: dict[str, Any] = {}
        for start in range(0, len(ids), _SCROLL_PAGE):
            with self._calling():
                records = self._client.retrieve(
                    self._collection, list(ids[start : start + _SCROLL_PAGE]), with_vectors=True
                )
            found.update((str(r.id), _plain_vector(r.vector)) for r in records)
        return _stack(ids, found)

    def _filter(self, tenant: str) -> Any:
        """Only ``tenant``'s utterance points: the default tenant's carry no tenant key, and
        route set heads carry no route (neither may crowd a tenant's candidates out)."""
        models = self._models
        if not tenant:
            return models.Filter(
                must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="tenant"))],
                must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key="route"))],
            )
        match = models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant))
        return models.Filter(must=[match])

    def _requests(self, vectors: np.ndarray, limit: int, tenant: str) -> list[Any]:
        where = self._filter(tenant)
        return [
            self._models.QueryRequest(query=v.tolist(), limit=limit + 1, filter=where)
            for v in vectors
        ]

    def search(self, vectors: np.ndarray, limit: int, tenant: str = "") -> list[list[Hit]]:
        with self._calling():
            responses = self._client.query_batch_points(
                self._collection, self._requests(vectors, limit, tenant), timeout=self._timeout
            )
        return [[(str(p.id), float(p.score)) for p in r.points] for r in responses]

    async def asearch(self, vectors: np.ndarray, limit: int, tenant: str = "") -> list[list[Hit]]:
        if self._aclient is None:
            return await super().asearch(vectors, limit, tenant)
        try:
            with backend_errors(self.target):
                responses = await self._aclient.query_batch_points(
                    self._collection,
                    self._requests(vectors, limit, tenant),
                    timeout=self._timeout,
                )
        except ValueError as exc:  # local mode: "Collection ... not found"
            raise ConfigurationError(
                f"the async client cannot see collection {self._collection!r}: client= and "
                "aclient= must point at the same Qdrant storage"
            ) from exc
        return [[(str(p.id), float(p.score)) for p in r.points] for r in responses]

    def _lexical_requests(self, texts: Sequence[str], limit: int, tenant: str) -> list[Any]:
        models = self._models
        where = self._filter(tenant)
        out = []
        for text in texts:
            indices, values = sparse_query(text)
            query = models.SparseVector(indices=indices, values=values)
            out.append(
                models.QueryRequest(query=query, using=SPARSE_NAME, limit=limit, filter=where)
            )
        return out

    def lexical_search(
        self, texts: Sequence[str], limit: int, tenant: str = ""
    ) -> list[list[Hit]] | None:
        if not self._has_lexical():
            return None
        requests = self._lexical_requests(texts, limit, tenant)
        with self._calling():
            responses = self._client.query_batch_points(
                self._collection, requests, timeout=self._timeout
            )
        return [[(str(p.id), float(p.score)) for p in r.points] for r in responses]

    async def alexical_search(
        self, texts: Sequence[str], limit: int, tenant: str = ""
    ) -> list[list[Hit]] | None:
        if self._aclient is None or not self._has_lexical():
            return await super().alexical_search(texts, limit, tenant)
        requests = self._lexical_requests(texts, limit, tenant)
        with backend_errors(self.target):
            responses = await self._aclient.query_batch_points(
                self._collection, requests, timeout=self._timeout
            )
        return [[(str(p.id), float(p.score)) for p in r.points] for r in responses]

    def close(self) -> None:
        # The client was handed to us or made by the router, which closes what it made.
        pass
