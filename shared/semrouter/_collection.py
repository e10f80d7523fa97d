"""The life of one route set in its Qdrant collection: open, commit a change, follow, delete.

:class:`RouteCollection` is the one owner of a tenant's stored route set. It holds the store, the
tenant and the route index, and every way the stored set changes goes through it:

- :meth:`~RouteCollection.open` reads what is stored and applies the routes declared in code
  (the sync policy), waiting for the first route set when another process is still writing it;
- :meth:`~RouteCollection.commit` applies one change to the *latest* stored set and writes it as
  one new revision, with a conditional write of the head: a writer that lost to another one
  re-reads and re-applies its change (or raises :class:`RouteSetConflictError`); a change that
  fails half-way puts the head back, so the stored set is the old one or the new one;
- :meth:`~RouteCollection.follow` compares the stored identity with the one served
  (generation, revision and digest: a deleted and re-created set is told apart from the old
  one even when its revision restarts at 1) and returns the new version, or a deleted one;
- :meth:`~RouteCollection.delete` removes the route set.

Each returns a :class:`Version`: routes, snapshot, calibration, learnt state and the identity,
which the router turns into the immutable :class:`~semrouter._routeset.RouteSet` it serves.
The collection keeps no copy of the served identity: the router's published route set is the
one place it lives, and callers pass it in.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ._exceptions import (
    ConfigurationError,
    IndexMismatchError,
    RouteSetConflictError,
    RouteSetNotFoundError,
)
from ._feedback import Feedback
from ._index import Abandoned, RouteIndex, SyncReport
from ._learned import Learned
from ._options import RouterOptions
from ._routes import Route
from ._routeset import Calibration, Snapshot, routes_digest
from ._routestore import (
    DOC_KEY,
    RouteSetId,
    StoredRouteSet,
    delete_route_set,
    head_payload,
    learned_id,
    new_generation,
    read_head,
    read_learned,
    read_route_set,
    restore_head,
    write_learned,
    write_route_set,
)
from ._stores import Store
from .encoders import Encoder

__all__ = ["Change", "RouteCollection", "Version"]

logger = logging.getLogger("semrouter")
#: Seconds a reader waits for the first route set of a folder whose writer is building it.
FIRST_ROUTE_SET_WAIT = 30.0
#: Times a writer re-applies a change after losing a conditional write to another writer
#: (with a growing random back-off: about 30 s in all before it gives up).
_ATTEMPTS = 120
_JITTER = random.Random(0)  # back-off jitter only: decides nothing about routing

#: A change: from the stored route set (``None``: none yet) to ``(routes, calibration)``, or
#: ``None`` when it changes nothing.
Proposal = tuple[list[Route], "Calibration | None"]
Change = Callable[[StoredRouteSet | None], "Proposal | None"]
#: Learns from a route set's utterances before it is written (``None``: not now).
Learner = Callable[[Sequence[Route], Snapshot, "Learned | None"], "Learned | None"]


@dataclass(frozen=True)
class Version:
    """One version of the stored route set, as the router publishes it."""

    routes: tuple[Route, ...]
    snapshot: Snapshot
    calibration: Calibration | None
    learned: Learned | None
    identity: RouteSetId | None  # None: no route set is stored (deleted, or never written)
    report: SyncReport

    @classmethod
    def nothing(cls) -> Version:
        return cls((), Snapshot.empty(), None, None, None, SyncReport())


class _Lost(Abandoned):
    """Another writer committed first."""


class RouteCollection:
    """One tenant's route set in one Qdrant collection (see the module docstring).

    Args:
        store: the collection.
        encoder: fills it; its fingerprint is recorded and checked.
        tenant: whose route set.
        rebuild: drop a collection made by another encoder instead of refusing it.
        create: create the collection when it does not exist (``False``: raise
            :class:`RouteSetNotFoundError`, as :meth:`SemanticRouter.open` wants).
    """

    def __init__(
        self,
        store: Store,
        encoder: Encoder,
        *,
        tenant: str = "",
        rebuild: bool = False,
        create: bool = True,
    ) -> None:
        if not create and store.read_meta() is None:
            raise RouteSetNotFoundError(f"{store.target} holds no route set (no collection)")
        self.store = store
        self.encoder = encoder
        self.tenant = tenant
        self.index = RouteIndex(store, encoder, rebuild=rebuild, tenant=tenant)

    # -- opening --------------------------------------------------------------------------------
    def open(
        self,
        change: Change,
        options: RouterOptions,
        *,
        learn: Learner | None,
        require: bool,
        on_conflict: Literal["retry", "raise"],
    ) -> Version:
        """Open the route set: apply ``change`` (the declared routes) as a writer, or serve
        what is stored as a reader. ``require``: a place with no route set raises."""
        store = self.store
        stored = self._stored()
        if stored is None and store.read_only:
            stored = self._wait_for_first()
        if stored is None and (store.read_only or require):
            raise RouteSetNotFoundError(self._nothing_stored())
        if not store.read_only:
            seen = [stored]

            def watched(current: StoredRouteSet | None) -> Proposal | None:
                seen[0] = current  # the set commit() read last: what to serve if unchanged
                return change(current)

            committed = self.commit(watched, options, learn=learn, on_conflict=on_conflict)
            if committed is not None:
                return committed
            stored = seen[0]
        elif stored is not None and change(stored) is not None:
            logger.warning(
                "%s is read-only here: serving its stored routes, not the declared ones "
                "(the folder's writer syncs them)",
                store.target,
            )
        return self._version(stored, options) if stored is not None else Version.nothing()

    def _stored(self) -> StoredRouteSet | None:
        """The stored route set; a collection written before route sets were stored (0.1) is
        read from its points (revision 0, so the first change stores it)."""
        stored = read_route_set(self.store, self.tenant)
        if stored is None and not self.tenant:  # tenants came with stored route sets
            legacy = _routes_from_points(self.store)
            if legacy:
                return StoredRouteSet(tuple(legacy), None, RouteSetId("", 0, ""))
        return stored

    def _wait_for_first(self) -> StoredRouteSet | None:
        """A reader started beside the folder's first writer: wait for its first route set
        (never serve an empty publication) while that writer is alive."""
        store = self.store
        writer = getattr(store, "writer_pid", None)
        deadline = time.monotonic() + FIRST_ROUTE_SET_WAIT
        while time.monotonic() < deadline and writer is not None and writer() is not None:
            time.sleep(0.05)
            if store.changed():
                store.reload()
            stored = self._stored()
            if stored is not None:
                return stored
        return None

    def _nothing_stored(self) -> str:
        where = self.store.target
        tenant = f" for tenant {self.tenant!r}" if self.tenant else ""
        writer = getattr(self.store, "writer_pid", lambda: None)()
        if writer is not None:
            return (
                f"{where} holds no route set{tenant}: its writer (process {writer}) has not "
                f"published one within {FIRST_ROUTE_SET_WAIT:g} s"
            )
        return (
            f"{where} holds no route set{tenant}; create one with SemanticRouter(routes, ...) "
            "(SemanticRouter.open serves an existing one)"
        )

    # -- changing -------------------------------------------------------------------------------
    def commit(
        self,
        change: Change,
        options: RouterOptions,
        *,
        learn: Learner | None,
        on_conflict: Literal["retry", "raise"] = "retry",
        edit: Callable[[Feedback], Feedback] | None = None,
        vectors: Mapping[str, npt.NDArray[np.float32]] | None = None,
    ) -> Version | None:
        """Apply ``change`` to the latest stored route set and store the result as one new
        revision; ``None`` when it changes nothing. Losing the conditional write to another
        writer re-reads the stored set and applies ``change`` again (``"retry"``), or raises
        :class:`RouteSetConflictError` (``"raise"``: a change meant for one version only).

        The stored feedback (``_feedback.py``) goes with the routes: ``edit`` changes it, and
        the examples of the routes that stay are added to their utterances whatever ``change``
        did. ``vectors`` (text -> vector) are used instead of encoding those texts."""
        store = self.store
        with store.write_lock:
            for attempt in range(_ATTEMPTS):
                if attempt:  # another writer won: back off a little, more after each loss
                    time.sleep(_JITTER.uniform(0.0, 0.002 * 2 ** min(attempt, 7)))
                if store.changed():
                    store.reload()
                stored = self._stored()
                proposal = change(stored)
                if proposal is None and edit is None:
                    return None
                before = stored.feedback if stored is not None else Feedback()
                routes, calibration = proposal or (
                    list(stored.routes) if stored is not None else [],
                    stored.calibration if stored is not None else None,
                )
                feedback = (edit(before) if edit is not None else before)
                feedback = feedback.keep(route.name for route in routes)
                routes = feedback.attach(before.detach(routes))
                if (
                    stored is not None
                    and stored.revision
                    and (routes, calibration, feedback)
                    == (list(stored.routes), stored.calibration, before)
                ):
                    return None
                try:
                    return self._write(
                        stored, routes, calibration, feedback, options, learn, vectors or {}
                    )
                except _Lost:
                    if on_conflict == "raise":
                        raise RouteSetConflictError(
                            f"the route set in {store.target} was changed by another writer "
                            "while this change was written; nothing of it was kept: read the "
                            "new route set (refresh()) and apply the change again"
                        ) from None
            raise RouteSetConflictError(
                f"the route set in {store.target} kept changing: gave up after {_ATTEMPTS} tries"
            )

    def _write(
        self,
        stored: StoredRouteSet | None,
        routes: list[Route],
        calibration: Calibration | None,
        feedback: Feedback,
        options: RouterOptions,
        learn: Learner | None,
        vectors: Mapping[str, npt.NDArray[np.float32]],
    ) -> Version:
        store, tenant, dimension = self.store, self.tenant, self.encoder.dimension
        base = stored.identity if stored is not None and stored.identity.revision else None
        digest = routes_digest(routes)
        identity = RouteSetId(
            base.generation if base is not None and base.generation else new_generation(),
            (base.revision if base is not None else 0) + 1,
            digest,
        )
        previous = stored.head if stored is not None else None  # the head ``base`` names
        learned = self.learned_for(digest) or (stored.learned if stored is not None else None)
        retire = []
        if base is not None and base.digest and base.digest != digest:
            retire.append(learned_id(tenant, base.digest))
        written = False

        def commit(snapshot: Snapshot) -> None:
            nonlocal written
            payload = head_payload(tenant, routes, calibration, identity, previous, feedback)
            if not write_route_set(store, tenant, payload, expected=base, dimension=dimension):
                raise _Lost
            written = True

        try:
            report, snapshot = self.index.sync(
                routes,
                options,
                base=stored.routes if stored else (),
                commit=commit,
                retire=retire,
                vectors=vectors,
            )
        except BaseException:
            if written:  # the head is new but the change did not finish: put the old one back
                self._restore(previous)
            raise
        if learn is not None:
            # After the head (the learnt point is keyed by the digest, so it adds no revision;
            # followers pick it up by the digest): a conflicting writer's window stays short.
            fresh = learn(routes, snapshot, learned)
            if fresh is not None:
                learned = fresh
                write_learned(store, tenant, fresh, dimension)
                store.flush()
        return Version(tuple(routes), snapshot, calibration, learned, identity, report)

    def _restore(self, previous: dict[str, Any] | None) -> None:
        try:
            restore_head(self.store, self.tenant, previous, self.encoder.dimension)
            self.store.flush()
        except Exception as exc:  # the original failure is what the caller must see
            logger.warning("could not put the route set of %s back: %s", self.store.target, exc)

    def store_learned(self, learned: Learned) -> None:
        """Store what was learnt for the current routes (no new revision: followers pick it
        up by the digest)."""
        with self.store.write_lock:
            write_learned(self.store, self.tenant, learned, self.encoder.dimension)
            self.store.flush()

    def learned_for(self, digest: str) -> Learned | None:
        """What was learnt for the route set content ``digest``, if stored."""
        return read_learned(self.store, self.tenant, digest)

    def delete(self, options: RouterOptions, served: RouteSetId | None) -> Version:
        """Delete the route set (its head, learnt state and utterance points); other tenants
        are left alone. Followers then serve no route."""
        store = self.store
        with store.write_lock:
            stored = self._stored()
            digest = stored.identity.digest if stored is not None else None
            digest = digest or (served.digest if served is not None else None)

            def commit(snapshot: Snapshot) -> None:  # the head first: followers stop at once
                delete_route_set(store, self.tenant, digest)

            report, snapshot = self.index.sync(
                [], options, base=stored.routes if stored else (), commit=commit
            )
        return Version((), snapshot, None, None, None, report)

    # -- following ------------------------------------------------------------------------------
    def follow(self, served: RouteSetId | None, options: RouterOptions) -> Version | None:
        """The stored route set if it is not the ``served`` one: a new version, a deleted one
        (``identity=None``, no routes), or ``None`` when nothing changed. A route set re-created
        with another encoder raises :class:`IndexMismatchError`."""
        store = self.store
        if store.changed():
            store.reload()
        for _ in range(3):
            head = read_head(store, self.tenant)
            if head is None:  # deleted (or never written)
                return None if served is None else Version.nothing()
            if head == served:
                return None
            if served is not None and head.generation != served.generation:
                self._check_encoder()
            stored = self._stored()
            if stored is None:
                continue
            try:
                return self._version(stored, options)
            except IndexMismatchError:
                # a writer deleted points of this revision while they were read: a newer
                # revision is on its way; read again (the current version keeps serving)
                continue
        logger.warning("%s kept changing while it was read; serving the last version", store.target)
        return None

    def _version(self, stored: StoredRouteSet, options: RouterOptions) -> Version:
        """A stored route set as a version to serve: nothing written, nothing encoded."""
        snapshot = self.index.follow(list(stored.routes), options)
        learned = self.learned_for(stored.identity.digest or routes_digest(stored.routes))
        identity = stored.identity if stored.identity.revision else None  # 0.1: not stored
        return Version(
            stored.routes,
            snapshot,
            stored.calibration,
            learned or stored.learned,
            identity,
            SyncReport(kept=snapshot.size),
        )

    def _check_encoder(self) -> None:
        found = self.store.read_meta()
        wanted = self.encoder.fingerprint
        if found and found.get("fingerprint") != wanted:
            raise IndexMismatchError(
                f"the route set in {self.store.target} was re-created with "
                f"{found.get('fingerprint')!r}, not this router's {wanted!r}: open it with that "
                "encoder"
            )

    def tenants(self) -> list[str]:
        """The tenants whose route sets this collection stores."""
        found = {
            str(payload[DOC_KEY].get("tenant", ""))
            for _, payload, _ in self.store.scroll(with_vectors=False)
            if isinstance(payload.get(DOC_KEY), dict)
        }
        return sorted(found)

    def close(self) -> None:
        self.index.close()


def _routes_from_points(store: Store) -> list[Route]:
    """The routes of a collection written before route sets were stored (semrouter 0.1): names,
    utterances and metadata from the points, in stored order."""
    utterances: dict[str, list[str]] = {}
    metadata: dict[str, dict[str, Any]] = {}
    for _, payload, _ in store.scroll(with_vectors=False):
        name, text = payload.get("route"), payload.get("utterance")
        if isinstance(name, str) and isinstance(text, str) and payload.get("tenant", "") == "":
            utterances.setdefault(name, []).append(text)
            metadata.setdefault(name, dict(payload.get("metadata") or {}))
    routes = []
    for name, texts in utterances.items():
        try:
            routes.append(Route(name, list(dict.fromkeys(texts)), metadata=metadata[name]))
        except ConfigurationError:
            logger.warning("stored route %r cannot be read back; left out", name)
    return routes
