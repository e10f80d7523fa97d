"""The store interface: one Qdrant collection as the route index and the collection see it.

``EdgeStore`` (``_edge.py``) keeps a collection in-process with Qdrant Edge (``qdrant-edge-py``):
a folder on disk with one writer and any number of reader processes, or a temporary folder for
``":memory:"``. ``ClientStore`` (``_client.py``) talks to a Qdrant server (or any ready
``QdrantClient``, ``":memory:"`` included) through qdrant-client. The route index and the route
collection only use the methods of :class:`Store`.

Every collection holds one metadata point (fixed id, payload key ``semrouter_meta``) recording
the encoder fingerprint, dimension and schema version; it carries a unit vector and is skipped
when results are read.
"""

from __future__ import annotations

import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .._exceptions import IndexMismatchError
from .._lexical import sparse_document

__all__ = [
    "META_ID",
    "META_KEY",
    "NAMESPACE",
    "Hit",
    "Store",
    "StoredPoint",
    "payload_sparse",
    "same_payload",
]

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

    def scroll_tenant(self, tenant: str) -> Iterator[StoredPoint]:
        """The points (payloads only) whose ``tenant`` payload is ``tenant``; stores that can
        filter on their side override this scan."""
        for point in self.scroll(with_vectors=False):
            if point[1].get("tenant") == tenant:
                yield point

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
    def search(self, vectors: np.ndarray, limit: int, tenant: str = "") -> list[list[Hit]]:
        """Nearest points for each query vector, best first (may include foreign points);
        with ``tenant``, only that tenant's points."""

    async def asearch(self, vectors: np.ndarray, limit: int, tenant: str = "") -> list[list[Hit]]:
        """Asynchronous :meth:`search`; stores with real async I/O override it."""
        import asyncio

        return await asyncio.to_thread(self.search, vectors, limit, tenant)

    def lexical_search(
        self, texts: Sequence[str], limit: int, tenant: str = ""
    ) -> list[list[Hit]] | None:
        """Each text's best ``limit`` points by BM25 on the collection's sparse vectors
        (``_lexical.py``; with ``tenant``, that tenant's points only), or ``None`` when this
        store cannot (no sparse vectors)."""
        return None

    async def alexical_search(
        self, texts: Sequence[str], limit: int, tenant: str = ""
    ) -> list[list[Hit]] | None:
        """Asynchronous :meth:`lexical_search`; stores with real async I/O override it."""
        import asyncio

        return await asyncio.to_thread(self.lexical_search, texts, limit, tenant)

    def prepare_search(self) -> None:  # noqa: B027 - optional hook
        """Build whatever makes :meth:`search` fast (an HNSW graph); may take a while."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Make the writes so far durable (called once at the end of each sync)."""

    @abstractmethod
    def retrieve_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The vectors of existing points, in the order of ``ids``."""

    def read_payloads(
        self, ids: Sequence[str], keys: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The payloads of those of ``ids`` that exist (stores override this scan); with
        ``keys``, a store may return those top-level keys only (a server reads less)."""
        wanted = set(ids)
        points = self.scroll(with_vectors=False)
        return {pid: payload for pid, payload, _ in points if pid in wanted}

    @property
    def write_lock(self) -> threading.RLock:
        """Held by a writer for a whole change: in-process writers of this store take turns."""
        lock: threading.RLock | None = self.__dict__.get("_write_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_write_lock", threading.RLock())
        return lock

    @property
    def exclusive(self) -> bool:
        """Whether no other process writes this collection (an embedded folder's writer):
        a writer may then delete every point no route set names (leftovers of a crash)."""
        return False

    def write_if(
        self,
        point: str,
        vector: np.ndarray,
        payload: dict[str, Any],
        *,
        key: str,
        expected: dict[str, Any] | None,
    ) -> bool:
        """Write one point if its payload's ``key`` object still holds the ``expected`` fields
        (``None``: only if the point does not exist); returns whether it was written.

        A store with a conditional write of its own does it in :meth:`_write_conditionally`
        (a server: Qdrant's conditional update); otherwise this compares and writes in two
        steps: atomic for stores that one process writes (callers hold :attr:`write_lock`).
        """
        native = self._write_conditionally(point, vector, payload, key, expected)
        if native is not None:
            return native
        current = self.read_payloads([point], keys=(key,)).get(point)
        if not _holds(current, key, expected):
            return False
        self.upsert([point], np.asarray([vector], dtype=np.float32), [payload])
        return True

    def _write_conditionally(
        self, point: str, vector: np.ndarray, payload: dict[str, Any], key: str, expected: Any
    ) -> bool | None:
        """The store's own conditional write (see :meth:`write_if`); ``None``: it has none."""
        return None

    def load_vectors(self, fingerprint: str, dimension: int) -> tuple[list[str], np.ndarray] | None:
        """Ids and vectors kept by :meth:`save_vectors`, if this store keeps such a cache."""
        return None

    def save_vectors(  # noqa: B027
        self, ids: Sequence[str], matrix: np.ndarray, fingerprint: str
    ) -> None:
        """Keep a copy of the exact-search matrix beside the collection (optional)."""

    # -- following another process's writes (readers of an embedded folder override these) --
    @property
    def read_only(self) -> bool:
        """Whether writes are refused (:class:`ReadOnlyRouterError`)."""
        return False

    def revision(self) -> int:
        """A number that changes whenever the stored points change, where the store can tell
        cheaply (embedded folders); ``0`` where it cannot."""
        return 0

    def changed(self) -> bool:
        """Whether another process has published changes this store does not serve yet."""
        return False

    def reload(self) -> bool:
        """Serve the latest published changes; ``True`` if anything was swapped in."""
        return False

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""


