"""The route index: Qdrant holds the vectors; an immutable snapshot answers queries fast.

Opening the index diffs the declared routes against the collection by point id (a uuid5 of
route name and utterance): only new utterances are encoded, removed ones are deleted, changed
route metadata is rewritten, and nothing is encoded when nothing changed.

Queries go to an in-process exact search (one matrix product) while the collection is small
(``exact_limit`` points); above that, to Qdrant's HNSW index (the embedded engine, or the
server). Either way the result is the best ``candidates`` points, aggregated per route.
See docs/architecture.md for the measurements behind this split.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ._exceptions import IndexMismatchError
from ._routes import Route
from ._stores import NAMESPACE, Hit, Store
from .encoders import Encoder

__all__ = ["Aggregation", "RouteIndex", "RouteScores", "SyncReport", "point_id"]

SCHEMA_VERSION = 1
logger = logging.getLogger("semrouter")
Aggregation = Literal["mean", "max"]
SearchMode = Literal["auto", "exact", "qdrant"]


def point_id(route: str, utterance: str) -> str:
    """The stable id of one (route, utterance) point: ``uuid5`` of the length-prefixed pair (so
    no two pairs collide), computed without building ``UUID`` objects (a third of a reopen)."""
    name = f"{len(route)}:{route}{utterance}".encode()
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_NAMESPACE_BYTES = NAMESPACE.bytes


def _payload(route: Route, utterance: str) -> dict[str, Any]:
    return {"route": route.name, "utterance": utterance, "metadata": dict(route.metadata)}


@dataclass(frozen=True)
class SyncReport:
    """What one synchronisation did."""

    encoded: int = 0
    deleted: int = 0
    updated: int = 0
    kept: int = 0


@dataclass(frozen=True)
class RouteScores:
    """Aggregated scores of the candidate routes for one query, best first."""

    names: tuple[str, ...]
    scores: npt.NDArray[np.float32]
    utterances: tuple[str | None, ...]


@dataclass(frozen=True)
class _Snapshot:
    """What a query needs, swapped whole after each change (readers never see half a change)."""

    route_names: tuple[str, ...]
    route_sizes: npt.NDArray[np.int64]
    row_route: npt.NDArray[np.int64]
    utterances: tuple[str, ...]
    id_to_row: dict[str, int]
    vectors: npt.NDArray[np.float32] | None  # None: search in Qdrant


class RouteIndex:
    """Routes in one Qdrant collection, kept in step with the routes declared in code.

    Args:
        store: the collection.
        encoder: fills it; its fingerprint is recorded and checked.
        rebuild: drop a collection made by another encoder instead of refusing it.
        exact_limit: largest collection searched exactly in-process.
        search: ``"auto"`` (exact up to ``exact_limit``), ``"exact"`` or ``"qdrant"``.
    """

    def __init__(
        self,
        store: Store,
        encoder: Encoder,
        *,
        rebuild: bool = False,
        exact_limit: int = 20_000,
        search: SearchMode = "auto",
    ) -> None:
        self.store = store
        self.encoder = encoder
        self.exact_limit = exact_limit
        self.search_mode = search
        self._lock = threading.RLock()
        self._open(rebuild)
        self._snapshot = _Snapshot((), np.zeros(0, np.int64), np.zeros(0, np.int64), (), {}, None)
        self._known: dict[str, dict[str, Any]] | None = None  # payloads of our points, by id

    # -- opening and syncing ---------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "fingerprint": self.encoder.fingerprint,
            "dimension": self.encoder.dimension,
            "schema_version": SCHEMA_VERSION,
        }

    def _open(self, rebuild: bool) -> None:
        found = self.store.read_meta()
        if found == {} and self.store.creation_interrupted():
            found = None  # created, then interrupted before the metadata point was written
        wanted = self._meta()
        if found is not None and found != wanted:
            if not rebuild:
                raise IndexMismatchError(_mismatch_message(self.store.target, found, wanted))
            self.store.drop()
            found = None
        if found is None:
            self.store.create(wanted, self.encoder.dimension)

    def sync(self, routes: Sequence[Route]) -> SyncReport:
        """Make the collection hold exactly ``routes``; encode only what is new.

        The first sync reads every point's payload from Qdrant; later ones diff against what
        the index already knows, so ``add``/``remove`` cost only their own writes.
        """
        with self._lock:
            desired: dict[str, tuple[Route, str]] = {
                point_id(route.name, utt): (route, utt)
                for route in routes
                for utt in route.utterances
            }
            if self._known is None:
                self._known = {
                    pid: payload
                    for pid, payload, _ in self.store.scroll(with_vectors=False)
                    if _is_ours(pid, payload, desired)  # others' points are left alone
                }
            known = self._known
            payloads = {pid: _payload(route, utt) for pid, (route, utt) in desired.items()}
            new_ids = [pid for pid in desired if pid not in known]
            gone_ids = [pid for pid in known if pid not in desired]
            changed = [pid for pid in desired if pid in known and known[pid] != payloads[pid]]
            encoded = np.zeros((0, self.encoder.dimension), np.float32)
            if new_ids:
                encoded = self.encoder.encode([desired[pid][1] for pid in new_ids])
                self.store.upsert(new_ids, encoded, [payloads[pid] for pid in new_ids])
            if gone_ids:
                self.store.delete(gone_ids)
            if changed:
                self.store.set_payloads(changed, [payloads[pid] for pid in changed])
            if new_ids or gone_ids or changed:
                self.store.flush()
            for pid in gone_ids:
                del known[pid]
            for pid in (*new_ids, *changed):
                known[pid] = payloads[pid]
            matrix = None
            if self._mode_for(len(desired)) == "exact":
                matrix = self._matrix(list(desired), dict(zip(new_ids, encoded)))
                if new_ids or gone_ids or self._snapshot.vectors is None:
                    self.store.save_vectors(list(desired), matrix, self.encoder.fingerprint)
            self._install(routes, desired, matrix)
            logger.debug(
                "synced %d routes into %s: encoded %d, deleted %d, updated %d",
                len(routes),
                self.store.target,
                len(new_ids),
                len(gone_ids),
                len(changed),
            )
            return SyncReport(
                encoded=len(new_ids),
                deleted=len(gone_ids),
                updated=len(changed),
                kept=len(desired) - len(new_ids),
            )

    def _matrix(
        self, ids: list[str], fresh: dict[str, npt.NDArray[np.float32]]
    ) -> npt.NDArray[np.float32]:
        """The exact-search matrix for ``ids``: fresh vectors, then the current snapshot, then
        the store's vector cache, then Qdrant itself (a point's vector never changes: its id is
        a hash of its content and the collection is tied to one encoder)."""
        matrix = np.empty((len(ids), self.encoder.dimension), dtype=np.float32)
        missing: list[int] = []
        snapshot = self._snapshot
        for row, pid in enumerate(ids):
            if pid in fresh:
                matrix[row] = fresh[pid]
            elif snapshot.vectors is not None and pid in snapshot.id_to_row:
                matrix[row] = snapshot.vectors[snapshot.id_to_row[pid]]
            else:
                missing.append(row)
        if missing:
            cached = self.store.load_vectors(self.encoder.fingerprint, self.encoder.dimension)
            if cached is not None:
                cache_row = {pid: row for row, pid in enumerate(cached[0])}
                still = []
                for row in missing:
                    if ids[row] in cache_row:
                        matrix[row] = cached[1][cache_row[ids[row]]]
                    else:
                        still.append(row)
                missing = still
        if missing:
            vectors = self.store.retrieve_vectors([ids[row] for row in missing])
            matrix[missing] = vectors
        return matrix

    def _mode_for(self, count: int) -> Literal["exact", "qdrant"]:
        if self.search_mode == "auto":
            return "exact" if count <= self.exact_limit else "qdrant"
        return self.search_mode

    def _install(
        self,
        routes: Sequence[Route],
        desired: dict[str, tuple[Route, str]],
        matrix: npt.NDArray[np.float32] | None,
    ) -> None:
        names = tuple(route.name for route in routes)
        position = {name: i for i, name in enumerate(names)}
        ids = list(desired)
        row_route = np.fromiter((position[desired[pid][0].name] for pid in ids), np.int64, len(ids))
        if matrix is None:
            self.store.prepare_search()
        self._snapshot = _Snapshot(
            route_names=names,
            route_sizes=np.bincount(row_route, minlength=len(names)).astype(np.int64),
            row_route=row_route,
            utterances=tuple(desired[pid][1] for pid in ids),
            id_to_row={pid: row for row, pid in enumerate(ids)},
            vectors=matrix,
        )

    # -- querying ----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of route utterances indexed."""
        return len(self._snapshot.utterances)

    def query(
        self,
        vectors: npt.NDArray[np.float32],
        *,
        candidates: int,
        top_k: int,
        aggregation: Aggregation,
    ) -> list[RouteScores]:
        """Per-route scores for each query vector."""
        snapshot = self._snapshot
        if snapshot.vectors is not None:
            rows, scores = _exact_search(snapshot.vectors, vectors, candidates)
            return [
                _aggregate(
                    snapshot,
                    r,
                    s,
                    top_k,
                    aggregation,
                    exhaustive=len(r) == snapshot.vectors.shape[0],
                )
                for r, s in zip(rows, scores)
            ]
        hits = self.store.search(vectors, candidates)
        return self._from_hits(snapshot, hits, top_k, aggregation)

    async def aquery(
        self,
        vectors: npt.NDArray[np.float32],
        *,
        candidates: int,
        top_k: int,
        aggregation: Aggregation,
    ) -> list[RouteScores]:
        """Asynchronous :meth:`query`: in-process search is sub-millisecond; Qdrant is awaited."""
        snapshot = self._snapshot
        if snapshot.vectors is not None:
            return self.query(vectors, candidates=candidates, top_k=top_k, aggregation=aggregation)
        hits = await self.store.asearch(vectors, candidates)
        return self._from_hits(snapshot, hits, top_k, aggregation)

    def _from_hits(
        self, snapshot: _Snapshot, hits: list[list[Hit]], top_k: int, aggregation: Aggregation
    ) -> list[RouteScores]:
        out = []
        for result in hits:
            pairs = [
                (snapshot.id_to_row[pid], score)
                for pid, score in result
                if pid in snapshot.id_to_row
            ]
            rows = np.fromiter((p[0] for p in pairs), np.int64, len(pairs))
            scores = np.fromiter((p[1] for p in pairs), np.float32, len(pairs))
            out.append(_aggregate(snapshot, rows, scores, top_k, aggregation, exhaustive=False))
        return out

    def utterance_vectors(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Every stored utterance's vector and its route's position, in index order."""
        snapshot = self._snapshot
        if snapshot.vectors is not None:
            return snapshot.vectors, snapshot.row_route
        ids = sorted(snapshot.id_to_row, key=snapshot.id_to_row.__getitem__)
        return self.store.retrieve_vectors(ids), snapshot.row_route

    @property
    def utterances(self) -> tuple[str, ...]:
        """Every stored utterance, in index order."""
        return self._snapshot.utterances

    def close(self) -> None:
        """Close the store."""
        self.store.close()


def _is_ours(pid: str, payload: dict[str, Any], desired: dict[str, tuple[Route, str]]) -> bool:
    """Whether a stored point is one semrouter wrote: its id is the hash of its payload."""
    route, utterance = payload.get("route"), payload.get("utterance")
    if not isinstance(route, str) or not isinstance(utterance, str):
        return False
    if pid in desired:  # the declared id of this very pair: no need to hash again
        declared_route, declared_utterance = desired[pid]
        if (declared_route.name, declared_utterance) == (route, utterance):
            return True
    return pid == point_id(route, utterance)


# A query or a few: one BLAS thread. Handing a 10k x 384 product to OpenBLAS's second thread
# costs more than it saves, and its spinning threads then slow the ONNX encoder that runs
# next: route() fell from 11.5 ms to 4.7 ms a query at 10k utterances (core_perf.txt).
_SMALL_BATCH = 16
_blas: Any = None


def _single_blas_thread() -> Any:
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def _exact_search(
    matrix: npt.NDArray[np.float32], queries: npt.NDArray[np.float32], limit: int
) -> tuple[list[npt.NDArray[np.int64]], list[npt.NDArray[np.float32]]]:
    count = matrix.shape[0]
    if count == 0:
        empty = [np.zeros(0, np.int64)] * len(queries)
        return empty, [np.zeros(0, np.float32)] * len(queries)
    if len(queries) <= _SMALL_BATCH:
        with _single_blas_thread():
            sims = queries @ matrix.T
    else:
        sims = queries @ matrix.T
    if count > limit:
        top = np.argpartition(-sims, limit - 1, axis=1)[:, :limit]
    else:
        top = np.broadcast_to(np.arange(count), (len(queries), count))
    top_scores = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    rows = np.take_along_axis(top, order, axis=1)
    scores = np.take_along_axis(top_scores, order, axis=1)
    return list(rows), list(scores)


def _aggregate(
    snapshot: _Snapshot,
    rows: npt.NDArray[np.int64],
    scores: npt.NDArray[np.float32],
    top_k: int,
    aggregation: Aggregation,
    *,
    exhaustive: bool,
) -> RouteScores:
    """Group hits (best first) by route and score each route.

    ``max``: the route's best hit. ``mean``: the mean of its best ``top_k`` hits; when fewer of
    its hits made the candidate list, the missing ones are counted at the lowest candidate score
    (an upper bound of their true value), unless the search was exhaustive.
    """
    if len(rows) == 0:
        return RouteScores((), np.zeros(0, np.float32), ())
    routes = snapshot.row_route[rows]
    order = np.argsort(routes, kind="stable")  # stable: each route's hits stay best first
    by_route, by_score, by_row = routes[order], scores[order], rows[order]
    unique, first, counts = np.unique(by_route, return_index=True, return_counts=True)
    if aggregation == "max":
        agg = by_score[first]
    else:
        rank = np.arange(len(by_route)) - np.repeat(first, counts)
        keep = rank < top_k
        sums = np.bincount(
            by_route[keep], weights=by_score[keep], minlength=len(snapshot.route_names)
        )
        taken = np.minimum(counts, top_k)
        needed = np.minimum(snapshot.route_sizes[unique], top_k)
        floor = 0.0 if exhaustive else float(scores[-1])
        missing = np.maximum(needed - taken, 0)
        agg = (sums[unique] + floor * missing) / np.maximum(needed, 1)
    best = np.argsort(-agg, kind="stable")
    return RouteScores(
        names=tuple(snapshot.route_names[unique[i]] for i in best),
        scores=np.asarray(agg[best], dtype=np.float32),
        utterances=tuple(snapshot.utterances[by_row[first[i]]] for i in best),
    )


def _mismatch_message(target: str, found: dict[str, Any], wanted: dict[str, Any]) -> str:
    if not found:
        return (
            f"the Qdrant collection at {target} was not made by semrouter (no metadata point); "
            "use another collection name, or pass rebuild=True to replace it"
        )
    return (
        f"the Qdrant collection at {target} was built with {found.get('fingerprint')!r} "
        f"(schema {found.get('schema_version')}), but this router uses {wanted['fingerprint']!r} "
        f"(schema {wanted['schema_version']}); pass rebuild=True to re-encode it, or use another "
        "collection name"
    )
