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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ._exceptions import IndexMismatchError
from ._options import RouterOptions
from ._routes import Route
from ._routeset import Snapshot
from ._search import Candidates, exact_search, make_pruning
from ._stores import NAMESPACE, Hit, Store, same_payload
from .encoders import Encoder

__all__ = ["Abandoned", "RouteIndex", "SyncReport", "point_id"]

SCHEMA_VERSION = 1
logger = logging.getLogger("semrouter")


def point_id(route: str, utterance: str, tenant: str = "") -> str:
    """The stable id of one (route, utterance) point: ``uuid5`` of the length-prefixed pair (so
    no two pairs collide), computed without building ``UUID`` objects (a third of a reopen).
    A tenant's ids are prefixed with ``t<len>:<tenant>``, which no untenanted name starts with."""
    prefix = f"t{len(tenant)}:{tenant}" if tenant else ""
    name = f"{prefix}{len(route)}:{route}{utterance}".encode()
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_NAMESPACE_BYTES = NAMESPACE.bytes
#: Vectors a background learner reads back from Qdrant between two pauses (~0.1 s of work).
_PACED_READ = 1024


def _payload(route: Route, utterance: str, tenant: str) -> dict[str, Any]:
    payload = {"route": route.name, "utterance": utterance, "metadata": dict(route.metadata)}
    if tenant:
        payload["tenant"] = tenant
    return payload


class Abandoned(Exception):
    """Raised by a ``commit`` callback that gives a change up (another writer won): the points
    it wrote are kept for its next try."""


@dataclass(frozen=True)
class SyncReport:
    """What one synchronisation did."""

    encoded: int = 0
    deleted: int = 0
    updated: int = 0
    kept: int = 0