def _holds(payload: dict[str, Any] | None, key: str, expected: dict[str, Any] | None) -> bool:
    """Whether a point's payload (``None``: no point) is what a conditional write expects."""
    if expected is None:
        return payload is None or not isinstance(payload.get(key), dict)
    found = payload.get(key) if payload else None
    return isinstance(found, dict) and all(found.get(k) == v for k, v in expected.items())


def _meta_vector(dimension: int) -> list[float]:
    vector = [0.0] * dimension
    vector[0] = 1.0
    return vector

def _points(
    records: Sequence[Any], with_vectors: bool, *, include_meta: bool = False
) -> Iterator[StoredPoint]:
    """Scrolled records (of either client) as stored points, the metadata point left out."""
    for record in records:
        point_id = str(record.id)
        if include_meta or point_id != META_ID:
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


def payload_sparse(payload: dict[str, Any]) -> tuple[list[int], list[float]] | None:
    """The BM25 vector a point carries beside its dense one: an utterance's (``_lexical.py``);
    ``None`` for every other point (metadata, route set documents)."""
    utterance = payload.get("utterance")
    return sparse_document(utterance) if isinstance(utterance, str) else None


def _plain_vector(vector: Any) -> list[float] | None:
    if vector is None or isinstance(vector, list):
        return vector  # already a fresh list: no copy
    if isinstance(vector, dict):  # named vectors: take the default one
        vector = vector.get("") or next(iter(vector.values()), None)
    return list(vector) if vector is not None else None


def same_payload(stored: Any, expected: Any) -> bool:
    """Payload equality, with floats equal to within a few ulps: Qdrant Edge's JSON reader
    does not round-trip every double exactly (-0.47915218808433363 comes back as
    -0.4791521880843336), which is not bit rot."""
    if isinstance(expected, float) and isinstance(stored, (int, float)):
        return bool(np.isclose(stored, expected, rtol=1e-12, atol=0.0)) or stored == expected
    if isinstance(expected, dict):
        return (
            isinstance(stored, dict)
            and stored.keys() == expected.keys()
            and all(same_payload(stored[k], v) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(expected)
            and all(same_payload(a, b) for a, b in zip(stored, expected))
        )
    return bool(stored == expected)
