"""A collection in Qdrant's embedded engine (Qdrant Edge): one writer, any number of readers.

Qdrant Edge lets one process at a time open a folder (it locks its write-ahead log) and has no
read-only mode. So a folder has one *writer*, which holds semrouter's lock file and Edge's shard,
and *readers*, which never touch Edge: after every flush the writer publishes an atomic snapshot
of every point (``semrouter-snapshot.bin``, see ``_edge_files.py``), and a reader serves queries
from it with an exact search in numpy. ``revision()`` tells a reader in one ``stat`` whether the
writer has published since; ``reload()`` swaps the new snapshot in. ``mode="auto"`` writes when
the folder is free and reads otherwise; ``promote()`` turns a reader into the writer once the
writer is gone.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._exceptions import (
    ConfigurationError,
    ReadOnlyRouterError,
    RouterLockedError,
    SemRouterError,
    StoreDamagedError,
)
from .._lexical import SPARSE_NAME, sparse_query
from . import _edge_files as files
from . import _edge_mirror as mirror
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
from ._edge_lock import TempFolder, WriterLock, read_holder, writer_alive
from ._edge_reader import SnapshotReader

__all__ = ["EdgeStore", "StoreMode"]

logger = logging.getLogger("semrouter")
StoreMode = Literal["write", "read", "auto"]
_SAMPLE = 16  # points compared between Edge and the snapshot when the writer reopens


#: This process's writer of each folder (its real path), shared by its routers.
_WRITERS: dict[str, weakref.ref[EdgeStore]] = {}
_REGISTRY_LOCK = threading.RLock()
#: Every open writer of this process, told when the process forks.
_LIVE: weakref.WeakSet[EdgeStore] = weakref.WeakSet()
#: Shards inherited from a parent process: kept alive so the child never closes them.
_ABANDONED: list[Any] = []


def _after_fork_in_child() -> None:
    global _REGISTRY_LOCK
    _REGISTRY_LOCK = threading.RLock()  # another thread may have held it at the fork
    parent = os.getppid()
    for store in list(_LIVE):
        if store.mode == "write" and store._forked_from is None:
            store.after_fork(parent)
    _LIVE.clear()
    _WRITERS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class EdgeStore(Store):
    """A collection in Qdrant's embedded engine.

    Args:
        path: the parent folder; the collection lives in ``path/collection``. ``None`` keeps it
            in a temporary folder removed on :meth:`close`.
        collection: the collection (sub-folder) name.
        mode: ``"write"`` takes the folder's writer lock (:class:`RouterLockedError`, naming
            the holder's pid, if another router holds it); ``"read"`` never locks and serves the
            writer's published snapshot (writes raise :class:`ReadOnlyRouterError`);
            ``"auto"`` writes if the folder is free, else reads.
        rebuild: when the folder is damaged and semrouter's, recreate it (restoring the points
            from an intact snapshot) instead of raising :class:`StoreDamagedError`.
        wait: seconds a reader waits for a live writer's first snapshot (a folder being created).
        lock_timeout: seconds a writer waits for the lock before raising.

    Example:
        >>> store = EdgeStore(None, "routes")  # a temporary collection
        >>> store.mode, store.revision()
        ('write', 0)
        >>> store.close()
    """

    def __init__(
        self,
        path: str | Path | None,
        collection: str,
        *,
        mode: StoreMode = "write",
        rebuild: bool = False,
        wait: float = 10.0,
        lock_timeout: float = 0.0,
    ) -> None:
        import qdrant_edge

        if mode not in ("write", "read", "auto"):
            raise ConfigurationError(f"mode must be 'write', 'read' or 'auto', got {mode!r}")
        self._edge = qdrant_edge
        self._temp = TempFolder() if path is None else None
        self._cleanup = weakref.finalize(self, self._temp.remove) if self._temp else None
        root = Path(path) if path is not None else self._temp.path  # type: ignore[union-attr]
        if root.exists() and not root.is_dir():
            raise ConfigurationError(f"path {root} exists and is not a folder")
        self._dir = root / collection
        self.target = str(self._dir) if path is not None else ":memory:"
        self._shard: Any = None
        self._indexed = False
        self._lexical: bool | None = None  # whether the shard has sparse vectors
        self._lock = WriterLock(self._dir / files.LOCK_FILE)
        self._mirror: mirror.Mirror | None = None
        self._reader: SnapshotReader | None = None
        self._revision = 0
        self._dirty = False
        self._dropped: list[str] = []
        self._owned = True  # whether error messages may suggest rebuild=True
        self._forked_from: int | None = None  # a child's copy of its parent's writer
        self._users = 1  # routers of this process sharing this writer (see shared())
        self.mode: Literal["write", "read"] = "read" if mode == "read" else "write"
        try:
            if self._temp is not None:
                self.mode = "write"
            elif mode == "read":
                self._reader = SnapshotReader(self._dir, wait)
            else:
                try:
                    self._lock.acquire(lock_timeout)
                except RouterLockedError:
                    if mode == "write":
                        raise
                    self.mode = "read"
                    self._reader = SnapshotReader(self._dir, wait)
                else:
                    self._open_writer(rebuild)
        except BaseException:
            self.close()
            raise
        if self.mode == "write":
            _LIVE.add(self)

    @classmethod
    def shared(
        cls, path: str | Path | None, collection: str, *, mode: StoreMode = "auto", **options: Any
    ) -> EdgeStore:
        """Open a collection, sharing this process's writer of the folder if it has one.

        Two routers of one process on one folder (a notebook cell run twice, an app and its
        admin view) then write through one store, taking turns on :attr:`write_lock`, instead
        of the second becoming a reader of its own process. Each :meth:`close` releases one
        user; the last closes the store.
        """
        if path is None or mode == "read":
            return cls(path, collection, mode=mode, **options)
        key = os.path.realpath(Path(path) / collection)
        with _REGISTRY_LOCK:
            found = _WRITERS.get(key)
            store = found() if found is not None else None
            if store is not None and store.mode == "write" and store._users > 0:
                store._users += 1
                return store
            store = cls(path, collection, mode=mode, **options)
            if store.mode == "write":
                _WRITERS[key] = weakref.ref(store)
            return store

    # -- opening ------------------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        """Whether this store only reads (a reader of another process's folder, or a forked
        child's copy of its parent's writer)."""
        return self.mode == "read" or self._forked_from is not None

    @property
    def exclusive(self) -> bool:
        return self.mode == "write" and self._forked_from is None

    def after_fork(self, parent: int) -> None:
        """In a child process forked from this writer's process (gunicorn ``--preload``,
        multiprocessing's ``fork``): leave the writer role to the parent. The inherited lock
        descriptor is closed (the lock stays the parent's: an open-file-description lock ends
        with its last descriptor), the parent's Edge shard is never touched again, and the
        parent's temporary folder is not removed by the child. A folder's child becomes a
        reader of it; an in-memory collection's child keeps serving and refuses writes."""
        self._forked_from = parent
        self._users = 0
        if self._cleanup is not None:
            self._cleanup.detach()
            self._cleanup = None
        self._lock.forget()
        if not self.persistent:
            return
        if self._shard is not None:
            _ABANDONED.append(self._shard)  # the parent's: closing it here would flush its WAL
            self._shard = None
        self._mirror = None
        self.mode = "read"
        try:
            self._reader = SnapshotReader(self._dir, 0.0)
        except SemRouterError as exc:
            logger.warning("a forked child cannot read %s yet: %s", self._dir, exc)
            self._reader = SnapshotReader.empty(self._dir)
        self._forked_from = None  # a plain reader from now on

    @property
    def persistent(self) -> bool:
        return self._temp is None

    def _open_writer(self, rebuild: bool) -> None:
        if files.has_shard(self._dir):
            files.ensure_space(self._dir, files.OPEN_RESERVE, "open")
            try:
                self._load()
            except StoreDamagedError:
                if not rebuild or not files.owned(self._dir):
                    raise
                self._recover()
        elif files.read_marker(self._dir) == "ready":
            problem = StoreDamagedError(
                f"the embedded folder {self._dir} lost its Qdrant Edge files (edge_config.json, "
                "segments/); " + files.rebuild_hint(True)
            )
            if not rebuild:
                raise problem
            self._recover()
        else:
            files.wipe(self._dir)  # leftovers of a creation that died before Edge's files

    def _load(self) -> None:
        owned = self._owned = files.owned(self._dir)
        self._dropped = files.validate_shard(self._dir)
        with files.edge_errors(self._dir, "open the collection", owned=owned):
            self._shard = self._edge.EdgeShard.load(str(self._dir))
        with files.edge_errors(self._dir, "read the collection", owned=owned):
            if files.read_marker(self._dir) == "ready" and not self._retrieve([META_ID], False):
                raise self._lost_meta()
            self._init_mirror()

    def _lost_meta(self) -> StoreDamagedError:
        dropped = ""
        if self._dropped:
            dropped = f" (segments without version.info, dropped by Qdrant: {self._dropped})"
        return StoreDamagedError(
            f"the embedded folder {self._dir} lost its metadata point: files are missing or "
            f"damaged{dropped}; " + files.rebuild_hint(True)
        )

    def _init_mirror(self) -> None:
        """The writer's copy of every point, from the snapshot when it is known to be current
        (no dirty mark) and agrees with Edge, else read back from Edge once."""
        snapshot: files.Snapshot | None = None
        clean = not (self._dir / files.DIRTY_FILE).exists()
        try:
            snapshot = files.read_snapshot(self._dir)
        except files.SnapshotDamaged as exc:
            logger.warning(
                "ignoring the damaged snapshot of %s (%s); rebuilding it", self._dir, exc
            )
        if snapshot is not None:
            self._revision = snapshot.revision
        if snapshot is not None and clean:
            mirror.check_against(self._shard, self._edge, self._dir, snapshot)
            self._mirror = mirror.from_snapshot(snapshot)
            return
        self._mirror = {}
        for pid, payload, vector in self._scroll_all(with_vectors=True, include_meta=True):
            self._mirror[pid] = (payload, np.asarray(vector, dtype=np.float32))
        mirror.check_norms(self._mirror, self._dir)
        if self._mirror:
            self._dirty = True
            self._publish()

    def _recover(self) -> None:
        """Recreate a damaged folder semrouter owns; restore its points from an intact snapshot."""
        self._close_shard()
        try:
            snapshot = files.read_snapshot(self._dir)
        except files.SnapshotDamaged:
            snapshot = None
        logger.warning(
            "rebuilding the damaged embedded folder %s (%s)",
            self._dir,
            f"restoring {len(snapshot.ids)} points from its snapshot" if snapshot else "empty",
        )
        files.wipe(self._dir)
        self._mirror = {}
        self._dropped = []
        if snapshot is None or not snapshot.ids:
            return
        self._revision = snapshot.revision
        self._new_shard(snapshot.vectors.shape[1])
        rows = mirror.restorable_rows(snapshot, self._dir)
        ids = [snapshot.ids[row] for row in rows]
        self.upsert(ids, snapshot.vectors[rows], [snapshot.payloads[row] for row in rows])
        self.flush()
        files.write_marker(self._dir, "ready")

    # -- one writer, many readers ----------------------------------------------------------------
    def revision(self) -> int:
        """The latest published revision: the writer's own; for a reader, what its writer has
        published (one ``stat``; a small read only when the file changed)."""
        if self._reader is not None:
            return self._reader.published_revision()
        return self._revision

    @property
    def loaded_revision(self) -> int:
        """The revision this store serves."""
        return self._reader.loaded_revision if self._reader is not None else self._revision

    def changed(self) -> bool:
        """Whether the writer has published since this reader loaded (one ``stat``, ~µs)."""
        return self._reader is not None and self._reader.changed()

    def reload(self) -> bool:
        """Serve the writer's latest snapshot; ``True`` if it changed. A writer has nothing to
        reload. A damaged new snapshot is skipped with a log line (the old one stays)."""
        return self._reader is not None and self._reader.reload()

    def writer_pid(self) -> int | None:
        """The pid recorded by the folder's writer, if one holds it."""
        if self.persistent and writer_alive(self._dir):
            holder = read_holder(self._dir / files.LOCK_FILE)
            pid = holder.get("pid") if holder else None
            return pid if isinstance(pid, int) else None
        return None

    def promote(self, *, rebuild: bool = False) -> None:
        """Become the folder's writer; :class:`RouterLockedError` while another writer holds it
        (this store then stays a working reader)."""
        if self._reader is None:
            return
        self._lock.acquire(0.0)
        reader, self._reader = self._reader, None
        try:
            self.mode = "write"
            self._open_writer(rebuild)
            _LIVE.add(self)
        except BaseException:
            self._close_shard()
            self._lock.release()
            self._reader, self.mode = reader, "read"
            raise

    def _check_write(self, action: str) -> None:
        if self._reader is not None or self._forked_from is not None:
            raise self._refuse(action)

    def _refuse(self, action: str) -> ReadOnlyRouterError:
        if self._forked_from is not None:
            return ReadOnlyRouterError(
                f"cannot {action}: this process was forked from process {self._forked_from}, "
                "which writes this router's in-memory collection; build the router after the "
                "fork (or give it a path= folder, whose writer the child then follows)"
            )
        pid = self.writer_pid()
        writer = f"its writer (process {pid})" if pid is not None else "a writer (none is open)"
        return ReadOnlyRouterError(
            f"cannot {action}: this router only reads {self._dir}; changes go through "
            f"{writer}, or call promote() on this store once no writer holds the folder"
        )

    # -- Store interface ----------------------------------------------------------------------
    def read_meta(self) -> dict[str, Any] | None:
        if self._reader is not None:
            return self._reader.read_meta()
        if self._shard is None:
            return None
        with self._errors("read the collection"):
            records = self._retrieve([META_ID], False)
        if not records:
            if self.persistent and files.read_marker(self._dir) == "ready":
                raise self._lost_meta()
            return {}
        meta = (records[0].payload or {}).get(META_KEY)
        return dict(meta) if isinstance(meta, dict) else {}

    def create(self, meta: dict[str, Any], dimension: int) -> None:
        self._check_write("create the collection")
        if self._shard is None:
            self._new_shard(dimension)
        point = self._edge.Point(
            id=META_ID, vector=_meta_vector(dimension), payload={META_KEY: meta}
        )
        self._before_write(dimension * 4)
        with self._errors("write the metadata point"):
            self._shard.update(self._edge.UpdateOperation.upsert_points([point]))
        if self._mirror is not None:
            self._mirror[META_ID] = (
                {META_KEY: meta},
                np.asarray(_meta_vector(dimension), np.float32),
            )
        self.flush()
        if self.persistent:
            files.write_marker(self._dir, "ready")

    def _new_shard(self, dimension: int) -> None:
        edge = self._edge
        self._dir.mkdir(parents=True, exist_ok=True)
        reserve = files.OPEN_RESERVE if self.persistent else files.TEMP_RESERVE
        files.ensure_space(self._dir, reserve, "create a collection in")
        if self.persistent:
            files.write_marker(self._dir, "creating")
            self._mirror = {}
        config = edge.EdgeConfig(
            vectors=edge.EdgeVectorParams(size=dimension, distance=edge.Distance.Cosine),
            # BM25 per utterance for hybrid routing; the shard applies the IDF
            sparse_vectors={SPARSE_NAME: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
            # a temporary collection needs no write-ahead log: nothing outlives the process
            wal_enabled=self.persistent,
        )
        with self._errors("create the collection"):
            self._shard = edge.EdgeShard.create(str(self._dir), config)
            self._lexical = True
            for key in ("route", "tenant"):  # "tenant" filters a tenant's searches
                self._shard.update(
                    edge.UpdateOperation.create_field_index(key, edge.PayloadSchemaType.Keyword)
                )

    def creation_interrupted(self) -> bool:
        if self._reader is not None or self._shard is None:
            return False
        if self.persistent and files.read_marker(self._dir) is not None:
            return files.read_marker(self._dir) == "creating"
        # A folder without marker (older semrouter): empty means creation died half-way.
        with self._errors("count the points"):
            return int(self._shard.count(self._edge.CountRequest(exact=True))) == 0

    def drop(self) -> None:
        self._check_write("drop the collection")
        self._close_shard()
        if self.persistent:
            files.wipe(self._dir)
            self._mirror = None
        self._dirty = False
        self._indexed = False

    def scroll(self, *, with_vectors: bool) -> Iterator[StoredPoint]:
        if self._reader is not None:
            yield from self._reader.scroll(with_vectors=with_vectors)
            return
        yield from self._scroll_all(with_vectors=with_vectors)

    def _scroll_all(
        self, *, with_vectors: bool, include_meta: bool = False
    ) -> Iterator[StoredPoint]:
        if self._shard is None:
            return
        offset: Any = None
        while True:
            request = self._edge.ScrollRequest(
                offset=offset, limit=_SCROLL_PAGE, with_payload=True, with_vector=with_vectors
            )
            with self._errors("read the collection"):
                records, offset = self._shard.scroll(request)
            yield from _points(records, with_vectors, include_meta=include_meta)
            if offset is None:
                return

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]
    ) -> None:
        self._check_write("add points")
        mirror.check_payloads(ids, payloads)
        edge = self._edge
        for start in range(0, len(ids), _WRITE_BATCH):
            stop = start + _WRITE_BATCH
            self._before_write(int(vectors[start:stop].nbytes) + 1024 * len(ids[start:stop]))
            points = [
                edge.Point(id=point_id, vector=self._vectors(vector, payload), payload=payload)
                for point_id, vector, payload in zip(
                    ids[start:stop], vectors[start:stop], payloads[start:stop]
                )
            ]
            with self._errors("write points"):
                self._shard.update(edge.UpdateOperation.upsert_points(points))
            if self._mirror is not None:
                for point_id, vector, payload in zip(
                    ids[start:stop], vectors[start:stop], payloads[start:stop]
                ):
                    self._mirror[point_id] = (payload, np.array(vector, dtype=np.float32))
        self._indexed = False

    def _vectors(self, vector: np.ndarray, payload: dict[str, Any]) -> Any:
        """A point's vectors: the dense one, and BM25 when it is an utterance and the shard
        has sparse vectors (shards made before hybrid routing have none)."""
        sparse = payload_sparse(payload) if self._has_lexical() else None
        if sparse is None:
            return vector.tolist()
        return {"": vector.tolist(), SPARSE_NAME: self._edge.SparseVector(*sparse)}

    def _has_lexical(self) -> bool:
        """Whether the shard has the sparse vector (asked once: a query on it fails if not)."""
        if self._lexical is None:
            edge = self._edge
            probe = edge.QueryRequest(
                limit=1, query=edge.Query.Nearest(edge.SparseVector([0], [1.0]), using=SPARSE_NAME)
            )
            try:
                self._shard.query(probe)
                self._lexical = True
            except Exception:
                self._lexical = False
        return self._lexical

    def delete(self, ids: Sequence[str]) -> None:
        self._check_write("delete points")
        for start in range(0, len(ids), _WRITE_BATCH):
            chunk: list[Any] = list(ids[start : start + _WRITE_BATCH])
            self._before_write(64 * len(chunk))
            with self._errors("delete points"):
                self._shard.update(self._edge.UpdateOperation.delete_points(chunk))
            if self._mirror is not None:
                for point_id in chunk:
                    self._mirror.pop(point_id, None)

    def set_payloads(self, ids: Sequence[str], payloads: Sequence[dict[str, Any]]) -> None:
        self._check_write("change payloads")
        mirror.check_payloads(ids, payloads)
        edge = self._edge
        self._before_write(1024 * len(ids))
        for point_id, payload in zip(ids, payloads):
            with self._errors("write payloads"):
                self._shard.update(edge.UpdateOperation.overwrite_payload([point_id], payload))
            if self._mirror is not None and point_id in self._mirror:
                self._mirror[point_id] = (payload, self._mirror[point_id][1])

    def _before_write(self, nbytes: int) -> None:
        """Refuse a write the disk cannot take (Edge would die of SIGBUS); mark the snapshot
        stale before Edge changes, so a crash before the next publish is noticed."""
        reserve = files.WAL_SEGMENT if self.persistent else files.TEMP_RESERVE
        files.ensure_space(self._dir, reserve + 4 * nbytes, "write to")
        if self.persistent and not self._dirty:
            files.mark_dirty(self._dir)
            self._dirty = True

    def flush(self) -> None:
        if self._reader is not None or self._shard is None:
            return
        # A temporary (":memory:") collection dies with the process: fsync buys nothing there.
        if self.persistent:
            with self._errors("flush"):
                self._shard.flush()
            if self._dirty:
                self._publish()

    def _publish(self) -> None:
        """Write the snapshot readers serve (and the writer reopens from), then clear the mark."""
        assert self._mirror is not None
        snapshot = mirror.to_snapshot(self._mirror, self._revision + 1)
        files.write_snapshot(self._dir, snapshot)
        self._revision = snapshot.revision
        (self._dir / files.DIRTY_FILE).unlink(missing_ok=True)
        (self._dir / files.LEGACY_CACHE).unlink(missing_ok=True)  # superseded by the snapshot
        self._dirty = False

    def retrieve_vectors(self, ids: Sequence[str]) -> np.ndarray:
        found: dict[str, Any] = {}
        if self._reader is not None:
            found = self._reader.vectors(ids)
        elif self._mirror is not None:
            found = {pid: self._mirror[pid][1] for pid in ids if pid in self._mirror}
        elif self._shard is not None:
            for start in range(0, len(ids), _SCROLL_PAGE):
                chunk: list[Any] = list(ids[start : start + _SCROLL_PAGE])
                with self._errors("read vectors"):
                    records = self._retrieve(chunk, True)
                found.update((str(r.id), _plain_vector(r.vector)) for r in records)
        return _stack(ids, found)

    def read_payloads(
        self, ids: Sequence[str], keys: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        if self._reader is not None:
            return self._reader.payloads(ids)
        if self._mirror is not None:
            return {pid: dict(self._mirror[pid][0]) for pid in ids if pid in self._mirror}
        if self._shard is None:
            return {}
        with self._errors("read the collection"):
            records = self._retrieve(list(ids), False)
        return {str(r.id): dict(r.payload or {}) for r in records}

    def _retrieve(self, ids: list[Any], with_vector: bool) -> list[Any]:
        return list(self._shard.retrieve(ids, with_payload=True, with_vector=with_vector))

    def load_vectors(self, fingerprint: str, dimension: int) -> tuple[list[str], np.ndarray] | None:
        """Every point's vector from the snapshot (reader) or the writer's copy of it."""
        if self._reader is not None:
            return self._reader.load_vectors(fingerprint)
        return mirror.vectors_for(self._mirror, fingerprint, dimension)

    def prepare_search(self) -> None:
        if self.mode == "write" and not self._indexed and self._shard is not None:
            with self._errors("build the search index"):
                self._shard.optimize()
            self._indexed = True

    def search(self, vectors: np.ndarray, limit: int, tenant: str = "") -> list[list[Hit]]:
        if self._reader is not None:
            return self._reader.search(vectors, limit, tenant)
        edge = self._edge
        where = self._filter(tenant)
        requests = [
            edge.QueryRequest(
                query=edge.Query.Nearest(vector.tolist()), limit=limit + 1, filter=where
            )
            for vector in vectors
        ]
        with self._errors("search"):
            results = self._shard.query_batch(edge.QueryBatchRequest(requests))
        return [[(str(p.id), float(p.score)) for p in result] for result in results]

    def lexical_search(
        self, texts: Sequence[str], limit: int, tenant: str = ""
    ) -> list[list[Hit]] | None:
        if self._reader is not None or self._shard is None or not self._has_lexical():
            return None  # a reader serves a snapshot file: the router scores in-process
        edge = self._edge
        where = self._filter(tenant)
        # a tenant's IDF counts its own utterances, as the in-process index does
        params = edge.SearchParams(idf=edge.IdfParams(corpus=where)) if where else None
        requests = []
        for text in texts:
            indices, values = sparse_query(text)
            query = edge.Query.Nearest(edge.SparseVector(indices, values), using=SPARSE_NAME)
            requests.append(
                edge.QueryRequest(query=query, limit=limit, filter=where, params=params)
            )
        with self._errors("search"):
            results = self._shard.query_batch(edge.QueryBatchRequest(requests))
        return [[(str(p.id), float(p.score)) for p in result] for result in results]

    def _filter(self, tenant: str) -> Any:
        """Only ``tenant``'s utterance points (see ``ClientStore._filter``)."""
        edge = self._edge
        if not tenant:
            return edge.Filter(
                must=[edge.IsEmptyCondition("tenant")], must_not=[edge.IsEmptyCondition("route")]
            )
        return edge.Filter(must=[edge.FieldCondition("tenant", match=edge.MatchValue(tenant))])

    def close(self) -> None:
        with _REGISTRY_LOCK:
            self._users -= 1
            if self._users > 0:
                return  # another router of this process still writes through it
        self._close_shard()
        self._lock.release()
        self._reader = None
        if self._cleanup is not None:
            self._cleanup()

    def _close_shard(self) -> None:
        self._lexical = None
        if self._shard is not None and self._forked_from is None:
            shard, self._shard = self._shard, None
            with self._errors("close the collection"):
                shard.close()

    def _errors(self, action: str) -> Any:
        return files.edge_errors(self._dir, action, owned=self._owned)

    def __repr__(self) -> str:
        return f"EdgeStore({self.target!r}, mode={self.mode!r}, revision={self._revision})"