class RouteIndex:
    """Routes in one Qdrant collection, kept in step with the routes declared in code.

    :meth:`sync` writes the difference and returns a :class:`Snapshot` (what queries need);
    :meth:`search` finds the nearest utterances of query vectors in a snapshot. The index keeps
    no query state of its own: the router publishes each snapshot inside its route set.

    Args:
        store: the collection.
        encoder: fills it; its fingerprint is recorded and checked.
        rebuild: drop a collection made by another encoder instead of refusing it.
    """

    def __init__(
        self, store: Store, encoder: Encoder, *, rebuild: bool = False, tenant: str = ""
    ) -> None:
        self.store = store
        self.encoder = encoder
        self.tenant = tenant
        self._lock = threading.RLock()
        self._open(rebuild)
        self._last = Snapshot.empty()  # the latest snapshot: its vectors seed the next one
        self._known: dict[str, dict[str, Any]] | None = None  # payloads of our points, by id
        self._ids: dict[tuple[str, str], str] = {}  # (route, utterance) -> point id

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

    def sync(
        self,
        routes: Sequence[Route],
        options: RouterOptions,
        *,
        base: Sequence[Route] | None = None,
        commit: Callable[[Snapshot], None] | None = None,
        retire: Sequence[str] = (),
        vectors: Mapping[str, npt.NDArray[np.float32]] | None = None,
    ) -> tuple[SyncReport, Snapshot]:
        """Make the collection hold ``routes``; encode only what is new.

        In order: new points are written, ``commit(snapshot)`` runs (the caller writes the
        route set's head there, and may raise to give up: nothing is deleted then), points no
        longer needed and ``retire`` are deleted, the store is flushed. A reader that sees the
        new head so finds every point it names, and an abandoned change deletes nothing.

        ``base`` is the route set the change started from. On a store other processes write
        (a server), the points to write and delete are its difference with ``routes``: never
        a point another writer is adding at the same time. On an embedded folder's one writer,
        every point of the tenant that ``routes`` does not name is deleted (leftovers of a
        crash included); the first sync reads the payloads from Qdrant, later ones diff
        against what the index already knows. If a write fails, what the index knows is
        dropped and re-read by the next sync (the published snapshot is left as it was).
        """
        with self._lock:
            try:
                return self._sync(routes, options, base, commit, retire, vectors or {})
            except BaseException:
                self._known = None
                raise

    def _sync(
        self,
        routes: Sequence[Route],
        options: RouterOptions,
        base: Sequence[Route] | None,
        commit: Callable[[Snapshot], None] | None,
        retire: Sequence[str],
        given: Mapping[str, npt.NDArray[np.float32]],
    ) -> tuple[SyncReport, Snapshot]:
        tenant = self.tenant
        desired = self._desired(routes)
        payloads = {pid: _payload(route, utt, tenant) for pid, (route, utt) in desired.items()}
        known = self._present(desired, payloads, base)
        new_ids = [pid for pid in desired if pid not in known]
        gone_ids = [pid for pid in known if pid not in desired]
        changed = [
            pid for pid in desired if pid in known and not same_payload(known[pid], payloads[pid])
        ]
        encoded = np.zeros((0, self.encoder.dimension), np.float32)
        if new_ids:
            encoded = self._encode([desired[pid][1] for pid in new_ids], given)
        try:
            if new_ids:
                self.store.upsert(new_ids, encoded, [payloads[pid] for pid in new_ids])
            if changed:
                self.store.set_payloads(changed, [payloads[pid] for pid in changed])
            matrix, old_rows = None, None
            if _mode_for(options, len(desired)) == "exact":
                matrix, old_rows = self._matrix(list(desired), dict(zip(new_ids, encoded)))
            snapshot = _snapshot(routes, desired, matrix, self._last, old_rows)
            if commit is not None:  # after the points: a reader that sees it finds them all
                commit(snapshot)
        except Exception as exc:
            if new_ids and not self.store.exclusive and not isinstance(exc, Abandoned):
                self._discard(new_ids)  # a server keeps no half change (the folder's writer
            raise  # deletes leftovers at its next sync)
        if gone_ids or retire:
            self.store.delete([*gone_ids, *retire])
        if new_ids or gone_ids or changed or commit is not None or retire:
            self.store.flush()
        if self._known is not None:
            for pid in gone_ids:
                self._known.pop(pid, None)
            for pid in (*new_ids, *changed):
                self._known[pid] = payloads[pid]
        if matrix is not None:
            if new_ids or gone_ids or self._last.vectors is None:
                self.store.save_vectors(list(desired), matrix, self.encoder.fingerprint)
        else:
            self.store.prepare_search()
        self._last = snapshot
        logger.debug(
            "synced %d routes into %s: encoded %d, deleted %d, updated %d",
            len(routes),
            self.store.target,
            len(new_ids),
            len(gone_ids),
            len(changed),
        )
        report = SyncReport(
            encoded=len(new_ids),
            deleted=len(gone_ids),
            updated=len(changed),
            kept=len(desired) - len(new_ids),
        )
        return report, snapshot

    def _encode(
        self, texts: list[str], given: Mapping[str, npt.NDArray[np.float32]]
    ) -> npt.NDArray[np.float32]:
        """Vectors of ``texts``: those ``given`` (a request's own vector, kept by feedback),
        the rest encoded in one batch."""
        missing = [text for text in texts if text not in given]
        fresh = dict(zip(missing, self.encoder.encode(missing))) if missing else {}
        out = np.empty((len(texts), self.encoder.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            vector = given[text] if text in given else fresh[text]
            out[row] = vector / (np.linalg.norm(vector) or 1.0)
        return out

    def _discard(self, ids: list[str]) -> None:
        """Delete the points a failed change wrote, as far as the store still lets us."""
        try:
            self.store.delete(ids)
        except Exception as exc:  # the original failure is what the caller must see
            logger.warning("could not delete %d points of a failed change: %s", len(ids), exc)

    def _present(
        self,
        desired: dict[str, tuple[Route, str]],
        payloads: dict[str, dict[str, Any]],
        base: Sequence[Route] | None,
    ) -> dict[str, dict[str, Any]]:
        """The tenant's points a change starts from, by id: what it may keep or delete."""
        tenant, store = self.tenant, self.store
        if store.exclusive:  # the folder's one writer: every point of ours, leftovers included
            if self._known is None:
                points = store.scroll_tenant(tenant) if tenant else store.scroll(with_vectors=False)
                self._known = {
                    pid: payload
                    for pid, payload, _ in points
                    if _is_ours(pid, payload, desired, tenant)  # others' points are left alone
                }
            return self._known
        # Other writers may be adding points right now: start from the base route set's points
        # (they exist: a stored head names them) plus those of ours already written.
        present = {
            pid: _payload(route, utt, tenant)
            for pid, (route, utt) in self._desired(base or ()).items()
        }
        missing = [pid for pid in desired if pid not in present]
        if missing:
            found = store.read_payloads(missing)
            present.update(
                (pid, payload)
                for pid, payload in found.items()
                if same_payload(payload, payloads[pid])
            )
        return present

    def _desired(self, routes: Sequence[Route]) -> dict[str, tuple[Route, str]]:
        """Point id -> (route, utterance); ids of pairs seen before come from a cache (a sha1
        per utterance is most of a 10k-utterance sync that changed little)."""
        tenant, cache = self.tenant, self._ids
        desired: dict[str, tuple[Route, str]] = {}
        for route in routes:
            name = route.name
            for utt in route.utterances:
                key = (name, utt)
                pid = cache.get(key)
                if pid is None:
                    pid = cache[key] = point_id(name, utt, tenant)
                desired[pid] = (route, utt)
        if len(cache) > 2 * len(desired) + 1024:  # forget pairs long gone
            self._ids = {(r.name, u): pid for pid, (r, u) in desired.items()}
        return desired

    def follow(self, routes: Sequence[Route], options: RouterOptions) -> Snapshot:
        """A snapshot of ``routes`` as another process stored them: nothing is written or
        encoded; vectors come from the last snapshot, the store's cache or Qdrant."""
        with self._lock:
            desired = self._desired(routes)
            matrix, old_rows = None, None
            if _mode_for(options, len(desired)) == "exact":
                matrix, old_rows = self._matrix(list(desired), {})
            self._known = None  # another process wrote: re-read before our next write
            snapshot = _snapshot(routes, desired, matrix, self._last, old_rows)
            self._last = snapshot
            return snapshot

    def _matrix(
        self, ids: list[str], fresh: dict[str, npt.NDArray[np.float32]]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The exact-search matrix for ``ids``: fresh vectors, then the last snapshot, then
        the store's vector cache, then Qdrant itself (a point's vector never changes: its id is
        a hash of its content and the collection is tied to one encoder)."""
        last = self._last
        old_rows = np.full(len(ids), -1, dtype=np.int64)
        if last.vectors is not None and len(last.vectors):
            # one gather of every row the last snapshot had (rows it lacks are overwritten below;
            # a plain take is several times faster than a boolean-masked copy)
            lookup = last.id_to_row.get
            old_rows = np.fromiter((lookup(pid, -1) for pid in ids), np.int64, len(ids))
            matrix = last.vectors.take(np.maximum(old_rows, 0), axis=0)
        else:
            matrix = np.empty((len(ids), self.encoder.dimension), dtype=np.float32)
        missing: list[int] = []
        for row in np.flatnonzero(old_rows < 0).tolist():
            vector = fresh.get(ids[row])
            if vector is not None:
                matrix[row] = vector
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
        return matrix, old_rows

    # -- querying ----------------------------------------------------------------------------
    def search(
        self, snapshot: Snapshot, vectors: npt.NDArray[np.float32], candidates: int
    ) -> Candidates:
        """The ``candidates`` nearest rows of ``snapshot`` for each query vector."""
        if snapshot.vectors is not None:
            return exact_search(snapshot.vectors, vectors, candidates, snapshot.pruning)
        return _from_hits(snapshot, self.store.search(vectors, candidates, self.tenant))

    async def asearch(
        self, snapshot: Snapshot, vectors: npt.NDArray[np.float32], candidates: int
    ) -> Candidates:
        """Asynchronous :meth:`search`: in-process search is sub-millisecond; Qdrant is awaited."""
        if snapshot.vectors is not None:
            return exact_search(snapshot.vectors, vectors, candidates, snapshot.pruning)
        hits = await self.store.asearch(vectors, candidates, self.tenant)
        return _from_hits(snapshot, hits)

    def lexical(self, snapshot: Snapshot, texts: list[str], routes: int) -> npt.NDArray[np.float64]:
        """Each route's lexical (BM25) score for each text, ``(len(texts), routes)``: from the
        collection's sparse vectors when the search runs in Qdrant and the collection has them,
        else computed in-process over the snapshot's utterances (same formula)."""
        if snapshot.vectors is None:
            hits = self.store.lexical_search(texts, self._lexical_limit(snapshot), self.tenant)
            if hits is not None:
                return _route_lexical(snapshot, hits, routes)
        return snapshot.lexical.route_scores(texts, snapshot.row_route, routes)

    async def alexical(
        self, snapshot: Snapshot, texts: list[str], routes: int
    ) -> npt.NDArray[np.float64]:
        """Asynchronous :meth:`lexical`."""
        if snapshot.vectors is None:
            limit = self._lexical_limit(snapshot)
            hits = await self.store.alexical_search(texts, limit, self.tenant)
            if hits is not None:
                return _route_lexical(snapshot, hits, routes)
        return snapshot.lexical.route_scores(texts, snapshot.row_route, routes)

    @staticmethod
    def _lexical_limit(snapshot: Snapshot) -> int:
        # enough hits for each route's best one to be among them, most of the time
        return min(snapshot.size + 1, max(64, 4 * len(snapshot.route_sizes)))

    def vectors_of(
        self, snapshot: Snapshot, pause: Callable[[], None] | None = None
    ) -> npt.NDArray[np.float32]:
        """Every row's vector, in row order (from memory, or read back from Qdrant). With
        ``pause`` (a background learner's), read in chunks with a pause after each: reading
        100k vectors back from Qdrant Edge takes ~8 s of the interpreter, which left in one
        piece made every query 5 x slower meanwhile (benchmarks/results/learning_load.txt)."""
        if snapshot.vectors is not None:
            return snapshot.vectors
        ids = list(snapshot.ids)
        if pause is None:
            return self.store.retrieve_vectors(ids)
        out = np.empty((len(ids), self.encoder.dimension), dtype=np.float32)
        for start in range(0, len(ids), _PACED_READ):
            out[start : start + _PACED_READ] = self.store.retrieve_vectors(
                ids[start : start + _PACED_READ]
            )
            pause()
        return out

    def close(self) -> None:
        """Close the store."""
        self.store.close()


def _mode_for(options: RouterOptions, count: int) -> Literal["exact", "qdrant"]:
    if options.search == "auto":
        return "exact" if count <= options.exact_limit else "qdrant"
    return options.search


def _snapshot(
    routes: Sequence[Route],
    desired: dict[str, tuple[Route, str]],
    matrix: npt.NDArray[np.float32] | None,
    last: Snapshot,
    old_rows: npt.NDArray[np.int64] | None,
) -> Snapshot:
    position = {route.name: i for i, route in enumerate(routes)}
    ids = tuple(desired)
    row_route = np.fromiter((position[desired[pid][0].name] for pid in ids), np.int64, len(ids))
    return Snapshot(
        ids=ids,
        row_route=row_route,
        route_sizes=np.bincount(row_route, minlength=len(routes)).astype(np.int64),
        utterances=tuple(desired[pid][1] for pid in ids),
        id_to_row={pid: row for row, pid in enumerate(ids)},
        vectors=matrix,
        pruning=make_pruning(matrix, last.pruning, old_rows) if matrix is not None else None,
    )


def _from_hits(snapshot: Snapshot, hits: list[list[Hit]]) -> Candidates:
    """Qdrant's hits as candidate rows (ids unknown to the snapshot, such as foreign points or
    the metadata point, are dropped), -1 padded."""
    width = max((len(result) for result in hits), default=0)
    rows = np.full((len(hits), width), -1, dtype=np.int64)
    scores = np.full((len(hits), width), -np.inf, dtype=np.float32)
    for i, result in enumerate(hits):
        rows_of = snapshot.id_to_row
        known = [(rows_of[pid], score) for pid, score in result if pid in rows_of]
        if known:
            rows[i, : len(known)] = [row for row, _ in known]
            scores[i, : len(known)] = [score for _, score in known]
    return Candidates(rows, scores, exhaustive=False)


def _route_lexical(
    snapshot: Snapshot, hits: list[list[Hit]], routes: int
) -> npt.NDArray[np.float64]:
    """Each route's best lexical hit per query (0 where none came back)."""
    out = np.zeros((len(hits), routes))
    rows_of, row_route = snapshot.id_to_row, snapshot.row_route
    for i, result in enumerate(hits):
        for pid, score in result:
            row = rows_of.get(pid)
            if row is not None:
                route = row_route[row]
                out[i, route] = max(out[i, route], score)
    return out


def _is_ours(
    pid: str, payload: dict[str, Any], desired: dict[str, tuple[Route, str]], tenant: str
) -> bool:
    """Whether a stored point is one semrouter wrote for ``tenant``: its id is the hash of its
    payload (other tenants' points, route set documents and foreign points are not)."""
    route, utterance = payload.get("route"), payload.get("utterance")
    if not isinstance(route, str) or not isinstance(utterance, str):
        return False
    if payload.get("tenant", "") != tenant:
        return False
    if pid in desired:  # the declared id of this very pair: no need to hash again
        declared_route, declared_utterance = desired[pid]
        if (declared_route.name, declared_utterance) == (route, utterance):
            return True
    return pid == point_id(route, utterance, tenant)


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
